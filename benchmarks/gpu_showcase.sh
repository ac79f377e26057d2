#!/usr/bin/env bash
# Photo -> Monet on a GPU in about 7 minutes (benchmarks/gpu_showcase.py says what it trains and writes).
# For a machine with a CUDA GPU and JAX but no TensorFlow and no network (the device machine that some
# sessions are lent: DEVELOPERS.md); everything it needs travels in the ignored folder .gpu/ (about 17 MiB: what fits beside the tracked files).
#
#   bash benchmarks/gpu_showcase.sh --prepare   # here, with the network and ../shared/datasets/monet2photo:
#                                               #   .gpu/whl gets the Keras wheel and the two packages the GPU
#                                               #   machine lacks; .gpu/monet256 the training images
#                                               #   re-encoded at 256 px as JPEG, quality 75 down to 50, then
#                                               #   fewer of them, so that all travels in 62 MiB; 8 test photos
#   bash benchmarks/gpu_showcase.sh             # there, .gpu carried: writes $OUT (or run/gpu_showcase)
#   bash benchmarks/gpu_showcase.sh --tiny      # a 32 px net for 20 s on .gpu/monet256 (any CPU, Keras' backend)
#   bash benchmarks/gpu_showcase.sh run --batch-size 4 ...   # more flags of benchmarks/gpu_showcase.py
# Environment: PYTHON (default python3), DATASET (default ../shared/datasets/monet2photo, for --prepare),
# TRAIN_SECONDS (default 420).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
MODE=${1:-run}

if [ "$MODE" = "--prepare" ]; then
    DATASET=${DATASET:-../shared/datasets/monet2photo}
    [ -d "$DATASET/trainA" ] || { echo "error: no $DATASET/trainA: set DATASET to the monet2photo folder" >&2; exit 2; }
    mkdir -p .gpu/whl
    "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .gpu/whl keras==3.15.1 namex==0.1.0 optree==0.20.0
    # The device takes at most 64 MiB: the tracked files travel too (git ls-files), .gpu beside them; the
    # training images get what is left under 62 MiB: the best JPEG quality that fits (75 down to 50), then, at
    # 50, the first images of each domain only (the fewest 700 a domain; below quality 50 JPEG's own 8 px
    # blocks show, a grid the model would learn).
    tracked=$(git ls-files -z | xargs -0 stat -c %s 2>/dev/null | awk '{s+=$1} END {print s}')
    wheels=$(du -sb .gpu/whl | cut -f1)
    "$PYTHON" - "$DATASET" .gpu/monet256 $((62 * 1048576 - tracked - wheels)) <<'PY'
import io
import shutil
import sys
from pathlib import Path
from PIL import Image
source, target, budget = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
MIN_IMAGES = 700


def images(split, limit=None):
    paths = sorted(p for p in (source / split).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:limit]
    for path in paths:
        image = Image.open(path).convert("RGB")
        yield path.stem, image if image.size == (256, 256) else image.resize((256, 256), Image.BICUBIC)


def encoded(image, quality):
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


tests = [(stem, encoded(image, 95)) for stem, image in images("testB", 8)]
room = budget - sum(len(data) for _, data in tests)
chosen = None
for quality in (75, 65, 55, 50):
    train = {split: [(stem, encoded(image, quality)) for stem, image in images(split)] for split in ("trainA", "trainB")}
    count = min(len(files) for files in train.values())
    floor = min(MIN_IMAGES, count)
    while count > floor and sum(len(d) for files in train.values() for _, d in files[:count]) >= room:
        if quality != 50:
            count = 0   # a lower quality first
            break
        count -= 50
    size = sum(len(d) for files in train.values() for _, d in files[:count]) if count else None
    print(f"training images as JPEG quality {quality}: " + (f"{count} a domain, {size / 1048576:.1f} MiB" if size else
          "do not fit") + f" (room: {room / 1048576:.1f} MiB)")
    if size is not None and count >= floor and size < room:
        chosen = (train, count)
        break
shutil.rmtree(target, ignore_errors=True)
if chosen is None:
    sys.exit("error: the training images do not fit even at JPEG quality 50 and 700 a domain: carry fewer files")
train, count = chosen
for split, files in [*((s, f[:count]) for s, f in train.items()), ("testB", tests)]:
    (target / split).mkdir(parents=True, exist_ok=True)
    for stem, data in files:
        (target / split / (stem + ".jpg")).write_bytes(data)
PY
    du -sh .gpu/whl .gpu/monet256
    carried=$(du -sb .gpu | cut -f1)
    echo "travels: $((tracked / 1048576)) MiB tracked + $((carried / 1048576)) MiB .gpu (the device takes 64 MiB)"
    [ $((tracked + carried)) -lt $((62 * 1048576)) ] || { echo "error: over 62 MiB: carry fewer files" >&2; exit 1; }
    exit 0
fi

# The GPU machine has JAX and no TensorFlow: JAX there; --tiny keeps Keras' own default (TensorFlow here).
[ "$MODE" = "--tiny" ] || export KERAS_BACKEND=${KERAS_BACKEND:-jax}
export PYTHONUNBUFFERED=1
if [ -d .gpu/whl ] && ! "$PYTHON" -c "import keras" 2>/dev/null; then   # the carried wheels
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target "${TMPDIR:-/tmp}/gpu_showcase_site" .gpu/whl/*.whl
    export PYTHONPATH="${TMPDIR:-/tmp}/gpu_showcase_site"${PYTHONPATH:+:$PYTHONPATH}
fi
command -v nvidia-smi >/dev/null && { nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true; }
FLAGS=()
[ "$MODE" = "--tiny" ] && FLAGS+=(--tiny)
[ -n "${TRAIN_SECONDS:-}" ] && FLAGS+=(--train-seconds "$TRAIN_SECONDS")
"$PYTHON" benchmarks/gpu_showcase.py "${FLAGS[@]}" "${@:2}"
