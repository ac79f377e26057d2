"""Speed levers for the training step, each timed side by side with the default and the official code.

Issue #36, item 4: a lever (benchmarks/levers.py) is kept only if it is faster than the default in the
same interleaved run. Each round runs the official code and every lever once, each in a fresh process
(benchmarks/bench_train.py's worker), the order reversed every other round; printed: the medians over
rounds of each one's median s a step, its ratio to the official code (steps/s) and to the default, and
its first step.

    .venv/bin/python benchmarks/bench_levers.py --official OFFICIAL_REPO --official-python TORCH_VENV/bin/python \\
        --levers default,onepass_norm,fused_norm,joint_discriminators --rounds 3 --json-out run/levers.json
    .venv/bin/python benchmarks/bench_levers.py --probe-layout     # channels_last against channels_first
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks import bench_train  # noqa: E402
from benchmarks.levers import LEVERS  # noqa: E402

PROBE = r'''
import os, sys, time, statistics
sys.path.insert(0, os.environ["ROOT"])
from utils.runtime.onednn import prefer_onednn
prefer_onednn()
import tensorflow as tf
fmt = sys.argv[1]
# the ResNet-9 32/64 generator's heaviest convolutions at 128 px: 7x7 on 32 channels at 128 x 128, and the
# residual trunk's 3x3 on 128 channels at 32 x 32 (18 of them)
shapes = [(128, 3, 32, 7), (32, 128, 128, 3)]
layers, x = [], []
for size, c_in, c_out, k in shapes:
    shape = (1, size, size, c_in) if fmt == "NHWC" else (1, c_in, size, size)
    x.append(tf.random.normal(shape))
    layers.append(tf.Variable(tf.random.normal((k, k, c_in, c_out), stddev=0.02)))
@tf.function
def step():
    with tf.GradientTape() as tape:
        loss = 0.0
        for xi, w in zip(x, layers):
            y = tf.nn.conv2d(xi, w, 1, "SAME", data_format=fmt)
            for _ in range(8 if w.shape[-1] == 128 else 0):
                y = tf.nn.relu(tf.nn.conv2d(y, w, 1, "SAME", data_format=fmt))
            loss += tf.reduce_mean(tf.square(y))
    return tape.gradient(loss, layers)
step()
times = []
for _ in range(15):
    t = time.perf_counter(); [g.numpy() for g in step()]; times.append(time.perf_counter() - t)
print("RESULT", fmt, statistics.median(times))
'''


def probe_layout(rounds):
    """Forward and backward of a stack of the ResNet's convolutions, NHWC against NCHW: medians (s)."""
    env = {**os.environ, "ROOT": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    found = {"NHWC": [], "NCHW": []}
    for r in range(rounds):
        for fmt in (("NHWC", "NCHW") if r % 2 == 0 else ("NCHW", "NHWC")):
            out = subprocess.run([sys.executable, "-c", PROBE, fmt], env=env, capture_output=True, text=True)
            line = next((l for l in out.stdout.splitlines() if l.startswith("RESULT")), None)
            if line is None:
                found[fmt].append(None)
                print(f"  {fmt}: failed: {out.stderr.strip().splitlines()[-1:]}", flush=True)
                continue
            found[fmt].append(float(line.split()[2]))
            print(f"  {fmt}: {found[fmt][-1]:.4f} s", flush=True)
    return {fmt: statistics.median(v for v in vals if v is not None) if any(v is not None for v in vals) else None
            for fmt, vals in found.items()} | {"runs": found}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="r9_32_64_128", choices=sorted(bench_train.CONFIGS))
    p.add_argument("--levers", default="default,onepass_norm,fused_norm,joint_discriminators,caller_thread")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--official", default=None, help="extracted official repository: time it in every round")
    p.add_argument("--official-python", default=None, help="interpreter with torch for the official code")
    p.add_argument("--probe-layout", action="store_true", help="time NHWC against NCHW convolutions instead")
    p.add_argument("--json-out", default=None)
    args = p.parse_args(argv)
    if args.probe_layout:
        result = probe_layout(args.rounds)
        print(f"channels_last {result['NHWC']:.4f} s, channels_first "
              + (f"{result['NCHW']:.4f} s" if result["NCHW"] else "failed"))
        if args.json_out:
            Path(args.json_out).write_text(json.dumps({"probe_layout": result}, indent=1))
        return
    levers = [lever for lever in args.levers.split(",") if lever]
    unknown = sorted(set(levers) - set(LEVERS))
    if unknown or "default" not in levers:
        p.error(f"--levers: unknown {unknown}, or no 'default' to compare with; choose from {', '.join(LEVERS)}")
    ours_args = argparse.Namespace(python=sys.executable, backend="tensorflow", iters=args.iters, warmup=args.warmup,
                                   jit=False, mixed_precision=False, official=args.official,
                                   official_python=args.official_python, official_script=bench_train.OFFICIAL_SCRIPT)
    names = (["official"] if args.official else []) + levers
    runs = {name: [] for name in names}
    start = time.time()
    for r in range(args.rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            if name == "official":
                result = bench_train.run_official(ours_args, args.config)
            else:
                result = bench_train.run_ours(argparse.Namespace(**vars(ours_args), lever=name), args.config)
            result.pop("repo", None)            # paths of this machine: the official code's folder and
            result.pop("opt_overrides", None)   # its scratch checkpoint folder
            runs[name].append(result)
            first = result.get("first_step_s", (result.get("warmup_s") or [None])[0])
            print(f"  round {r + 1} {name}: {result['s_per_iter_median' if name == 'official' else 's_per_step_median']:.4f}"
                  f" s a step, first step {first:.2f} s", flush=True)
    rows = {}
    for name in names:
        key = "s_per_iter_median" if name == "official" else "s_per_step_median"
        rows[name] = {"s_per_step": statistics.median(run[key] for run in runs[name]),
                      "per_round": [run[key] for run in runs[name]],
                      "first_step_s": statistics.median(run["first_step_s"] if name != "official" else run["warmup_s"][0]
                                                        for run in runs[name]),
                      "peak_rss_mib": max(run["peak_rss_mib"] for run in runs[name])}
    default = rows["default"]["s_per_step"]
    print(f"{args.config}, {args.rounds} rounds, medians (ratios in steps/s; > 1 is faster):")
    for name, row in rows.items():
        vs_official = f", {rows['official']['s_per_step'] / row['s_per_step']:.2f}x the official" if args.official else ""
        print(f"  {name}: {row['s_per_step']:.4f} s a step ({', '.join(f'{t:.3f}' for t in row['per_round'])})"
              f"{vs_official}, {default / row['s_per_step']:.2f}x the default; first step {row['first_step_s']:.2f} s;"
              f" peak RSS {row['peak_rss_mib']:.0f} MiB")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"config": args.config, "rounds": args.rounds,
                                                   "minutes": round((time.time() - start) / 60, 1),
                                                   "cpu": bench_train.platform.processor() or None,
                                                   "rows": rows, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
