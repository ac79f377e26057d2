"""Loss-weight ablation from the command line: train variants alike, score them, write a table and figures.

    python ablate.py                                   # the default ablation (see utils/evaluation/ablation.py)
    python ablate.py --img-size 64 --steps 2000 --name apple2orange_64
    python ablate.py --variant full --variant lambda_id=0 --steps 50 --name quick

Results go to run/ablation/<name>/ (table.md, table.csv, translations.png, metrics.png). Running the
same command again resumes a half-done ablation: finished variants are skipped, a killed one goes on
from its checkpoint.
"""

from utils.cli import ArgumentParser, finite_float, flag_words, name_the_flags, non_negative_int, positive_int, run_main
from utils.cli import quiet  # hides TensorFlow's start-up logs; called in main() before Keras is imported

# command-line flag -> CycleGANConfig field of the base config
MODEL_FLAGS = {"generator": "generator_type", "gen_filters": "gen_n_filters", "disc_filters": "disc_n_filters",
               "lambda_validation": "lambda_validation", "lambda_reconstr": "lambda_reconstr", "lambda_id": "lambda_id",
               "epochs": "epochs", "decay_epochs": "decay_epochs", "seed": "seed"}


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="synthetic_apple2orange",
                        help="a dataset folder under --data-root; synthetic_* ones are generated if missing")
    parser.add_argument("--name", default=None, help="results folder name (default: <dataset>_<size>px_<steps>)")
    parser.add_argument("--variant", action="append", default=None, metavar="[NAME:]FIELD=VALUE[,...]",
                        help="a variant of the base config, repeatable: 'full', 'lambda_id=0', "
                             "'no_cycle:lambda_reconstr=0' (default: full, lambda_id=0, lambda_id=2, "
                             "lambda_reconstr=0, lambda_validation=0)")
    parser.add_argument("--img-size", type=positive_int, default=64, help="image height and width (default 64)")
    parser.add_argument("--steps", type=positive_int, default=2000, help="training steps per variant (default 2000)")
    parser.add_argument("--batch-size", type=positive_int, default=1)
    parser.add_argument("--generator", default="unet", choices=("unet", "resnet"))
    parser.add_argument("--gen-filters", type=positive_int, default=32)
    parser.add_argument("--disc-filters", type=positive_int, default=32)
    full = "(default: the full loss, FULL_LOSS in utils/evaluation/ablation.py)"
    parser.add_argument("--lambda-validation", type=finite_float, help=full)
    parser.add_argument("--lambda-reconstr", type=finite_float, help=full)
    parser.add_argument("--lambda-id", type=finite_float, help=full)
    parser.add_argument("--epochs", type=int, default=100,
                        help="epochs at the constant learning rate (paper 100); the decay follows")
    parser.add_argument("--decay-epochs", type=int, default=100,
                        help="epochs of linear decay to 0 (paper 100); --steps may end training earlier")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="the same seed for every variant")
    parser.add_argument("--checkpoint-interval", type=positive_int, default=None,
                        help="steps between checkpoints: the most a killed variant loses (train's default 1000)")
    parser.add_argument("--sample-interval", type=positive_int, default=None, help="steps between grids (train's default 500)")
    parser.add_argument("--examples", type=positive_int, default=4, help="test images per direction in the figure")
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--out-root", default="run/ablation")
    parser.add_argument("--export", default=None, metavar="DIR",
                        help="also copy the tables, bar chart and a smaller figure to DIR (e.g. docs/ablation)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or lines (without it: bars on a terminal, "
                        "progress lines in a log file)")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's own log lines (hidden by default)")
    return parser.parse_args(argv)


def base_values(args):
    """The base config's fields that the flags set (an unset lambda: the full loss's, filled in by main())."""
    values = {field: getattr(args, flag) for flag, field in MODEL_FLAGS.items() if getattr(args, flag) is not None}
    return {**values, "input_dim": (args.img_size, args.img_size, 3)}


def check_values(args):
    """The flags checked by the settings' own rules before TensorFlow is imported (seconds): one line that names
    the flag (ValueError: exit 2). The variants are checked once the ablation code is loaded (main())."""
    from models.config import CycleGANConfig   # no Keras in it
    from utils.training.settings import TrainingSettings, training_set_size
    given = {field: (flag_words(f"--{flag.replace('_', '-')}", getattr(args, flag)), getattr(args, flag))
             for flag, field in MODEL_FLAGS.items() if getattr(args, flag) is not None}
    given["input_dim"] = (f"--img-size {args.img_size}", (args.img_size, args.img_size, 3))
    given["batch_size"] = (f"--batch-size {args.batch_size}", args.batch_size)
    try:
        settings = TrainingSettings(batch_size=args.batch_size)
        settings.check_config(CycleGANConfig(**base_values(args)))
        counts = training_set_size(args.data_root, args.dataset)
        if counts:
            settings.check_dataset(*counts, args.dataset)
    except ValueError as error:
        raise ValueError(name_the_flags(error, given)) from None   # run_main: one line, exit 2


def main(argv=None):
    args = parse_args(argv)
    check_values(args)
    quiet(verbose=args.verbose)
    from utils.evaluation import ablation
    from utils.training.settings import TrainingSettings
    base = ablation.full_config(**base_values(args))
    parsed = [ablation.parse_variant(v) for v in args.variant or []]
    names = [name for name, _ in parsed]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"--variant {repeated[0]!r} is given twice: each variant needs its own name")
    variants = dict(parsed) if args.variant is not None else None
    for variant, config in ablation.variant_configs(base, variants).items():   # before the first one trains
        try:
            TrainingSettings(batch_size=args.batch_size).check_config(config)
        except ValueError as error:
            raise ValueError(f"variant {variant!r}: {error}") from None
    name = args.name or f"{args.dataset}_{args.img_size}px_{args.steps}"
    folder = ablation.run_ablation(base, args.dataset, name, variants, max_steps=args.steps, data_root=args.data_root,
                                   out_root=args.out_root, batch_size=args.batch_size, n_examples=args.examples,
                                   progress=False if args.quiet else "auto", checkpoint_interval=args.checkpoint_interval,
                                   sample_interval=args.sample_interval)
    print((folder / "table.md").read_text())
    for claim, holds, measured in ablation.check_claims(ablation.load_results(folder)):
        print(f"[{'holds' if holds else 'FAILS'}] {claim}: {measured}")
    print(f"results: {folder}")
    if args.export:
        print(f"exported to {ablation.export_results(folder, args.export, data_root=args.data_root)}")


if __name__ == "__main__":
    run_main(main)
