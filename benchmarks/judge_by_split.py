"""Is a model's judged rate limited by the test photos or by the model? Score it on both splits.

    python benchmarks/judge_by_split.py pretrained/apple2orange_128
    python benchmarks/judge_by_split.py run/cyclegan/0001_apple2orange --limit 200 --json-out scores.json

For the training and the test photos of the model's dataset, prints the domain judge's accuracy on the
real photos and the fraction of their translations it calls the target domain, both directions
(utils.evaluation.unpaired.judge_rates_by_split, the same judge and code as evaluate.py). A model that
scores far better on the photos it trained on than on the test photos has a generalisation gap (more
data or augmentation may help); the same rate on both says the limit lies in the model or the judge.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="a run folder (latest checkpoint) or a model folder such as pretrained/...")
    parser.add_argument("--dataset", help="folder under --data-root (default: the one the folder records)")
    parser.add_argument("--data-root", help="folder of the datasets (default: the one the folder records, else data)")
    parser.add_argument("--limit", type=int, help="at most this many photos per domain and split (seeded subset)")
    parser.add_argument("--json-out", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    from utils.cli import quiet
    quiet()
    from utils.evaluation.unpaired import judge_rates_by_split, load_scored_model, model_translator

    model, checkpoint, dataset, data_root = load_scored_model(args.model, args.dataset, args.data_root)
    size = int(model.config.input_dim[0])
    scores = judge_rates_by_split(model_translator(model), dataset, data_root, size, limit=args.limit)

    def pct(value):
        return "withheld" if value is None else f"{value:.1%}"

    print(f"{dataset} at {size} px, {args.model}" + (f" ({checkpoint})" if checkpoint else ""))
    print("| split | photos A / B | judge right on real A / B | A->B judged B | B->A judged A |")
    print("|---|---|---|---|---|")
    for split, row in scores.items():
        acc = row["judge_accuracy"]
        print(f"| {split} | {row['n']['A']} / {row['n']['B']} | {acc['A']:.1%} / {acc['B']:.1%} | "
              f"{pct(row['AtoB']['judged_target'])} | {pct(row['BtoA']['judged_target'])} |")
    if args.json_out:
        record = {"model": args.model, "checkpoint": checkpoint, "dataset": dataset, "image_size": size,
                  "limit": args.limit, "splits": scores}
        Path(args.json_out).write_text(json.dumps(record, indent=2) + "\n")
        print(f"written: {args.json_out}")


if __name__ == "__main__":
    main()
