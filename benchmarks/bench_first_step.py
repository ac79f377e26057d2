"""Where the first training step's time goes, and what the levers against it give (issue #36, item 3).

Each variant runs in a fresh subprocess (a first step is only first once per process) and reports:
the TensorFlow import, building the CycleGAN, then the first `train_step` split by train function
(the combined generators' model, d_A, d_B: each is traced, optimised by Grappler and its oneDNN
primitives created on its first call), and the second step for comparison. Variants are run
interleaved, `--repeats` times each, and medians printed (these machines are shared: compare
figures of one run only).

    .venv/bin/python benchmarks/bench_first_step.py                        # r9_32_64_128, the default variants
    .venv/bin/python benchmarks/bench_first_step.py --variants default,grappler_off --repeats 3
    CYCLEGAN_CPU_KIND=avx2 .venv/bin/python benchmarks/bench_first_step.py  # the stacked calls of an AVX2 CPU

Variants: default; grappler_off (TensorFlow's graph optimiser off: tf.config.optimizer's
disable_meta_optimizer); stacked / unstacked (the combined model's generator calls forced either way,
models/combined.py 4.); eigen (TF_ENABLE_ONEDNN_OPTS=0: no oneDNN primitives to create); no_<pass>: one
Grappler pass off (tf.config.optimizer.set_experimental_options({<pass>: False}), e.g. no_remapping,
no_layout_optimizer, no_constant_folding, no_arithmetic_optimization).
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
from benchmarks.bench_train import CONFIGS  # noqa: E402  (the configurations of the step benchmark)

VARIANTS = ("default", "grappler_off", "stacked", "unstacked", "eigen")
PARTS = ("import_s", "build_s", "first_combined_s", "forward_trace_s", "backward_trace_s", "apply_trace_s",
         "optimise_and_run_s", "first_d_A_s", "first_d_B_s", "first_step_s", "second_step_s")


def worker(config, variant):
    """Time one fresh process's first steps; print one RESULT_JSON line."""
    from utils.runtime.onednn import prefer_onednn
    prefer_onednn()   # the training kernels, as train.py chooses them
    t0 = time.perf_counter()
    import keras
    import numpy as np
    import tensorflow as tf
    import_s = time.perf_counter() - t0
    if variant == "grappler_off":
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    elif variant.startswith("no_"):   # one Grappler pass off, e.g. no_remapping, no_constant_folding
        tf.config.optimizer.set_experimental_options({variant[3:]: False})
    from models import CycleGAN

    t = time.perf_counter()
    gan = CycleGAN(**CONFIGS[config][0])
    if variant in ("stacked", "unstacked"):
        gan.combined.stack_calls = variant == "stacked"
    build_s = time.perf_counter() - t

    # Timestamps inside the combined model's first call: its forward pass traced (call), the gradient
    # traced (until the optimizer's apply starts tracing), the update traced; the rest of that call is
    # Grappler, oneDNN's primitives and the first execution.
    marks = {}
    call, apply = gan.combined.call, gan.combined_optimizer.apply

    def marked_call(*a, **k):
        marks.setdefault("call_in", time.perf_counter())
        out = call(*a, **k)
        marks.setdefault("call_out", time.perf_counter())
        return out

    def marked_apply(*a, **k):
        marks.setdefault("apply_in", time.perf_counter())
        out = apply(*a, **k)
        marks.setdefault("apply_out", time.perf_counter())
        return out

    gan.combined.call, gan.combined_optimizer.apply = marked_call, marked_apply
    calls = []
    run = gan.executor.train_on_batch

    def timed_train_on_batch(model, x, y):
        start = time.perf_counter()
        marks.setdefault(f"{model.name}_in", start)
        logs = run(model, x, y)
        keras.ops.convert_to_numpy(logs["loss"])
        marks.setdefault(f"{model.name}_out", time.perf_counter())
        calls.append((model.name, time.perf_counter() - start))
        return logs

    gan.executor.train_on_batch = timed_train_on_batch
    rng = np.random.default_rng(0)
    shape = (1,) + tuple(CONFIGS[config][0]["input_dim"])
    batches = [rng.uniform(-1, 1, shape).astype("float32") for _ in range(4)]
    t = time.perf_counter()
    gan.train_step(batches[0], batches[1])
    first_step_s = time.perf_counter() - t
    first = dict(calls)
    t = time.perf_counter()
    gan.train_step(batches[2], batches[3])
    second_step_s = time.perf_counter() - t
    result = dict(config=config, variant=variant, stack_calls=gan.combined.stack_calls,
                  onednn=os.environ.get("TF_ENABLE_ONEDNN_OPTS"), import_s=import_s, build_s=build_s,
                  first_combined_s=first.get("combined"),
                  forward_trace_s=marks["call_out"] - marks["call_in"],
                  backward_trace_s=marks["apply_in"] - marks["call_out"],
                  apply_trace_s=marks["apply_out"] - marks["apply_in"],
                  optimise_and_run_s=marks["combined_out"] - marks["apply_out"],
                  first_d_A_s=first.get("d_A"), first_d_B_s=first.get("d_B"),
                  first_step_s=first_step_s, second_step_s=second_step_s)
    print("RESULT_JSON " + json.dumps(result), flush=True)


def run_variant(config, variant):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    if variant == "eigen":
        env["TF_ENABLE_ONEDNN_OPTS"] = "0"
        env.pop("CYCLEGAN_KERNELS_CHOSEN_FOR", None)   # the value is ours, not a choice to replace
    out = subprocess.run([sys.executable, __file__, "--worker", config, variant], env=env,
                         capture_output=True, text=True, check=False)
    line = next((l for l in out.stdout.splitlines() if l.startswith("RESULT_JSON ")), None)
    if line is None:
        raise RuntimeError(f"{config} {variant} failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(line[len("RESULT_JSON "):])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="r9_32_64_128", choices=sorted(CONFIGS))
    p.add_argument("--variants", default="default,grappler_off,stacked,unstacked",
                   help=f"comma-separated, from {', '.join(VARIANTS)}")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--json-out", help="write every run and the medians here")
    p.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(*args.worker)
    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(v for v in set(variants) - set(VARIANTS) if not v.startswith("no_"))
    if unknown:
        p.error(f"--variants: unknown {unknown}; choose from {', '.join(VARIANTS)}")
    if args.repeats < 1:
        p.error("--repeats must be >= 1")
    runs = []
    for repeat in range(args.repeats):
        for variant in (variants if repeat % 2 == 0 else variants[::-1]):   # interleaved, order alternating
            runs.append(run_variant(args.config, variant))
            print(f"  {variant}: first step {runs[-1]['first_step_s']:.2f} s", flush=True)
    medians = {v: {part: statistics.median(r[part] for r in runs if r["variant"] == v) for part in PARTS}
               for v in variants}
    print(f"{args.config}, medians of {args.repeats} fresh processes each (CPU kind: "
          f"{os.environ.get('CYCLEGAN_CPU_KIND', 'this machine')}):")
    for variant, row in medians.items():
        print(f"  {variant}: " + ", ".join(f"{part[:-2]} {row[part]:.2f}" for part in PARTS))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"config": args.config, "runs": runs, "medians": medians}, indent=1))


if __name__ == "__main__":
    main()
