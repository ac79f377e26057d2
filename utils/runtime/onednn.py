"""TensorFlow's CPU kernels, chosen per workload and CPU before TensorFlow loads: oneDNN or Eigen.

TensorFlow turns its oneDNN kernels on by default only on x86 CPUs with AVX512 neural-network
instructions (AVX512_VNNI, AVX512_BF16, AMX); elsewhere it runs its Eigen kernels. The faster one for
each workload and CPU (measured: docs/speed.md#the-figures-behind-the-kernel-choice):

    training, any x86 CPU        oneDNN, also on a CPU with AVX2 only
    translation, AVX-512 CPU     oneDNN: its direct convolutions
    translation, AVX2-only CPU   Eigen: oneDNN has no direct convolution for these layers there and
                                 uses im2col + GEMM, whose buffer for a large image passes oneDNN's
                                 scratchpad limit; it then falls back to its reference kernel, and a
                                 1024 px photo does not finish (Eigen: seconds)

So the training entry points (train.py, ablate.py, quickstart.py, the notebooks, through
`utils.cli.quiet()`) ask for the training choice (oneDNN on every x86 CPU), and the translating ones
(translate.py, serve.py, evaluate.py) call `prefer_onednn("translation")` first thing, before
TensorFlow loads. Importing the project sets nothing; a script of a user's own that imports Keras first
gets TensorFlow's default and a one-line hint from `CycleGAN` (`slow_training_kernels`). A notebook trains and translates in one process with the training choice; there,
on a CPU without AVX-512, `translation_side_limit()` caps the side of a photo translated at its own
size (SAFE_SIDE), so it never reaches the reference kernel. TensorFlow reads the variable once, when it
loads. A value the user set is kept (`TF_ENABLE_ONEDNN_OPTS=0 python train.py ...` runs Eigen).
`ONEDNN_MAX_CPU_ISA=AVX2` (oneDNN's own variable) makes an AVX-512 CPU behave as an AVX2 one here too.
Other backends ignore all of this.
"""

import os
import platform
import sys
from pathlib import Path

VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
CHOSEN_FOR = "CYCLEGAN_KERNELS_CHOSEN_FOR"   # set beside VARIABLE when this module chose it, not the user
WORKLOADS = ("training", "translation")
# At most this side with oneDNN on an AVX2-only CPU: 512 px translates in seconds there, 1024 px did not finish
# (docs/speed.md#the-figures-behind-the-kernel-choice)
SAFE_SIDE = 512
X86 = ("x86_64", "amd64", "i386", "i686", "x86")


# CYCLEGAN_CPU_KIND=avx2 or avx512 makes this process decide as on that kind of CPU (the flags below
# instead of /proc/cpuinfo's): how the test suite is run as on the other kind (docs/testing.md).
CPU_KIND_VARIABLE = "CYCLEGAN_CPU_KIND"
CPU_KINDS = {"avx2": frozenset({"sse2", "avx", "avx2", "fma"}),
             "avx512": frozenset({"sse2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni",
                                  "avx512_bf16"})}
CPUINFO = "/proc/cpuinfo"


def cpu_flags(cpuinfo=CPUINFO, environ=None):
    """The x86 flags of this CPU (a set; empty without /proc/cpuinfo, as on macOS and Windows): the one
    place they are read. CYCLEGAN_CPU_KIND, when set, replaces the machine's own (the default file only)."""
    environ = os.environ if environ is None else environ
    kind = environ.get(CPU_KIND_VARIABLE, "").lower()
    if kind and str(cpuinfo) == CPUINFO:
        if kind not in CPU_KINDS:
            raise ValueError(f"{CPU_KIND_VARIABLE}={kind!r}: must be one of {sorted(CPU_KINDS)} (or unset)")
        return set(CPU_KINDS[kind])
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return set()
    return set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))


def cpu_has_avx512(cpuinfo=CPUINFO, environ=None):
    """Whether oneDNN may use AVX-512 here: the CPU has avx512f (`cpu_flags`) and ONEDNN_MAX_CPU_ISA, if
    set, allows it. A machine without /proc/cpuinfo (macOS, Windows) counts as without."""
    environ = os.environ if environ is None else environ
    limit = environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    if limit and not limit.startswith(("AVX512", "AVX10", "ALL", "DEFAULT")):
        return False
    return "avx512f" in cpu_flags(cpuinfo, environ)


def kernels_for(workload, machine=None, avx512=None, environ=None):
    """TF_ENABLE_ONEDNN_OPTS for a workload on this CPU: "1" (oneDNN), "0" (Eigen), None (not x86: unset)."""
    if workload not in WORKLOADS:
        raise ValueError(f"workload={workload!r}: must be one of {WORKLOADS}")
    if (machine or platform.machine()).lower() not in X86:
        return None
    if workload == "training":
        return "1"
    return "1" if (cpu_has_avx512(environ=environ) if avx512 is None else avx512) else "0"


def prefer_onednn(workload="training", environ=None, machine=None, avx512=None):
    """Set TF_ENABLE_ONEDNN_OPTS for `workload` unless the user set it; returns the value in force (or None).

    Call it before TensorFlow loads (later it changes nothing in this process). A value this module set
    earlier (`utils.cli.quiet()` sets the training one) is replaced; the user's own never is.
    """
    environ = os.environ if environ is None else environ
    if VARIABLE in environ and CHOSEN_FOR not in environ:
        return environ[VARIABLE]   # the user's choice
    value = kernels_for(workload, machine, avx512, environ)
    if value is not None:
        environ[VARIABLE], environ[CHOSEN_FOR] = value, workload
    return environ.get(VARIABLE)


def slow_training_kernels(environ=None, machine=None, avx512=None, modules=None):
    """A one-line hint when TensorFlow loaded before anything chose its kernels, on an x86 CPU without
    AVX-512: it then trains with Eigen, slower there (docs/speed.md#on-a-cpu-without-avx-512). None otherwise,
    and always when the user set TF_ENABLE_ONEDNN_OPTS."""
    environ = os.environ if environ is None else environ
    modules = sys.modules if modules is None else modules
    if (environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow" or "tensorflow" not in modules
            or VARIABLE in environ or (machine or platform.machine()).lower() not in X86
            or (cpu_has_avx512(environ=environ) if avx512 is None else avx512)):
        return None
    return ("TensorFlow loaded before its CPU kernels were chosen, so it trains with its Eigen kernels, about "
            "2x slower on this CPU: call utils.runtime.onednn.prefer_onednn() (or utils.cli.quiet()) before "
            "importing keras, as train.py and the notebooks do")


def onednn_without_avx512(environ=None, machine=None, avx512=None):
    """Whether this process runs TensorFlow with oneDNN on an x86 CPU without AVX-512 (the case the two
    functions below are for)."""
    environ = os.environ if environ is None else environ
    if environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow" or environ.get(VARIABLE) != "1":
        return False
    if (machine or platform.machine()).lower() not in X86:
        return False
    return not (cpu_has_avx512(environ=environ) if avx512 is None else avx512)


def translation_side_limit(environ=None, machine=None, avx512=None):
    """SAFE_SIDE when this process runs TensorFlow with oneDNN on an x86 CPU without AVX-512 (a notebook
    that trains and translates), else None: above it oneDNN may reach its reference kernel (module doc)."""
    return SAFE_SIDE if onednn_without_avx512(environ, machine, avx512) else None


def stack_generator_calls(environ=None, machine=None, avx512=None):
    """Whether the combined model stacks each generator's translations into one batch (models/combined.py,
    4.; utils/runtime/stacked_calls.py): in a TensorFlow process running oneDNN on an x86 CPU without AVX-512.
    Why: there oneDNN convolves a batch of one by im2col + GEMM and a larger batch by its faster direct
    (brgemm) kernel; with AVX-512 a batch of one already gets the direct kernel and stacking costs time
    (docs/speed.md#stacked-generator-calls)."""
    return onednn_without_avx512(environ, machine, avx512)
