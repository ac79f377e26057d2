"""The book's `utils.loaders` (GDL chapter 5): `from utils.loaders import DataLoader` works as printed.

Its `DataLoader` is the project's loader (utils/datasets/loader.py: every image an epoch, the paper's
jitter, reproducible), and it brings what the book's `gan.train` and `gan.sample_images` need from
above models/ (models/book_methods.py): the project's training loop and its figures. `load_model` is the
book's, reading params.json (the book's params.pkl, without a pickle).
"""

import dataclasses
from pathlib import Path

from models.book_methods import save_atomically, schedule_of
from models.config import CycleGANConfig
from models.directions import DOMAINS
from utils import plots
from utils.cli import UserError
from utils.datasets import loader
from utils.training import run_folder as layout
from utils.training import trainer
from utils.training.checkpoint_checks import NETWORKS, load_json, weight_problem

BOOK_WEIGHTS = "weights.weights.h5"   # the book's weights/weights.h5, with the suffix Keras 3 asks for


class DataLoader(loader.DataLoader):
    """The project's DataLoader under the book's name, which also runs the book's gan.train and
    gan.sample_images (models/book_methods.py calls `book_train` and `book_sample_images`)."""

    def test_file(self, domain, name):
        """The book's data/<dataset>/test<domain>/<name>, or a UserError naming it and what is there."""
        if name is None:
            return None
        path = self.folder / f"test{domain}" / name
        if not path.is_file():
            there = ", ".join(p.name for p in self.test_paths(domain)[:3])
            raise UserError(f"test_{domain}_file={name!r}: {path} is not a file; the test{domain} images are "
                            f"e.g. {there}")
        return path

    def book_train(self, gan, run_folder, epochs, test_A_file=None, test_B_file=None, batch_size=1,
                   sample_interval=50):
        """gan.train: utils.training.trainer.train on `gan` in run_folder (a run there resumes)."""
        if tuple(gan.img_shape[:2]) != self.img_res:
            raise ValueError(f"the DataLoader's img_res {self.img_res} is not the model's input_dim "
                             f"{gan.img_shape[:2]}: make them the same (IMAGE_SIZE in the notebook)")
        run = Path(run_folder)
        resume = (run / layout.CONFIG).is_file()
        files = tuple(self.test_file(d, name) for d, name in zip(DOMAINS, (test_A_file, test_B_file)))
        if resume:
            print(f"{run} holds a run: resuming it from its latest checkpoint, with its own schedule.", flush=True)
        else:
            constant, decay = schedule_of(epochs)
            gan.config = dataclasses.replace(gan.config, epochs=constant, decay_epochs=decay)
            print(f"{epochs} epochs: {constant} at the full learning rate, {decay} decaying to 0 (the paper's "
                  "schedule; the book keeps one rate).", flush=True)
        gan.d_losses.clear()
        gan.g_losses.clear()

        def record(model, row):
            model.record(row)
            return False   # never stops the run

        try:
            trainer.train(gan, None if resume else self.dataset_name, run, data_root=self.data_root,
                          batch_size=None if resume else batch_size, sample_interval=sample_interval,
                          resume=resume, callbacks=[record], grid_files=None if resume else files,
                          preprocess=None if resume else self.preprocess)
        except KeyboardInterrupt:   # the loop saved its checkpoint: the book's weights file too
            save_book_weights(gan, run)
            raise
        save_book_weights(gan, run)
        return run

    def book_sample_images(self, gan, batch_i, run_folder, test_A_file, test_B_file):
        """gan.sample_images: the named test images (figure 0_<epoch>_<batch>.png), then one random test
        image of each domain (1_<epoch>_<batch>.png), in run_folder/images; returns the two paths."""
        named = [self.load_img(self.test_file(d, name)) for d, name in zip(DOMAINS, (test_A_file, test_B_file))]
        random = [self.load_data(domain=d, batch_size=1, is_testing=True) for d in DOMAINS]
        paths = []
        for p, (imgs_A, imgs_B) in enumerate((named, random)):
            path = Path(run_folder) / layout.IMAGES / f"{p}_{gan.epoch}_{batch_i}.png"
            plots.save_reconstruction_grid(gan, imgs_A, imgs_B, path, title=f"epoch {gan.epoch}, batch {batch_i}")
            paths.append(path)
        return paths


def save_book_weights(gan, run):
    """The combined model's weights as run/weights/weights.weights.h5 (what the book's load_weights reads),
    unless they are not finite: a broken run keeps only its last good checkpoint."""
    if any(weight_problem(getattr(gan, name)) for name in NETWORKS):
        return None
    folder = Path(run) / layout.WEIGHTS
    folder.mkdir(parents=True, exist_ok=True)
    gan.combined.build()
    save_atomically(folder / BOOK_WEIGHTS, gan.combined.save_weights)
    return folder / BOOK_WEIGHTS


def load_model(model_class, folder):
    """The book's load_model: model_class(the settings of params.json) with folder/weights/weights.weights.h5
    loaded (the book's weights/weights.h5, see CycleGAN.load_weights)."""
    folder = Path(folder)
    params = load_json(folder / "params.json")
    if not isinstance(params, dict):
        raise UserError(f"{folder / 'params.json'}: not the settings of a CycleGAN (gan.save writes them)")
    model = model_class(CycleGANConfig.from_dict(params))
    model.load_weights(folder / layout.WEIGHTS / "weights.h5")
    return model
