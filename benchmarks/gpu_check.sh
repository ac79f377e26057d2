#!/usr/bin/env bash
# GPU figures for the README: the speed of a training step for the book's two configurations (U-Net 128 px
# 32/32, apple2orange; ResNet 256 px 32/64, monet2photo) with the JAX and PyTorch backends, in float32 and
# mixed precision, beside the official PyTorch code on the same GPU; then peak GPU memory at 256 and 512 px.
# For a machine with a CUDA GPU, JAX and PyTorch but no TensorFlow and no network (the device machine that
# some sessions are lent: DEVELOPERS.md). Target: mixed precision >= 2x the official code's fp32 steps/s.
#
#   bash benchmarks/gpu_check.sh --prepare PCG   # here, with the network: .gpu/ gets the Keras wheel and the
#                                                #   dependencies the GPU machine lacks, and the official code's
#                                                #   .py files from PCG (an extracted tree: shared/bench/README.md)
#   bash benchmarks/gpu_check.sh                 # there, with .gpu carried: writes $OUT (or run/gpu_check)/*.json
#   bash benchmarks/gpu_check.sh --dry-run       # print the commands only
#   bash benchmarks/gpu_check.sh --tiny          # the speed runs on the tiny smoke config (any CPU; the tests)
# Environment: PYTHON (default python3), BACKENDS (default "jax torch"), ITERS (default 10).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
BACKENDS=${BACKENDS:-jax torch}
ITERS=${ITERS:-10}
OUT_DIR=${OUT:-run/gpu_check}
SPEED_CONFIGS=book_unet128,book_resnet256
MEMORY_CONFIGS=book_resnet256,book_resnet512
MODE=${1:-run}

if [ "$MODE" = "--prepare" ]; then
    [ -n "${2:-}" ] && [ -f "$2/models/cycle_gan_model.py" ] || { echo "usage: $0 --prepare EXTRACTED_OFFICIAL_TREE" >&2; exit 2; }
    mkdir -p .gpu/whl .gpu/pcg
    # keras and what it needs that the GPU machine's image lacks (namex, optree); the rest is there
    "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .gpu/whl keras==3.15.1 namex==0.1.0 optree==0.20.0
    (cd "$2" && find . -name '*.py' -exec cp --parents {} "$OLDPWD/.gpu/pcg/" \;)
    for harness in ../shared/bench/official_cyclegan_cpu.py shared/bench/official_cyclegan_cpu.py; do
        [ -f "$harness" ] && cp "$harness" .gpu/ && break
    done
    du -sh .gpu
    exit 0
fi

if [ "$MODE" = "--tiny" ]; then
    SPEED_CONFIGS=smoke; ITERS=2
fi
run() {
    echo "+ $*"
    [ "$MODE" = "--dry-run" ] || "$@"
}
if [ "$MODE" = "run" ] && [ -d .gpu/whl ]; then   # the carried wheels
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target "${TMPDIR:-/tmp}/gpu_check_site" .gpu/whl/*.whl
    export PYTHONPATH="${TMPDIR:-/tmp}/gpu_check_site"${PYTHONPATH:+:$PYTHONPATH}
fi
OFFICIAL=()
if [ -d .gpu/pcg ] && [ "$MODE" != "--tiny" ]; then
    OFFICIAL=(--official .gpu/pcg --official-python "$PYTHON" --official-script benchmarks/official_gpu.py)
elif [ "$MODE" = "--dry-run" ]; then
    OFFICIAL=(--official .gpu/pcg --official-python "$PYTHON" --official-script benchmarks/official_gpu.py)
fi
mkdir -p "$OUT_DIR"
[ "$MODE" = "--dry-run" ] || { nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true; }

first=1
for backend in $BACKENDS; do
    for precision in fp32 mixed; do
        flags=(--backend "$backend" --python "$PYTHON" --configs "$SPEED_CONFIGS" --iters "$ITERS" --warmup 2)
        [ "$precision" = mixed ] && flags+=(--mixed-precision)
        # the official code once per configuration (it does not depend on our backend or precision)
        [ $first = 1 ] && flags+=("${OFFICIAL[@]}")
        first=0
        run "$PYTHON" benchmarks/bench_train.py "${flags[@]}" --json-out "$OUT_DIR/speed_${backend}_${precision}.json"
    done
done
for backend in $BACKENDS; do
    [ "$MODE" = "--tiny" ] && break   # the tiny network measures no memory worth the time
    flags=(--backend "$backend" --python "$PYTHON" --configs "$MEMORY_CONFIGS" --iters 2 --warmup 1)
    [ "$backend" = "${BACKENDS%% *}" ] && flags+=("${OFFICIAL[@]}")
    run "$PYTHON" benchmarks/bench_train.py "${flags[@]}" --mixed-precision --json-out "$OUT_DIR/memory_${backend}.json"
done
[ "$MODE" = "--dry-run" ] && exit 0

# One table: steps/s of each run against the official code's float32 steps/s on the same GPU.
"$PYTHON" - "$OUT_DIR" <<'EOF'
import json, sys
from pathlib import Path
rows, official = [], {}
for path in sorted(Path(sys.argv[1]).glob("*.json")):
    report = json.loads(path.read_text())
    for row in report["rows"]:
        if row.get("official_s_per_step"):
            official[row["config"]] = row
        rows.append((path.stem, row, report["meta"]))
print("| run | config | device | s/step | steps/s | vs official fp32 | peak GPU MiB (official) |")
print("|---|---|---|---|---|---|---|")
for name, row, meta in rows:
    base = official.get(row["config"])
    ratio = f"{base['official_s_per_step'] / row['s_per_step']:.2f}x" if base else "-"
    memory = f"{row.get('peak_device_mib')} ({row.get('official_peak_device_mib') or (base or {}).get('official_peak_device_mib')})"
    print(f"| {name} | {row['config']} | {meta['device']} | {row['s_per_step']:.4f} | {1 / row['s_per_step']:.1f} "
          f"| {ratio} | {memory} |")
EOF
