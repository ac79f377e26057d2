"""Everything around the networks of models/, by what a user does:

    runtime/      the machine: TensorFlow's CPU kernels, devices and precision, where steps run, disks, files
    datasets/     get images in: the loader, image checks, downloads, the synthetic stand-ins
    training/     train a run: train(), the loop, checkpoints, its settings, the run folder, logs, lock, page
    inference/    use a trained model: load it, translate photos at full size, export, serve a page
    evaluation/   score a model: paired metrics, baselines, the unpaired judge and KID, the ablation

and four shared files: cli.py (the console: argparse types, one-line errors, quiet logs), images.py
(reading, resizing and converting images), plots.py (grids and curves), colab.py (a notebook's first
cell). runtime/ sits below models/, the rest above it; lower layers never import higher ones
(tests/test_repository.py). Importing a package here has no side effect.
"""
