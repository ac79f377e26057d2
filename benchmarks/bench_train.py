"""Speed of a CycleGAN training step and of translation, per configuration and Keras backend.

For each configuration, one fresh subprocess (so peak RSS and the first-step time are its own):
median, min and max seconds per full training step after warm-up (combined + both
discriminators, `CycleGAN.train_step`, batch 1), images/s, time of the first step (trace /
compile), peak RSS, the FLOPs of one step counted from the layers (benchmarks/flops.py) and the
share of the machine's float32 matmul peak they reach; the same for `translate` alone. The peak is
measured here: numpy float32 matmul on 2 threads, best of several runs.

With --official REPO it also times the official PyTorch implementation on the same configuration
(../shared/bench/official_cyclegan_cpu.py), interleaved with ours in the same window (these
machines are shared and noisy: only ratios measured side by side mean anything), and prints the
ratio of the medians (ours steps/s over official steps/s; > 1 is faster).

    .venv/bin/python benchmarks/bench_train.py --quick
    .venv/bin/python benchmarks/bench_train.py --configs r9_32_64_128,r6_64_64_128 --repeats 3 \\
        --official OFFICIAL_REPO --official-python TORCH_VENV/bin/python --json-out run/bench.json
    KERAS_BACKEND is set per run by --backend (tensorflow, jax, torch); --python picks the interpreter.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the shared harness, beside the repository (../shared/bench) or inside it (shared/bench)
OFFICIAL_SCRIPT = next((str(p) for p in (ROOT.parent / "shared" / "bench" / "official_cyclegan_cpu.py",
                                          ROOT / "shared" / "bench" / "official_cyclegan_cpu.py") if p.is_file()),
                       "shared/bench/official_cyclegan_cpu.py")

# name: (CycleGAN settings, official script arguments or None). lambda_id=5 is the official
# default identity weight (0.5 x lambda 10); the book's U-Net is not the official unet_128.
CONFIGS = {
    "book_unet128": (dict(input_dim=(128, 128, 3), generator_type="unet", gen_n_filters=32, disc_n_filters=32,
                          lambda_id=2.0), dict(netG="unet_128", size=128, ngf=32, ndf=32)),
    "book_resnet256": (dict(input_dim=(256, 256, 3), generator_type="resnet", gen_n_filters=32,
                            disc_n_filters=64, n_resnet_blocks=9, lambda_id=5.0),
                       dict(netG="resnet_9blocks", size=256, ngf=32, ndf=64)),
    "r9_32_64_128": (dict(input_dim=(128, 128, 3), generator_type="resnet", gen_n_filters=32, disc_n_filters=64,
                          n_resnet_blocks=9, lambda_id=5.0), dict(netG="resnet_9blocks", size=128, ngf=32, ndf=64)),
    "r6_64_64_128": (dict(input_dim=(128, 128, 3), generator_type="resnet", gen_n_filters=64, disc_n_filters=64,
                          n_resnet_blocks=6, lambda_id=5.0), dict(netG="resnet_6blocks", size=128, ngf=64, ndf=64)),
    "r9_64_64_256": (dict(input_dim=(256, 256, 3), generator_type="resnet", gen_n_filters=64, disc_n_filters=64,
                          n_resnet_blocks=9, lambda_id=5.0), dict(netG="resnet_9blocks", size=256, ngf=64, ndf=64)),
    # the book's ResNet at 512 px, for peak memory (benchmarks/gpu_check.sh)
    "book_resnet512": (dict(input_dim=(512, 512, 3), generator_type="resnet", gen_n_filters=32,
                            disc_n_filters=64, n_resnet_blocks=9, lambda_id=5.0),
                       dict(netG="resnet_9blocks", size=512, ngf=32, ndf=64)),
    # tiny networks for tests/test_benchmarks.py (not a setup of the book or the paper)
    "smoke": (dict(input_dim=(32, 32, 3), generator_type="resnet", gen_n_filters=4, disc_n_filters=4,
                   n_resnet_blocks=1, lambda_id=5.0), None),
}
LIKE_FOR_LIKE = {"book_resnet256", "r9_32_64_128", "r6_64_64_128", "r9_64_64_256"}  # same networks as official


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow"),
                   choices=["tensorflow", "jax", "torch"])
    p.add_argument("--python", default=sys.executable, help="interpreter with that backend installed")
    p.add_argument("--configs", default=",".join(c for c in CONFIGS if c != "smoke"), help=f"comma-separated, from {list(CONFIGS)}")
    p.add_argument("--iters", type=int, default=8, help="timed training steps per run")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps after the first")
    p.add_argument("--repeats", type=int, default=1, help="runs per configuration (interleaved with official)")
    p.add_argument("--quick", action="store_true", help="r9_32_64_128 only, 3 steps, 1 warm-up")
    p.add_argument("--jit", action="store_true", help="compile with jit_compile=True (XLA)")
    p.add_argument("--mixed-precision", nargs="?", const=True, default=False, choices=("float16", "bfloat16"),
                   help="CycleGAN(mixed_precision=...): alone, the device's fast 16-bit type (utils/runtime/devices.py), "
                   "or name one; float32 weights and losses")
    p.add_argument("--official", default=None, help="extracted official repository: time it side by side")
    p.add_argument("--official-python", default=None, help="interpreter with torch for the official code")
    p.add_argument("--official-script", default=OFFICIAL_SCRIPT, help="the harness that times the official code: "
                   "shared/bench/official_cyclegan_cpu.py (CPU) or benchmarks/official_gpu.py (CUDA)")
    p.add_argument("--json-out", default=None)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # one configuration, in this process
    p.add_argument("--lever", default="default", help=argparse.SUPPRESS)  # benchmarks/levers.py, for bench_levers.py
    args = p.parse_args(argv)
    if args.quick:
        args.configs, args.iters, args.warmup = "r9_32_64_128", 3, 1
    args.configs = [c for c in args.configs.split(",") if c]
    unknown = [c for c in args.configs if c not in CONFIGS]
    if unknown:
        p.error(f"unknown configs {unknown}; choose from {list(CONFIGS)}")
    return args


def peak_rss_mib():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def matmul_peak_gflops(n=2048, runs=7):
    """Best float32 GFLOP/s of an n x n numpy matmul on 2 threads (run in a fresh process)."""
    code = ("import numpy as np, time\n"
            f"a = np.random.default_rng(0).standard_normal(({n}, {n}), dtype=np.float32); b = a.copy(); a @ b\n"
            f"best = min((lambda t: (a @ b, time.perf_counter() - t)[1])(time.perf_counter()) for _ in range({runs}))\n"
            f"print(2 * {n}**3 / best / 1e9)\n")
    env = {**os.environ, "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def device_name(backend):
    if backend == "jax":
        import jax
        d = jax.devices()[0]
        return f"{d.platform}: {getattr(d, 'device_kind', d)} x{len(jax.devices())}"
    if backend == "torch":
        import torch
        return f"cuda: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "cpu"
    import tensorflow as tf
    gpus = tf.config.list_physical_devices("GPU")
    return f"gpu: {gpus[0].name}" if gpus else "cpu"


def device_peak_mib(backend):
    """Peak memory the backend's allocator took on the GPU in this process (None on the CPU)."""
    if backend == "torch":
        import torch
        return round(torch.cuda.max_memory_allocated() / 2**20, 1) if torch.cuda.is_available() else None
    if backend == "jax":
        import jax
        device = jax.devices()[0]
        stats = device.memory_stats() if device.platform == "gpu" else None
        return round(stats["peak_bytes_in_use"] / 2**20, 1) if stats and "peak_bytes_in_use" in stats else None
    return None


def backend_version(backend):
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[backend]
    return __import__(module).__version__


def run_worker(args):
    """Time one configuration in this process; print one RESULT_JSON line."""
    t_start = time.perf_counter()
    sys.path.insert(0, str(ROOT))
    from benchmarks import levers
    levers.before_import(args.lever)
    from utils.runtime.onednn import prefer_onednn
    prefer_onednn()   # the training kernels, as train.py chooses them (kept when the parent set them)
    import keras
    import numpy as np

    backend_version(keras.backend.backend())  # import the backend itself: its share of the RSS
    import_rss_mib = peak_rss_mib()
    from benchmarks.flops import step_flops, translate_flops
    from models import CycleGAN

    settings, _ = CONFIGS[args.worker]
    levers.before_build(args.lever)
    t0 = time.perf_counter()
    gan = CycleGAN(**settings, jit_compile=True if args.jit else "auto", mixed_precision=args.mixed_precision)
    levers.after_build(args.lever, gan)
    build_s = time.perf_counter() - t0
    size = settings["input_dim"]
    rng = np.random.default_rng(0)
    inputs = [rng.uniform(-1, 1, (1,) + size).astype("float32") for _ in range(8)]

    def timed(fn, n, offset):
        times = []
        for i in range(n):
            t = time.perf_counter()
            fn(offset + i)
            times.append(time.perf_counter() - t)
        return times

    def step(i):
        gan.train_step(inputs[i % 8], inputs[(i + 3) % 8])

    first_step_s = timed(step, 1, 0)[0]
    first_step_since_start_s = time.perf_counter() - t_start
    timed(step, args.warmup, 1)
    times = timed(step, args.iters, 1 + args.warmup)
    traces_after_warmup = gan.combined.trace_count

    def infer(i):
        gan.translate(inputs[i % 8])

    first_translate_s = timed(infer, 1, 0)[0]
    timed(infer, 2, 1)
    infer_times = timed(infer, max(5, args.iters), 3)

    median = statistics.median(times)
    infer_median = statistics.median(infer_times)
    flops, iflops = step_flops(gan), translate_flops(gan)
    result = dict(
        config=args.worker, lever=args.lever, stack_calls=gan.combined.stack_calls, settings={k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()},
        backend=keras.backend.backend(), backend_version=backend_version(keras.backend.backend()),
        keras=keras.__version__, numpy=np.__version__, python=platform.python_version(),
        device=device_name(keras.backend.backend()), jit=args.jit, mixed_precision=args.mixed_precision,
        batch_size=1,
        build_s=round(build_s, 3), first_step_s=round(first_step_s, 3),
        first_step_since_start_s=round(first_step_since_start_s, 3),
        step_s=[round(t, 4) for t in times], s_per_step_median=round(median, 4),
        s_per_step_min=round(min(times), 4), s_per_step_max=round(max(times), 4),
        steps_per_s=round(1 / median, 4), images_per_s=round(2 / median, 4),  # one A and one B image per step
        gflop_per_step=round(flops / 1e9, 2), gflops=round(flops / median / 1e9, 1),
        traces_after_warmup=traces_after_warmup, traces_at_end=gan.combined.trace_count,
        first_translate_s=round(first_translate_s, 3), translate_s_median=round(infer_median, 4),
        translate_s_min=round(min(infer_times), 4), translate_images_per_s=round(1 / infer_median, 3),
        gflop_per_translate=round(iflops / 1e9, 3), translate_gflops=round(iflops / infer_median / 1e9, 1),
        peak_rss_mib=round(peak_rss_mib(), 1), import_rss_mib=round(import_rss_mib, 1),
        peak_device_mib=device_peak_mib(keras.backend.backend()), compute_dtype=gan.compute_dtype,
    )
    print("RESULT_JSON " + json.dumps(result), flush=True)


def framework_import_rss_mib(python, module):
    """Peak RSS of a fresh interpreter that only imports `module` (the framework's own share)."""
    code = f"import resource, {module}; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)"
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _run(cmd, env):
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT_JSON "):
            return json.loads(line[len("RESULT_JSON "):])
    raise RuntimeError(f"{' '.join(cmd)} failed (exit {out.returncode}):\n{out.stderr[-3000:]}")


def run_ours(args, name):
    env = {**os.environ, "KERAS_BACKEND": args.backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    cmd = [args.python, str(Path(__file__).resolve()), "--worker", name, "--iters", str(args.iters),
           "--warmup", str(args.warmup), "--lever", getattr(args, "lever", "default")] + (["--jit"] if args.jit else [])
    if args.mixed_precision:
        cmd += ["--mixed-precision"] + ([] if args.mixed_precision is True else [args.mixed_precision])
    return _run(cmd, env)


def run_official(args, name):
    official = CONFIGS[name][1]
    cmd = [args.official_python or args.python, args.official_script, "--repo", args.official, "--quiet-repo",
           "--iters", str(args.iters), "--warmup", str(args.warmup + 1), "--threads", "2"]
    cmd += [f"--{k}={v}" for k, v in official.items()]
    return _run(cmd, dict(os.environ))


def summarise(ours, official):
    """Per configuration: medians over repeats of our medians, official medians and their ratio."""
    rows = []
    for name in ours:
        o = ours[name]
        med = statistics.median(r["s_per_step_median"] for r in o)
        row = dict(config=name, s_per_step=med, images_per_s=2 / med,
                   first_step_s=statistics.median(r["first_step_s"] for r in o),
                   gflop_per_step=o[0]["gflop_per_step"],
                   peak_rss_mib=max(r["peak_rss_mib"] for r in o),
                   peak_device_mib=max((r.get("peak_device_mib") or 0) for r in o) or None,
                   import_rss_mib=max(r["import_rss_mib"] for r in o),
                   translate_s=statistics.median(r["translate_s_median"] for r in o),
                   translate_gflop=o[0]["gflop_per_translate"], runs=[r["s_per_step_median"] for r in o])
        if name in official:
            off = official[name]
            row["official_s_per_step"] = statistics.median(r["s_per_iter_median"] for r in off)
            row["official_runs"] = [r["s_per_iter_median"] for r in off]
            row["official_peak_rss_mib"] = max(r["peak_rss_mib"] for r in off)
            row["official_peak_device_mib"] = max((r.get("peak_gpu_mib") or 0) for r in off) or None
            row["official_first_step_s"] = statistics.median(r["warmup_s"][0] for r in off)
            row["official_import_rss_mib"] = off[0].get("import_rss_mib")
            # ratio of steps/s; per-repeat ratios show the spread of the side-by-side comparison
            row["ratio_vs_official"] = row["official_s_per_step"] / med
            row["ratios_per_repeat"] = [round(b["s_per_iter_median"] / a["s_per_step_median"], 3)
                                        for a, b in zip(o, off)]
            row["like_for_like"] = name in LIKE_FOR_LIKE
        rows.append(row)
    return rows


def print_table(rows, peak, meta):
    print(f"\nbackend {meta['backend']} {meta['backend_version']}, keras {meta['keras']}, device {meta['device']}, "
          f"jit {meta['jit']}, mixed precision {meta['mixed_precision']}, matmul peak {peak:.0f} GFLOP/s (numpy float32, 2 threads)")
    head = ("config", "s/step", "img/s", "GFLOP", "%peak", "1st step", "RSS MiB (import)", "official", "ratio",
            "ratio per repeat", "off. %peak", "off. 1st", "off. RSS (import)", "translate s", "tr. %peak")
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in rows:
        share = r["gflop_per_step"] / r["s_per_step"] / peak
        cells = [r["config"], f"{r['s_per_step']:.3f}", f"{r['images_per_s']:.2f}", f"{r['gflop_per_step']:.0f}",
                 f"{share:.0%}", f"{r['first_step_s']:.1f} s", f"{r['peak_rss_mib']:.0f} ({r['import_rss_mib']:.0f})"]
        if "official_s_per_step" in r:
            off_share = r["gflop_per_step"] / r["official_s_per_step"] / peak
            mark = "" if r["like_for_like"] else " (other U-Net)"
            cells += [f"{r['official_s_per_step']:.3f}{mark}", f"{r['ratio_vs_official']:.2f}x",
                      " ".join(f"{x:.2f}" for x in r["ratios_per_repeat"]),
                      f"{off_share:.0%}" if r["like_for_like"] else "-", f"{r['official_first_step_s']:.1f} s",
                      f"{r['official_peak_rss_mib']:.0f} ({r['official_import_rss_mib']:.0f})"]
        else:
            cells += ["-"] * 6
        cells += [f"{r['translate_s']:.4f}", f"{r['translate_gflop'] / r['translate_s'] / peak:.0%}"]
        print("| " + " | ".join(cells) + " |")


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return run_worker(args)
    peak = matmul_peak_gflops()
    ours, official = {}, {}
    for repeat in range(args.repeats):
        for name in args.configs:
            # alternate who goes first, so neither always meets the same neighbour's load
            order = ["ours", "official"] if repeat % 2 == 0 else ["official", "ours"]
            for who in order:
                if who == "ours":
                    ours.setdefault(name, []).append(run_ours(args, name))
                    r = ours[name][-1]
                    print(f"[{repeat}] ours     {name}: {r['s_per_step_median']:.3f} s/step "
                          f"(first {r['first_step_s']:.1f} s, RSS {r['peak_rss_mib']:.0f} MiB)", flush=True)
                elif args.official and CONFIGS[name][1] is not None:
                    official.setdefault(name, []).append(run_official(args, name))
                    official[name][-1]["import_rss_mib"] = framework_import_rss_mib(
                        args.official_python or args.python, "torch")
                    r = official[name][-1]
                    print(f"[{repeat}] official {name}: {r['s_per_iter_median']:.3f} s/step "
                          f"(RSS {r['peak_rss_mib']:.0f} MiB)", flush=True)
    peak = max(peak, matmul_peak_gflops())  # measured before and after: the best is the peak
    rows = summarise(ours, official)
    first = next(iter(ours.values()))[0]
    meta = {k: first.get(k) for k in ("backend", "backend_version", "keras", "numpy", "python", "device", "jit",
                                       "mixed_precision")}
    meta.update(cpu=platform.processor() or platform.machine(), cpu_count=os.cpu_count(),
                matmul_peak_gflops=round(peak, 1), command=" ".join([Path(sys.argv[0]).name] + sys.argv[1:]))
    print_table(rows, peak, meta)
    report = {"meta": meta, "rows": rows, "ours": ours, "official": official}
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        # the official harness records its scratch folders: kept as <tmp>/..., no path of this machine
        text = json.dumps(report, indent=2).replace(json.dumps(tempfile.gettempdir())[1:-1] + "/", "<tmp>/")
        Path(args.json_out).write_text(text + "\n")
    print("SUMMARY_JSON " + json.dumps({"meta": meta, "rows": rows}))


if __name__ == "__main__":
    main()
