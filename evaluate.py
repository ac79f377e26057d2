"""Score a trained CycleGAN on a real, unpaired dataset's test images, beside the baselines.

    python evaluate.py run/cyclegan/0001_apple2orange
    python evaluate.py pretrained/apple2orange_128 --dataset apple2orange
    python evaluate.py RUN --inception download     # also KID on InceptionV3 ImageNet features (fetches ~90 MB once)

Writes <run>/evaluation.json, <run>/images/evaluation.png and an "Evaluation" section of its index.html,
and prints the table: the domain judge's rates (with its own accuracy on the real test images), KID
and the cycle error, for the CycleGAN and for doing nothing, histogram matching and colour transfer
(utils/evaluation/unpaired.py). The judge is trained once per dataset and image size and cached in
<data-root>/.judges/.
"""

from pathlib import Path

from utils.runtime.onednn import prefer_onednn
from utils.cli import ArgumentParser, run_main
from utils.training import run_folder as layout   # the run folder's file names; no Keras in it
from utils.cli import quiet  # hides TensorFlow's start-up logs; called in main() before Keras is imported


def main(argv=None):
    p = ArgumentParser(description="Evaluate a CycleGAN on real unpaired test images (judge, KID, cycle).")
    p.add_argument("run", help="a run folder (its latest checkpoint is scored)")
    p.add_argument("--dataset", help="folder under --data-root with testA/testB (default: the run's dataset)")
    p.add_argument("--data-root", help="folder of the datasets (default: the run's, else data)")
    p.add_argument("--inception", choices=("auto", "download", "off"), default="auto",
                   help="KID on InceptionV3 features: auto = when its weights are already on this machine")
    p.add_argument("--test-limit", type=int, help="score at most this many test images per domain (quick looks)")
    p.add_argument("--image-size", type=int, help="score at this size instead of the model's (e.g. a 128 px model "
                   "on 256 px test photos), with a judge of that size; writes evaluation_<size>px.json")
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's own log lines (hidden by default)")
    args = p.parse_args(argv)
    # The checks that need no model come before TensorFlow's import (seconds).
    if args.test_limit is not None and args.test_limit < 2:
        p.error(f"--test-limit {args.test_limit}: KID needs at least 2 images per domain")
    if args.image_size is not None and not (32 <= args.image_size <= 1024 and args.image_size % 16 == 0):
        p.error(f"--image-size {args.image_size}: must be a multiple of 16 from 32 to 1024 (a judge is trained at it)")
    if not (Path(args.run) / layout.CONFIG).is_file():
        p.error(f"{args.run} is not a run folder (no {layout.CONFIG}): give a folder under run/cyclegan/ or pretrained/")
    prefer_onednn("translation")   # TensorFlow's fastest CPU kernels for translating (utils/runtime/onednn.py)
    quiet(verbose=args.verbose)

    from utils.evaluation.unpaired import evaluate_run, format_table
    results = evaluate_run(args.run, args.dataset, args.data_root, args.inception, test_limit=args.test_limit,
                           image_size=args.image_size)
    print(format_table(results))
    print(f"written: evaluation*.json and images/evaluation*.png in {args.run}")


if __name__ == "__main__":
    run_main(main)   # a user's error (a missing dataset, say) is one line on stderr; --debug shows the traceback
