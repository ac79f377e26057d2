"""How fast does the DataLoader decode, and does the training step ever wait for it?

    .venv/bin/python benchmarks/bench_loader.py [--images 48] [--repeats 3] [--step-ms 60]

Builds a throw-away dataset of real 256 x 256 JPEGs (the fixtures in tests/fixtures/real_mini,
copied under new names), then prints, at 128 and 256 px with the training jitter:

  1. throughput: images per second (A and B together) of a full epoch read as fast as possible;
  2. waiting: the fraction of a simulated training step spent waiting for the next batch, with
     the background thread (what the trainer sees) and, for comparison, decoding in the step.

The simulated step is numpy matrix products for --step-ms milliseconds, which, like a real
TensorFlow step, keeps the CPU busy and releases the GIL. All figures are medians over --repeats.
"""

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from utils.datasets.loader import DataLoader  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "real_mini"


def make_dataset(root, n_images):
    """root/bench/{trainA,trainB} with n_images real JPEGs each; returns the dataset name."""
    sources = sorted(FIXTURES.rglob("*.jpg"))
    for split in ("trainA", "trainB"):
        folder = root / "bench" / split
        folder.mkdir(parents=True)
        for index in range(n_images):
            shutil.copy(sources[index % len(sources)], folder / f"{index:04d}.jpg")
    return "bench"


def busy_step(seconds, matrix):
    """Keep the CPU busy for about `seconds`, as a training step would."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        matrix @ matrix


def throughput(loader, batch_size):
    start = time.perf_counter()
    count = sum(len(imgs_A) + len(imgs_B) for imgs_A, imgs_B in loader.load_batch(batch_size))
    return count / (time.perf_counter() - start)


def waiting_fraction(loader, batch_size, step_seconds, matrix, background=True):
    """Share of the wall time of one epoch spent waiting for data instead of in the step."""
    waited, start = 0.0, time.perf_counter()
    if background:
        batches = loader.load_batch(batch_size)
        while True:
            before = time.perf_counter()
            batch = next(batches, None)
            waited += time.perf_counter() - before
            if batch is None:
                break
            busy_step(step_seconds, matrix)
    else:  # decode inside the loop, as the book's loader does
        orders = loader.epoch_order(0)
        for index in range(loader.n_batches(batch_size)):
            before = time.perf_counter()
            loader.make_batch(0, index, batch_size, orders)
            waited += time.perf_counter() - before
            busy_step(step_seconds, matrix)
    return waited / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=48, help="images per domain")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1, help="1 as in the paper and the book")
    parser.add_argument("--step-ms", type=float, default=60.0, help="simulated training step, milliseconds")
    args = parser.parse_args(argv)
    matrix = np.random.default_rng(0).standard_normal((96, 96))
    with tempfile.TemporaryDirectory() as root:
        name = make_dataset(Path(root), args.images)
        print(f"{args.images} real 256x256 JPEGs per domain, batch size {args.batch_size}, "
              f"simulated step {args.step_ms:.0f} ms, medians of {args.repeats} runs")
        print(f"{'size':>6} {'images/s':>10} {'wait, background thread':>25} {'wait, decoding in the step':>28}")
        for size in (128, 256):
            loader = DataLoader(name, (size, size), data_root=root, prefetch=2)
            speed = np.median([throughput(loader, args.batch_size) for _ in range(args.repeats)])
            ahead = np.median([waiting_fraction(loader, args.batch_size, args.step_ms / 1000, matrix)
                               for _ in range(args.repeats)])
            inline = np.median([waiting_fraction(loader, args.batch_size, args.step_ms / 1000, matrix, False)
                                for _ in range(args.repeats)])
            print(f"{size:>6} {speed:>10.0f} {ahead:>24.1%} {inline:>27.1%}")


if __name__ == "__main__":
    main()
