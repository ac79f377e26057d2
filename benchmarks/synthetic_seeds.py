"""Does the full CycleGAN loss beat "do nothing" on the paired synthetic test set? Three seeds, one budget.

    python benchmarks/synthetic_seeds.py                              # 3 seeds x 10,500 steps at 64 px
    python benchmarks/synthetic_seeds.py --seeds 0 1 --steps 300      # a quick look

Trains the full loss (adversarial 1, cycle 10, identity 5; utils/evaluation/ablation.py) on synthetic_apple2orange
once per seed, each as a one-variant ablation in run/ablation/<name>_seed<S>/ (run again to resume a
killed seed), then prints, for each direction, the mean and spread (sample standard deviation) over
the seeds of the paired L1 on the whole picture, the paired L1 inside the fruit mask only (the fruit is
13 % of a picture), and the background change (outside the mask), beside the do-nothing baseline, and
the minutes each seed took. Writes the figures to --json (default benchmarks/results/synthetic_seeds.json).
"""

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

METRICS = ("paired_l1", "fruit_l1", "background_change")


def spread(values):
    return statistics.stdev(values) if len(values) > 1 else 0.0


def summarise(per_seed, baseline):
    """{direction: {metric: {"mean", "std", "seeds", "do_nothing"}}} from each seed's scores."""
    summary = {}
    for direction in ("AtoB", "BtoA"):
        summary[direction] = {}
        for metric in METRICS:
            values = [scores[direction][metric] for scores in per_seed.values()]
            summary[direction][metric] = {"mean": statistics.mean(values), "std": spread(values),
                                          "seeds": values, "do_nothing": baseline[direction][metric]}
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=10_500)
    parser.add_argument("--epochs", type=int, default=18, help="epochs at 2e-4 (300 steps each at batch 1)")
    parser.add_argument("--decay-epochs", type=int, default=17, help="epochs of linear decay to 0")
    parser.add_argument("--img-size", type=int, default=64)
    parser.add_argument("--name", default="synthetic_long")
    parser.add_argument("--out-root", default="run/ablation")
    parser.add_argument("--json", default="benchmarks/results/synthetic_seeds.json")
    args = parser.parse_args(argv)

    from utils.cli import quiet
    quiet()
    from utils.evaluation import ablation

    per_seed, minutes, baseline = {}, {}, None
    for seed in args.seeds:
        base = ablation.full_config(input_dim=(args.img_size, args.img_size, 3), gen_n_filters=32, disc_n_filters=32,
                                    epochs=args.epochs, decay_epochs=args.decay_epochs, seed=seed)
        folder = ablation.run_ablation(base, "synthetic_apple2orange", f"{args.name}_seed{seed}", {"full": {}},
                                       max_steps=args.steps, out_root=args.out_root, checkpoint_interval=500)
        results = json.loads((folder / "results" / "full.json").read_text())
        per_seed[seed] = results["metrics"]
        minutes[seed] = round(results["train_seconds"] / 60, 1)   # this seed's training (resumed: the last part)
        baseline = json.loads((folder / "results" / "baselines.json").read_text())["identity"]
        print(f"seed {seed}: {minutes[seed]:.1f} min", flush=True)

    summary = summarise(per_seed, baseline)
    print(f"\n{len(args.seeds)} seeds x {args.steps} steps, {args.img_size} px; mean +- spread (do nothing)")
    for direction, rows in summary.items():
        for metric, row in rows.items():
            verdict = ""
            if metric != "background_change":   # doing nothing changes no background, by definition
                verdict = "  beats it" if row["mean"] + row["std"] < row["do_nothing"] else "  does NOT beat it"
            print(f"{direction} {metric:18s} {row['mean']:.4f} +- {row['std']:.4f}   (do nothing {row['do_nothing']:.4f})"
                  + verdict)
    record = {"settings": vars(args) | {"json": None}, "minutes_per_seed": minutes, "summary": summary}
    Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
    print(f"written: {args.json}")


if __name__ == "__main__":
    main()
