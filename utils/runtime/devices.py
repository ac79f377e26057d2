"""Which device trains, and which mixed precision suits it.

Keras puts the work on the first GPU by itself on all three backends (TensorFlow, JAX and PyTorch
each take a visible CUDA GPU over the CPU); this module only asks the backend what it found, for
the line the training prints at its start and for `CycleGAN(mixed_precision=True)`:

| device                                   | mixed_precision=True picks | why                                   |
|------------------------------------------|----------------------------|---------------------------------------|
| NVIDIA GPU, compute capability >= 8.0    | bfloat16 ('mixed_bfloat16') | tensor cores run bfloat16 (A100, L4, RTX 30xx on); float32's range, no loss scaling |
| older NVIDIA GPU (T4, V100: 7.x) or a GPU of unknown capability | float16 ('mixed_float16') + loss scaling | bfloat16 is emulated there, float16 runs on tensor cores; its small range needs Keras' LossScaleOptimizer |
| CPU with bfloat16 instructions (x86 AVX512_BF16 or AMX) | bfloat16 | faster than float32 there (docs/backends_and_devices.md#backends-and-xla) |
| any other CPU (AVX2 only, ARM, unknown)  | float32 (off)              | bfloat16 is emulated there, far slower than float32 (docs/speed.md#on-a-cpu-without-avx-512) |

Weights, the generators' tanh, the discriminators' scores and the losses stay float32 in both modes.
"""

from utils.runtime.onednn import CPUINFO, cpu_flags

# x86 CPU flags (Linux /proc/cpuinfo) of instructions that run bfloat16 matrix products natively.
BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
MIXED_PRECISION = (True, "float16", "bfloat16")   # the values of CycleGANConfig.mixed_precision that turn it on


def gpu():
    """The first GPU of the current backend as {'name', 'compute_capability': (major, minor) or None},
    or None when the backend runs on the CPU."""
    import keras   # here, not at the top: the rest of this module is read before Keras is installed (utils/colab.py)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf
        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            return None
        details = tf.config.experimental.get_device_details(gpus[0])
        return {"name": details.get("device_name", gpus[0].name), "compute_capability": details.get("compute_capability")}
    if backend == "jax":
        import jax
        devices = [d for d in jax.devices() if d.platform == "gpu"]
        if not devices:
            return None
        capability = getattr(devices[0], "compute_capability", None)
        return {"name": devices[0].device_kind,
                "compute_capability": tuple(int(p) for p in str(capability).split(".")) if capability else None}
    if backend == "torch":
        import torch
        if not torch.cuda.is_available():
            return None
        return {"name": torch.cuda.get_device_name(0), "compute_capability": tuple(torch.cuda.get_device_capability(0))}
    return None


def cpu_runs_bfloat16_fast(cpuinfo=CPUINFO):
    """Whether this CPU has bfloat16 instructions (BFLOAT16_CPU_FLAGS; utils.runtime.onednn.cpu_flags). Without
    them the bfloat16 kernels are emulated, far slower than float32 (docs/speed.md#on-a-cpu-without-avx-512).
    A machine without /proc/cpuinfo (macOS, Windows) counts as without: float32 is the safe choice there."""
    return bool(cpu_flags(cpuinfo) & set(BFLOAT16_CPU_FLAGS))


def mixed_precision_dtype(setting, device=None, cpu_bfloat16=None):
    """The compute dtype of CycleGANConfig.mixed_precision on `device` (default: this backend's GPU, if any).

    setting: False (float32, returns None), 'float16', 'bfloat16', or True: the fast one for the device
    (table above; None, i.e. float32, on a CPU without bfloat16 instructions). device: gpu()'s dict, or
    None for the CPU. cpu_bfloat16: whether the CPU runs bfloat16 fast (default: `cpu_runs_bfloat16_fast()`).
    """
    if setting is False or setting is None:
        return None
    if setting in ("float16", "bfloat16"):
        return setting
    if setting is not True:
        raise ValueError(f"mixed_precision={setting!r}: must be False, True (pick for the device), 'float16' or "
                         "'bfloat16'")
    device = gpu() if device is None else device
    if not device:
        return "bfloat16" if (cpu_runs_bfloat16_fast() if cpu_bfloat16 is None else cpu_bfloat16) else None
    return gpu_compute_dtype(device.get("compute_capability"))


def gpu_compute_dtype(capability):
    """What mixed_precision=True picks on an NVIDIA GPU of this compute capability, (major, minor) or None:
    bfloat16 from 8.0 (tensor cores run it), else float16 (with loss scaling). The rule's one home."""
    return "bfloat16" if capability and tuple(capability) >= (8, 0) else "float16"


def device_line(n_devices=1, compute_dtype=None, device="find"):
    """What the training prints at its start, e.g. 'training on GPU 0: Tesla T4 (compute capability 7.5),
    mixed precision float16 with loss scaling' or 'training on CPU (no GPU found)'."""
    device = gpu() if device == "find" else device
    if device:
        capability = device.get("compute_capability")
        line = f"training on GPU 0: {device['name']}"
        line += f" (compute capability {capability[0]}.{capability[1]})" if capability else ""
        line += f" and {n_devices - 1} more device(s), data parallel" if n_devices > 1 else ""
    else:
        line = "training on CPU (no GPU found)"
        line += f", {n_devices} devices, data parallel" if n_devices > 1 else ""
    if compute_dtype:
        line += f", mixed precision {compute_dtype}" + (" with loss scaling" if compute_dtype == "float16" else "")
    return line


def precision_warning(requested, compute_dtype, device="find", cpu_bfloat16=None):
    """A line for the start of training when the precision is not what it seems on this CPU, else None:
    bfloat16 asked for by name on a CPU that emulates it, or `True` (pick the fast one) resolved to
    float32 for that reason. requested: CycleGANConfig.mixed_precision as given; compute_dtype: what
    `mixed_precision_dtype` made of it."""
    device = gpu() if device == "find" else device
    if device or requested in (False, None, "float16"):
        return None
    if (cpu_runs_bfloat16_fast() if cpu_bfloat16 is None else cpu_bfloat16):
        return None
    if compute_dtype == "bfloat16":
        return ("warning: this CPU has no bfloat16 instructions (AVX512_BF16 or AMX), so bfloat16 is emulated "
                "and runs several times slower than float32 (8x on a 2-core AVX2 CPU): leave out "
                "--mixed-precision (mixed_precision=False) to train in float32")
    return ("mixed precision off: this CPU has no bfloat16 instructions (AVX512_BF16 or AMX), "
            "float32 is the fast choice here")
