"""Photo -> Monet on a GPU in a fixed wall time: the book's Monet setup trained with Keras' JAX backend.

The book's monet2photo model (Foster, chapter 5: ResNet generator, 256 px, 32 generator and 64
discriminator filters, lambda_id 5) with the paper's losses and image pool (Zhu et al. 2017, section
4), mixed precision, batch 1, for `--train-seconds` of wall time (compiling included). The paper's
learning-rate schedule (constant, then linear decay to 0) is fitted to that time: the rate stays at
2e-4 for the first half of the time, then decays to 0 over as many steps as the measured speed of the
first half says fit in the second half.

It writes into --out (default: $OUT, else run/gpu_showcase), at most 8 files:

    monet2photo_256/   a model folder (config.json, float16 g_AB / g_BA weights; utils/inference/trained_model.py):
                       written at the half-time too, so a run cut short still leaves a model
    grid.png           8 test photos: the photo, g_BA's Monet, g_AB's reconstruction (read back from the folder)
    showcase.json      steps, seconds per step, GPU, schedule, losses (the last 10 % of steps and a history)

Data: a folder with trainA (Monet paintings), trainB (photos) and testB, images at the training size
or larger; `benchmarks/gpu_showcase.sh --prepare` makes it from monet2photo. Each training image is
resized once to the paper's load size (286 for 256), then each step takes a random 256 crop and a
random horizontal flip (the paper's resize_and_crop jitter).

    bash benchmarks/gpu_showcase.sh --prepare     # here: .gpu/ gets the data and the Keras wheel
    bash benchmarks/gpu_showcase.sh               # there, .gpu carried (the device machine)
    python benchmarks/gpu_showcase.py --tiny --data DIR --out DIR   # any CPU, 20 s (the test)
"""

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

MODEL_FOLDER = "monet2photo_256"
N_GRID = 8
BOOK_MONET = {"img_size": 256, "gen_filters": 32, "disc_filters": 64, "n_resnet_blocks": None, "lambda_id": 5.0,
              "train_seconds": 420.0}
TINY = {"img_size": 32, "gen_filters": 4, "disc_filters": 4, "n_resnet_blocks": 1, "lambda_id": 5.0,
        "train_seconds": 20.0}


# The ResNet's upsampling of the GPU recipe: the resize-convolution that the 128 px CPU A/B of issue #33
# found without the grid (docs/monet2photo.md, "The ResNet's upsampling").
RESNET_UPSAMPLING = "bilinear"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(ROOT / ".gpu" / "monet256"), help="trainA/trainB/testB folder")
    p.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "run" / "gpu_showcase"))
    p.add_argument("--tiny", action="store_true", help="a 32 px net with 4 filters for 20 s (any CPU; the test)")
    p.add_argument("--train-seconds", type=float, help="wall time of the training, compiling included (default 420)")
    p.add_argument("--batch-size", type=int, default=1, help="images of each domain per step (paper: 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resnet-upsampling", choices=("transposed", "nearest", "bilinear"), default=RESNET_UPSAMPLING,
                   help=f"the generators' u128/u64 (default {RESNET_UPSAMPLING}: issue #33's CPU A/B winner on the "
                   "checkerboard score, docs/monet2photo.md; transposed: the paper's, the shipped model's)")
    p.add_argument("--mixed-precision", choices=("auto", "off"), default="auto",
                   help="auto: bfloat16 on GPUs of compute capability >= 8 (float16 below), off on a CPU "
                   "without bfloat16 (utils/runtime/devices.py)")
    args = p.parse_args(argv)
    for name, value in (TINY if args.tiny else BOOK_MONET).items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)
    if not args.train_seconds > 0 or args.batch_size < 1:
        p.error("--train-seconds must be > 0 and --batch-size >= 1")
    return args


def load_size(img_size):
    """The paper's load size for a crop size: 286 for 256 (official --load_size / --crop_size)."""
    return int(round(img_size * 286 / 256))


def load_domain(folder, size, limit=None):
    """Every image of `folder` as one uint8 array (n, size, size, 3), read on all cores."""
    from utils.images import list_images, read_rgb, resize_rgb
    paths = list_images(folder)[:limit]
    if not paths:
        raise SystemExit(f"error: no images in {folder}: run `bash benchmarks/gpu_showcase.sh --prepare` first")
    with ThreadPoolExecutor(min(16, os.cpu_count() or 1)) as pool:
        images = list(pool.map(lambda path: resize_rgb(read_rgb(path), (size, size)), paths))
    return np.stack(images), paths


def random_crops(images, batch_size, crop, rng):
    """A batch of random crop x crop windows of random images, each flipped left-right with p 1/2, in [-1, 1]."""
    from utils.images import to_model_range
    index = rng.integers(len(images), size=batch_size)
    top, left = rng.integers(images.shape[1] - crop + 1, size=(2, batch_size))
    batch = np.stack([images[i, t:t + crop, l:l + crop] for i, t, l in zip(index, top, left)])
    flip = rng.uniform(size=batch_size) < 0.5
    batch[flip] = batch[flip, :, ::-1]
    return to_model_range(batch)


class FittedSchedule:
    """The paper's schedule (constant, then linear decay to 0) fitted to a wall time.

    Constant until half the time has passed; then the decay runs over the number of steps that the
    speed measured since `warmup` steps (compiling excluded) says fit in the remaining time.
    """

    def __init__(self, base_lr, seconds, start, warmup=20):
        self.base_lr, self.seconds, self.start, self.warmup = base_lr, seconds, start, warmup
        self.deadline = start + seconds
        self.half_time = start + seconds / 2
        self.warm_at = None            # (step, time) once `warmup` steps are done
        self.constant_steps = None     # steps at the constant rate (known at the half-time)
        self.decay_steps = None
        self.seconds_per_step = None   # measured over the constant half
        self.stopped_by = None

    def learning_rate(self, step, now):
        """The rate for step `step` (0-based) starting at time `now`; None once the run should stop."""
        if step == self.warmup:
            self.warm_at = (step, now)
        if self.constant_steps is None:
            if now < self.half_time:
                return self.base_lr
            self.constant_steps = step
            warm_step, warm_time = self.warm_at or (0, self.start)
            self.seconds_per_step = (now - warm_time) / max(1, step - warm_step)
            self.fit_decay(now)
        done = step - self.constant_steps
        if done >= self.decay_steps:
            self.stopped_by = "schedule"
            return None
        if now >= self.deadline:
            self.stopped_by = f"deadline (the rate was still {self.base_lr * (1.0 - done / self.decay_steps):.2e})"
            return None
        return self.base_lr * (1.0 - done / self.decay_steps)

    def fit_decay(self, now):
        """Decay over the steps that fit between `now` and the deadline at the speed of the constant half."""
        self.decay_steps = max(1, int(0.98 * (self.deadline - now) / self.seconds_per_step))

    def to_dict(self):
        return {"base_lr": self.base_lr, "constant_steps": self.constant_steps, "decay_steps": self.decay_steps,
                "train_seconds": self.seconds, "stopped_by": self.stopped_by}


def make_grid(generators, photos, path):
    """Rows: test photos, g_BA's Monets, g_AB's reconstructions; written as one PNG."""
    from PIL import Image

    from utils.images import to_model_range, to_uint8
    real = to_model_range(photos)
    monet = np.asarray(generators.g_BA.predict_on_batch(real))
    back = np.asarray(generators.g_AB.predict_on_batch(monet))
    rows = [np.concatenate(list(to_uint8(images)), axis=1) for images in (real, monet, back)]
    Image.fromarray(np.concatenate(rows, axis=0)).save(path)
    return monet


def summarise(history, last_fraction=0.1):
    """Mean of each loss over the last 10 % of steps, and at most 200 points of history per loss."""
    names = list(history[0])
    tail = history[-max(1, int(len(history) * last_fraction)):]
    every = max(1, len(history) // 200)
    return ({name: float(np.mean([h[name] for h in tail])) for name in names},
            {name: [round(h[name], 5) for h in history[::every]] for name in names}, every)


def main(argv=None):
    args = parse_args(argv)
    started = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = Path(args.data)

    import keras

    from models import CycleGAN
    from utils.runtime import devices
    from utils.inference.trained_model import load_generators, save_model_folder

    gpu = devices.gpu()
    print(f"Keras {keras.__version__}, backend {keras.backend.backend()}, "
          f"{'GPU ' + gpu['name'] if gpu else 'CPU ' + platform.processor()}", flush=True)
    monets, _ = load_domain(data / "trainA", load_size(args.img_size))
    photos, _ = load_domain(data / "trainB", load_size(args.img_size))
    test_photos, test_paths = load_domain(data / "testB", args.img_size, limit=N_GRID)
    loaded = time.perf_counter()
    print(f"data: {len(monets)} Monets, {len(photos)} photos, {len(test_photos)} test photos "
          f"({loaded - started:.1f} s)", flush=True)

    gan = CycleGAN(input_dim=(args.img_size, args.img_size, 3), generator_type="resnet",
                   gen_n_filters=args.gen_filters, disc_n_filters=args.disc_filters,
                   n_resnet_blocks=args.n_resnet_blocks, lambda_id=args.lambda_id, seed=args.seed,
                   mixed_precision=args.mixed_precision == "auto", resnet_upsampling=args.resnet_upsampling)
    built = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    schedule = FittedSchedule(gan.config.learning_rate, args.train_seconds, start=time.perf_counter(),
                              warmup=20 if not args.tiny else 2)
    command = " ".join(["python benchmarks/gpu_showcase.py", *(sys.argv[1:] if argv is None else argv)])
    meta = {"gpu": gpu, "backend": keras.backend.backend(), "keras": keras.__version__,
            "mixed_precision": gan.config.mixed_precision, "batch_size": args.batch_size,
            "data": {"monets": len(monets), "photos": len(photos), "folder": data.name,
                     "grid_photos": [p.name for p in test_paths]},
            "config": gan.config.to_dict(), "load_seconds": round(loaded - started, 2),
            "build_seconds": round(built - loaded, 2)}
    history, step_seconds, first_steps = [], [], []
    half_saved = False
    step = 0
    last_print = time.perf_counter()
    while True:
        now = time.perf_counter()
        lr = schedule.learning_rate(step, now)
        if lr is None:
            break
        if schedule.constant_steps is not None and not half_saved:   # the half-time: keep a model now
            save_model_folder(gan, out / MODEL_FOLDER, made_by=command, float16=True, dataset="monet2photo")
            half_saved = True
            now = time.perf_counter()
            schedule.fit_decay(now)   # the time the save took is not there for steps
            print(f"half-time: {step} steps at lr {gan.config.learning_rate:g}; decay over "
                  f"{schedule.decay_steps} steps; model folder written", flush=True)
        for optimizer in gan.optimizers.values():
            optimizer.learning_rate = lr
        imgs_A = random_crops(monets, args.batch_size, args.img_size, rng)
        imgs_B = random_crops(photos, args.batch_size, args.img_size, rng)
        losses = gan.train_step(imgs_A, imgs_B)
        done = time.perf_counter()
        (first_steps if step < schedule.warmup else step_seconds).append(done - now)
        if not all(math.isfinite(v) for v in losses.values()):
            meta.update(status=f"diverged: a non-finite loss at step {step + 1}", losses_at_stop=losses)
            (out / "showcase.json").write_text(json.dumps(meta, indent=2) + "\n")
            print(f"error: {meta['status']} ({losses}); nothing written after the half-time", file=sys.stderr)
            return 1
        history.append(losses)
        step += 1
        if done - last_print > (5 if args.tiny else 30):
            last_print = done
            print(f"step {step} {done - schedule.start:.0f} s lr {lr:.2e} " +
                  " ".join(f"{k} {v:.3f}" for k, v in losses.items() if k in ("d_loss", "g_loss", "reconstr_A")),
                  flush=True)
    trained = time.perf_counter()
    bad = [w.path for net in (gan.g_AB, gan.g_BA) for w in net.weights
           if not np.all(np.isfinite(keras.ops.convert_to_numpy(w)))]
    if bad:
        meta["status"] = f"non-finite weights after {step} steps: {bad[:3]}"
        (out / "showcase.json").write_text(json.dumps(meta, indent=2) + "\n")
        print(f"error: {meta['status']}", file=sys.stderr)
        return 1
    save_model_folder(gan, out / MODEL_FOLDER, made_by=command, float16=True, dataset="monet2photo",
                      notes=f"{step} steps of batch {args.batch_size} in {trained - schedule.start:.0f} s "
                      f"on {gpu['name'] if gpu else 'a CPU'} (benchmarks/gpu_showcase.py)")
    generators = load_generators(out / MODEL_FOLDER)   # the written folder, read back as a user would
    monet = make_grid(generators, test_photos, out / "grid.png")
    if not np.all(np.isfinite(monet)):
        meta["status"] = "the written model translates to non-finite pixels"
        (out / "showcase.json").write_text(json.dumps(meta, indent=2) + "\n")
        print(f"error: {meta['status']}", file=sys.stderr)
        return 1
    final, curves, every = summarise(history)
    meta.update(status="ok", steps=step, schedule=schedule.to_dict(),
                train_seconds=round(trained - schedule.start, 1),
                first_steps_seconds=[round(s, 3) for s in first_steps],
                seconds_per_step_median=round(statistics.median(step_seconds), 5) if step_seconds else None,
                images_per_second=round(args.batch_size / statistics.median(step_seconds), 2) if step_seconds else None,
                step_seconds_history=[round(t, 4) for t in step_seconds[::every]],
                losses_last_10_percent=final, loss_history_every=every, loss_history=curves,
                total_seconds=round(time.perf_counter() - started, 1))
    (out / "showcase.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"done: {step} steps in {meta['train_seconds']} s, {meta['seconds_per_step_median']} s a step; "
          f"losses {', '.join(f'{k} {v:.3f}' for k, v in final.items())}; wrote {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
