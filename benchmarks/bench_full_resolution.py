"""Seconds and peak memory of full-resolution translation (utils/inference/translation.py) at 512 and 1024 px,
with each of TensorFlow's CPU kernels (utils/runtime/onednn.py: oneDNN or Eigen, chosen before TensorFlow loads).

    nice -n 5 .venv/bin/python benchmarks/bench_full_resolution.py [--sizes 512 1024] [--models demo book]
    .venv/bin/python benchmarks/bench_full_resolution.py --sizes 256 512 1024 2048 --models book \
        --kernels chosen onednn eigen [--isa AVX2] [--timeout 120]

--kernels: `chosen` is what translate.py picks on this CPU (models/onednn.prefer_onednn("translation")),
`onednn` and `eigen` force TF_ENABLE_ONEDNN_OPTS=1 / 0. --isa AVX2 sets oneDNN's ONEDNN_MAX_CPU_ISA, so an
AVX-512 CPU runs oneDNN's AVX2 code paths (what an AVX2-only laptop gets). A translation that passes
--timeout seconds is reported as not finished.

The whole image is translated at its own size, padded to the size multiple (translate.py's path without
its caps: --max-side and, in a notebook, models/onednn.SAFE_SIDE), so the kernels are what is measured.
Each (model, size) runs in a fresh process, so its peak resident memory (ru_maxrss) is its own:
the process loads the generators, translates one photo-like image of that size once to warm up,
then --repeats more times, and reports the median seconds, the peak RSS and the peak minus the RSS
before the first translation (what the image itself costs). Untrained weights cost the same as
trained ones. The load average is printed before and after: on a shared machine the seconds vary.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# name -> CycleGANConfig fields; the demo is pretrained/synthetic_apple2orange_64
MODELS = {"demo": dict(input_dim=(64, 64, 3), generator_type="unet", gen_n_filters=16),
          "book": dict(input_dim=(128, 128, 3), generator_type="unet", gen_n_filters=32),
          "resnet9": dict(input_dim=(256, 256, 3), generator_type="resnet", gen_n_filters=64, n_resnet_blocks=9)}

CHILD = """
import json, os, resource, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
sys.path.insert(0, {root!r})
from utils.runtime.onednn import prefer_onednn
prefer_onednn("translation")   # what translate.py does first thing (kept when the parent forced a value)
import numpy as np
from models.config import CycleGANConfig
from utils.inference.trained_model import build_any_size_generator
from utils.inference.translation import padded_size, translate_padded
config = CycleGANConfig(**{fields!r})
generator = build_any_size_generator(config, "g_AB")
yy, xx = np.mgrid[:{size}, :{size}]
image = np.stack([(yy * 7 + xx * 3) % 256, (xx * 5) % 256, (yy * 11) % 256], -1).astype(np.uint8)
hw = image.shape[:2]   # the whole image at its own size: no cap (the kernels are measured, not the caps)
padded = padded_size(hw, config.size_multiple)
rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
out = translate_padded(generator, image, hw, padded)
assert out.shape == image.shape, out.shape
times = []
for _ in range({repeats}):
    start = time.perf_counter()
    translate_padded(generator, image, hw, padded)
    times.append(time.perf_counter() - start)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"seconds": sorted(times)[len(times) // 2], "peak_rss_mib": round(peak),
                  "image_mib": round(peak - rss_before), "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
                  "translated_hw": list(padded)}}))
"""


KERNELS = {"onednn": "1", "eigen": "0"}


def child_environment(kernels, isa=None):
    """The environment of one measurement: TF_ENABLE_ONEDNN_OPTS forced or chosen as translate.py does."""
    sys.path.insert(0, str(ROOT))
    from utils.runtime.onednn import CHOSEN_FOR, VARIABLE
    env = {key: value for key, value in os.environ.items() if key not in (VARIABLE, CHOSEN_FOR)}
    if isa:
        env["ONEDNN_MAX_CPU_ISA"] = isa
    if kernels != "chosen":   # chosen: the child calls prefer_onednn("translation") as translate.py does
        env[VARIABLE] = KERNELS[kernels]
    return env


def measure(model, size, repeats, kernels="chosen", isa=None, timeout=1800):
    code = CHILD.format(root=str(ROOT), fields=MODELS[model], size=size, repeats=repeats)
    env = child_environment(kernels, isa)
    from utils.runtime.onednn import kernels_for   # importable once child_environment put the root on sys.path
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"seconds": None, "peak_rss_mib": None, "image_mib": None, "timed_out_after_s": timeout,
                "onednn": env.get("TF_ENABLE_ONEDNN_OPTS") or kernels_for("translation", environ=env)}
    if done.returncode != 0:
        raise RuntimeError(f"{model} at {size} px failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])   # "onednn": the value the child's TensorFlow loaded with


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    p.add_argument("--models", nargs="+", default=["demo", "book"], choices=sorted(MODELS))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--kernels", nargs="+", default=["chosen"], choices=("chosen", *KERNELS),
                   help="TensorFlow's CPU kernels: as translate.py chooses, or forced (default: chosen)")
    p.add_argument("--isa", help="oneDNN's ONEDNN_MAX_CPU_ISA for the children, e.g. AVX2 on an AVX-512 CPU")
    p.add_argument("--timeout", type=float, default=1800, help="seconds one measurement may take")
    p.add_argument("--json-out", help="also write the rows as JSON here")
    args = p.parse_args(argv)
    load_before = os.getloadavg()
    print(f"{os.cpu_count()} CPUs, load average before: {load_before[0]:.1f} (1 min), {load_before[1]:.1f} (5 min)")
    print(f"oneDNN ISA limit: {args.isa or 'none (the CPU as it is)'}")
    print("| model | kernels | size | seconds (median) | peak RSS MiB | of which the image MiB |\n"
          "|---|---|---|---|---|---|")
    rows = []
    for model in args.models:
        for kernels in args.kernels:
            for size in args.sizes:
                row = {"model": model, "kernels": kernels, "size": size,
                       **measure(model, size, args.repeats, kernels, args.isa, args.timeout)}
                rows.append(row)
                name = f"{kernels} (TF_ENABLE_ONEDNN_OPTS={row['onednn']})"
                seconds = (f"{row['seconds']:.2f}" if row["seconds"] is not None
                           else f"not finished in {row['timed_out_after_s']:.0f} s")
                print(f"| {model} | {name} | {size} x {size} | {seconds} | {row['peak_rss_mib']} | {row['image_mib']} |",
                      flush=True)
    load_after = os.getloadavg()
    print(f"load average after: {load_after[0]:.1f} (1 min), {load_after[1]:.1f} (5 min)")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"rows": rows, "cpus": os.cpu_count(), "isa_limit": args.isa,
                                                   "load_before": load_before,
                                                   "load_after": load_after, "time": time.ctime()}, indent=2))
    return rows


if __name__ == "__main__":
    main()
