"""Train a CycleGAN from the command line; every run gets its own folder under run/cyclegan/.

    python train.py --demo                                   # synthetic apples -> oranges (time: docs/speed.md)
    python train.py --dataset apple2orange                   # the book's setup (U-Net, 128 px, lambda_id 2)
    python train.py --dataset monet2photo --generator-type resnet --img-size 256 --lambda-id 5 --disc-filters 64
    python train.py --resume run/cyclegan/0001_apple2orange  # go on from the latest checkpoint

Ctrl-C (or SIGTERM) saves a checkpoint and stops; --resume continues the same curves. A mistake
(a bad value, a locked or damaged run, a full disk, a NaN loss) is one line on stderr and exit code
2 or 1; --debug (or CYCLEGAN_DEBUG=1) shows the traceback. Open the run folder's
index.html for the grids, loss curves and settings, or `tensorboard --logdir run/cyclegan`.
"""

import sys

from utils.cli import quiet  # hides TensorFlow's start-up logs; called in main() before Keras is imported

from utils.cli import (ArgumentParser, finite_float, flag_words, name_the_flags, non_negative_int,  # noqa: E402
                       positive_int, run_main)

# The Quickstart demo: small enough for a 2-core CPU (time: docs/speed.md, How long the commands take), big
# enough that the grids show apples turning orange. 64 px U-Net, 16/16 filters; docs/training.md.
DEMO = {"dataset": "synthetic_apple2orange", "generator_type": "unet", "img_size": 64, "gen_filters": 16,
        "disc_filters": 16, "epochs": 6, "decay_epochs": 4, "sample_interval": 250, "checkpoint_interval": 500}

# command-line flag -> CycleGANConfig field
MODEL_FLAGS = {"generator_type": "generator_type", "gen_filters": "gen_n_filters", "disc_filters": "disc_n_filters",
               "n_resnet_blocks": "n_resnet_blocks", "lambda_validation": "lambda_validation",
               "lambda_reconstr": "lambda_reconstr", "lambda_id": "lambda_id", "learning_rate": "learning_rate",
               "epochs": "epochs", "decay_epochs": "decay_epochs", "seed": "seed",
               "data_parallel": "data_parallel", "mixed_precision": "mixed_precision", "jit": "jit_compile",
               "unet_upsampling": "unet_upsampling", "resnet_upsampling": "resnet_upsampling", "diff_augment": "diff_augment",
               "disc_n_layers": "disc_n_layers"}
JIT = {"auto": "auto", "on": True, "off": False}  # --jit -> CycleGANConfig.jit_compile


def parse_args(argv=None):
    p = ArgumentParser(description="Train a CycleGAN (Zhu et al. 2017; Foster, Generative Deep Learning, "
                                "chapter 5). Defaults are the book's apple2orange settings.")
    p.add_argument("--demo", action="store_true", help="the Quickstart demo: synthetic apples -> oranges, "
                   f"{DEMO['img_size']} px (time: docs/speed.md; other flags override its settings)")
    p.add_argument("--dataset", help="folder under --data-root with trainA/trainB/testA/testB, e.g. apple2orange "
                   "(python -m utils.datasets.download apple2orange) or synthetic_apple2orange (generated if missing)")
    p.add_argument("--resume", metavar="RUN_FOLDER", help="continue this run from its latest checkpoint "
                   "(its config.json holds the model settings)")
    model = p.add_argument_group("model (models/config.py)")
    model.add_argument("--generator-type", choices=("unet", "resnet"), help="default unet (book); resnet (paper)")
    model.add_argument("--img-size", type=positive_int, help="image height and width in pixels (default 128)")
    model.add_argument("--gen-filters", type=positive_int, help="filters of the first generator layer (default 32)")
    model.add_argument("--disc-filters", type=positive_int, help="filters of the first discriminator layer (default 32)")
    model.add_argument("--n-resnet-blocks", type=positive_int, help="ResNet blocks (default: 6 below 256 px, else 9)")
    model.add_argument("--lambda-validation", type=finite_float, help="weight of the adversarial losses (default 1)")
    model.add_argument("--lambda-reconstr", type=finite_float, help="weight of the cycle losses (default 10)")
    model.add_argument("--lambda-id", type=finite_float, help="absolute weight of the identity losses (default 2)")
    model.add_argument("--learning-rate", type=finite_float, help="Adam learning rate (default 0.0002); with "
                       "--resume, a new rate for the rest of the run, recorded in its config.json")
    model.add_argument("--epochs", type=int, help="epochs at the constant learning rate (default 100)")
    model.add_argument("--decay-epochs", type=int, help="epochs of linear decay to 0 (default 100)")
    model.add_argument("--seed", type=non_negative_int, help="seeds weights, data order and image pool (default 0)")
    model.add_argument("--unet-upsampling", choices=("nearest", "bilinear"), help="how the U-Net doubles its size: "
                       "nearest (default, the book's: nearest neighbour + 4x4 conv) or bilinear (+ 3x3 conv, against "
                       "checkerboard artifacts; docs/training.md)")
    model.add_argument("--resnet-upsampling", choices=("transposed", "nearest", "bilinear"), help="how the ResNet "
                       "doubles its size: transposed (default, the paper's transposed convs) or a nearest/bilinear "
                       "resize + 3x3 conv (same parameters, against checkerboard artifacts; docs/monet2photo.md)")
    model.add_argument("--diff-augment", nargs="?", const="color,translation,cutout", metavar="POLICY",
                       help="DiffAugment for small datasets (Zhao et al. 2020): every image the discriminators see "
                       "in training is randomly augmented, fakes with the gradient through it; alone: the paper's "
                       "color,translation,cutout, or name a comma-separated subset (default off; docs/training.md)")
    model.add_argument("--disc-n-layers", type=positive_int, help="stride-2 blocks of the PatchGAN discriminators, "
                       "the patch one score sees: 3 (default, the paper's 70x70), 2 (34x34), 1 (16x16); "
                       "docs/training.md")
    speed = p.add_argument_group("speed (docs/speed.md, docs/backends_and_devices.md)")
    speed.add_argument("--data-parallel", action="store_true", default=None,
                       help="split each batch across this machine's devices, or with TF_CONFIG a cluster's "
                       "(JAX or TensorFlow backend); --batch-size must be a multiple of the device count")
    speed.add_argument("--mixed-precision", nargs="?", const=True, choices=("float16", "bfloat16"),
                       help="compute in 16 bits with float32 weights and losses; alone: the device's fast type "
                       "(bfloat16 on GPUs of compute capability >= 8.0 and CPUs, float16 with loss scaling on "
                       "older GPUs such as a T4), or name one")
    speed.add_argument("--jit", choices=("auto", "on", "off"),
                       help="XLA / torch.compile for the step (default auto: on for JAX and TensorFlow GPUs)")
    run = p.add_argument_group("training run (utils/training/trainer.py)")
    run.add_argument("--batch-size", type=positive_int, default=1, help="images of each domain per step (default 1)")
    run.add_argument("--preprocess", choices=("resize_and_crop", "crop", "scale_width_and_crop", "none"),
                     help="how a training photo becomes an --img-size crop: resize_and_crop (default, the paper's "
                     "286 -> 256 jitter), crop (full-resolution crops of large photos), scale_width_and_crop, none")
    run.add_argument("--sample-interval", type=positive_int, help="steps between grids, loss plot and page (default 500)")
    run.add_argument("--checkpoint-interval", type=positive_int, help="steps between checkpoints (default 1000)")
    run.add_argument("--max-steps", type=positive_int, help="stop after this many steps in total (the paper's "
                     "schedule is kept: a short run stops at the full learning rate; see --fit-schedule)")
    run.add_argument("--fit-schedule", action="store_true", help="with --max-steps, shrink the schedule to that "
                     "budget as the notebooks do: half the epochs that fit at the full learning rate, half decaying "
                     "to 0, so a short run ends with the decay (trains whole epochs only)")
    run.add_argument("--n-grid-images", type=positive_int, help="test images per domain in each grid (default 2)")
    run.add_argument("--data-root", help="folder of the datasets (default: data; a resumed run: the run's own)")
    run.add_argument("--run-root", default="run/cyclegan", help="where run folders are made (default run/cyclegan)")
    run.add_argument("--no-progress", action="store_true", help="a line every --log-interval steps instead of a "
                     "progress bar (the default when the output is not a terminal, e.g. a log file)")
    run.add_argument("--log-interval", type=positive_int, help="steps between those lines (default 100)")
    run.add_argument("--verbose", action="store_true", help="show TensorFlow's own log lines (hidden by default)")
    args = p.parse_args(argv)
    if args.demo and not args.resume:  # the demo's settings, unless a flag sets them
        for name, value in DEMO.items():
            if getattr(args, name) is None:
                setattr(args, name, value)
    if not (args.dataset or args.resume):
        p.error("say what to train: --demo, --dataset NAME or --resume RUN_FOLDER")
    return p, args


def model_config(args):
    """The CycleGANConfig of the flags; unset flags keep the book's defaults."""
    from models import CycleGANConfig
    values = {field: getattr(args, flag) for flag, field in MODEL_FLAGS.items() if getattr(args, flag) is not None}
    if "jit_compile" in values:
        values["jit_compile"] = JIT[values["jit_compile"]]
    if args.img_size is not None:
        values["input_dim"] = (args.img_size, args.img_size, 3)
    return CycleGANConfig(**values)


def given_values(args):
    """{settings field: (the flag's words, the value it gave)} for `name_the_flags`: an error names the flag."""
    given = {field: (flag_words(f"--{flag.replace('_', '-')}", getattr(args, flag)),
                     JIT[args.jit] if flag == "jit" else getattr(args, flag))
             for flag, field in MODEL_FLAGS.items() if getattr(args, flag) is not None}
    if args.img_size is not None:
        given["input_dim"] = (f"--img-size {args.img_size}", (args.img_size, args.img_size, 3))
    given["batch_size"] = (f"--batch-size {args.batch_size}", args.batch_size)
    return given


def check_values(parser, args):
    """Every value checked by the settings' own rules (models/config.py, utils/training/settings.py), before
    TensorFlow is imported (seconds): a mistake is one line that names the flag. The new run's config, or None."""
    from models.config import CycleGANConfig   # no Keras in it
    from utils.training.settings import TrainingSettings, training_set_size
    if args.fit_schedule and (args.resume or args.max_steps is None):
        parser.error("--fit-schedule shapes a new run's schedule to --max-steps N: give --max-steps, and not with "
                     "--resume (a resumed run keeps its schedule)")
    try:
        if args.resume:   # only the learning rate may change (main() notes the other flags)
            if args.learning_rate is not None:
                CycleGANConfig(learning_rate=args.learning_rate)
            return None
        config = model_config(args)
        settings = TrainingSettings(batch_size=args.batch_size)
        settings.check_config(config)
        counts = training_set_size(args.data_root or "data", args.dataset)
        if counts:
            settings.check_dataset(*counts, args.dataset)
        return config
    except ValueError as error:
        parser.error(name_the_flags(error, given_values(args)))


def main(argv=None):
    parser, args = parse_args(argv)
    config = check_values(parser, args)
    quiet(verbose=args.verbose)
    from utils.datasets.loader import DatasetError
    from utils.training.trainer import train

    common = dict(sample_interval=args.sample_interval,
                  checkpoint_interval=args.checkpoint_interval, max_steps=args.max_steps,
                  n_grid_images=args.n_grid_images, progress=False if args.no_progress else "auto",
                  log_interval=args.log_interval)
    try:
        if args.resume:
            ignored = [f"--{flag.replace('_', '-')}" for flag in (*MODEL_FLAGS, "img_size")
                       if getattr(args, flag) is not None and flag != "learning_rate"]
            if ignored:
                print(f"note: {' '.join(ignored)} ignored: a resumed run keeps the settings in its config.json "
                      "(only --learning-rate may change, e.g. after the run diverged)")
            from utils.training.run_folder import read_run_config
            data_root = args.data_root or read_run_config(args.resume)["training"].get("data_root", "data")
            train(None, None, args.resume, resume=True, data_root=data_root, learning_rate=args.learning_rate,
                  **common)
        else:
            train(config, args.dataset, run_root=args.run_root, batch_size=args.batch_size, preprocess=args.preprocess,
                  data_root=args.data_root or "data", fit_schedule=args.fit_schedule, **common)
    except KeyboardInterrupt:
        sys.exit(130)  # the checkpoint is saved and the resume command printed (utils/training/trainer.py)
    except (DatasetError, FileNotFoundError) as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    run_main(main)
