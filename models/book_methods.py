"""The book's high-level `CycleGAN` methods (GDL chapter 5, its `models/cycleGAN.py`), as printed.

    gan.train(data_loader, run_folder=..., epochs=..., test_A_file=..., test_B_file=..., batch_size=1,
              sample_interval=50)
    gan.train_discriminators(imgs_A, imgs_B, valid, fake)    the book's 14 values (losses, accuracies)
    gan.train_generators(imgs_A, imgs_B, valid)              the book's 7: total and the six outputs
    gan.sample_images(data_loader, batch_i, run_folder, test_A_file, test_B_file)
    gan.plot_model(run_folder), gan.save(folder), gan.save_model(run_folder), gan.load_weights(filepath)
    gan.epoch, gan.d_losses, gan.g_losses

`train_discriminators` then `train_generators` is the book's step (Example 5-6): it translates with
the generators, trains each discriminator on real and then on fake patches, then the combined model.
`CycleGAN.train_step` is the official code's step (generators first, one pass that also hands the
fakes to the discriminators): the project's loop runs that one.

`train` and `sample_images` need the training loop and the figures, which live in utils/, above this
package (models/ imports nothing of utils/ but the runtime). The book passes its `DataLoader` to both,
and the project's book `DataLoader` (utils/loaders.py, the book's own import) brings them: `train` runs
the project's loop (checkpoints, NaN stop, grids, the results page) through it. Nothing is pickled:
`save` writes params.json where the book wrote params.pkl, `save_model` writes Keras' own `.keras`
files where the book wrote `.h5` and obj.pkl.
"""

import importlib.util
import json
import math
import os
import shutil
from pathlib import Path

import keras
import numpy as np

from models.book_calls import OUTPUT_NAMES
from utils.runtime.files import write_atomic

NETWORKS = ("g_AB", "g_BA", "d_A", "d_B")
BOOK_LOADER = "from utils.loaders import DataLoader"   # the book's import; its DataLoader brings the loop


def _needs_book_loader(method, data_loader):
    """The loader's `name` method, or a TypeError saying which DataLoader brings it."""
    action = getattr(data_loader, f"book_{method}", None)
    if action is None:
        raise TypeError(f"gan.{method}(data_loader, ...) needs the book's DataLoader ({BOOK_LOADER}), "
                        f"which brings the project's training loop and figures; got {type(data_loader).__name__}. "
                        "Or train with utils.training.trainer.train(gan, dataset_name, run_folder)")
    return action


def schedule_of(epochs):
    """The paper's schedule in `epochs` epochs in all: the first half at the full rate, the rest decaying
    to 0 (section 4: 100 + 100 of 200). The book's `train(epochs=...)` keeps one rate; the paper decays."""
    epochs = int(epochs)
    if epochs < 1:
        raise ValueError(f"epochs={epochs}: train at least 1 epoch")
    constant = math.ceil(epochs / 2)
    return constant, epochs - constant


def book_row(losses):
    """A step's generator losses (train_step's names) as the book's g_losses row: [total, six outputs]."""
    return [losses["g_loss"]] + [losses[name] for name in OUTPUT_NAMES]


class BookMethods:
    """The book's methods of its CycleGAN class, mixed into models.cyclegan.CycleGAN."""

    # ------------------------------------------------------------- one step, the book's way
    def train_discriminators(self, imgs_A, imgs_B, valid, fake):
        """The book's discriminator half-step: translate, keep the fakes in the pools, train each
        discriminator on real patches (target `valid`) then on fake ones (target `fake`).

        Returns the book's 14 values: (d_loss, dA_loss, dA_real, dA_fake, dB_loss, dB_real, dB_fake)
        then the same seven patch accuracies (a patch is right when its score is on its target's side of 0.5).
        """
        imgs_A, imgs_B = self._checked_batches(imgs_A, imgs_B)
        fake_B = self.pool_B.query(self.translate(imgs_A, "AtoB"))
        fake_A = self.pool_A.query(self.translate(imgs_B, "BtoA"))
        dA_real, dA_fake = self._d_half_step(self.d_A, imgs_A, valid), self._d_half_step(self.d_A, fake_A, fake)
        dB_real, dB_fake = self._d_half_step(self.d_B, imgs_B, valid), self._d_half_step(self.d_B, fake_B, fake)
        dA, dB = 0.5 * (dA_real + dA_fake), 0.5 * (dB_real + dB_fake)
        total = 0.5 * (dA + dB)
        rows = np.stack([total, dA, dA_real, dA_fake, dB, dB_real, dB_fake])   # (7, [loss, accuracy])
        return tuple(float(v) for v in (*rows[:, 0], *rows[:, 1]))

    def _d_half_step(self, d, images, target):
        """[loss, accuracy] of one discriminator `train_on_batch` on one kind of image (real or fake)."""
        target = np.asarray(target, np.float32)
        scores = keras.ops.convert_to_numpy(d(images, training=False))   # what the step is about to score
        accuracy = float(np.mean((scores > 0.5) == (target > 0.5)))   # Keras 2's binary accuracy, the book's
        loss = self.executor.train_on_batch(d, images, target)["loss"]
        return np.array([float(loss), accuracy])

    def train_generators(self, imgs_A, imgs_B, valid):
        """The book's generator half-step: one `combined.train_on_batch` -> [total, valid_A, valid_B,
        reconstr_A, reconstr_B, id_A, id_B] (models/book_calls.py turns the lists into names)."""
        imgs_A, imgs_B = self._checked_batches(imgs_A, imgs_B)
        return self.combined.train_on_batch([imgs_A, imgs_B], [valid, valid, imgs_A, imgs_B, imgs_A, imgs_B])

    # ------------------------------------------------------------- the loop and its pictures
    def train(self, data_loader, run_folder, epochs, test_A_file=None, test_B_file=None, batch_size=1,
              sample_interval=50):
        """The book's `gan.train(...)`: the project's training loop on this model, in `run_folder`.

        epochs: in all, with the paper's schedule (`schedule_of`). A run folder that holds a run of this
        project resumes it from its latest checkpoint (the book's mode='load'). test_A_file, test_B_file:
        names in data/<dataset>/testA and testB, drawn first in every grid. sample_interval: steps between
        grids. Fills gan.g_losses and gan.d_losses (see `record`) and returns the run folder."""
        return _needs_book_loader("train", data_loader)(
            self, run_folder=run_folder, epochs=epochs, test_A_file=test_A_file, test_B_file=test_B_file,
            batch_size=batch_size, sample_interval=sample_interval)

    def record(self, losses):
        """Append one project step to the book's histories: g_losses gets [total, six outputs] (the book's
        layout), d_losses gets (d_loss, d_A, d_B), the three values the project's step measures (it trains
        each discriminator once on [real; fake], so there is no separate real and fake loss)."""
        self.g_losses.append(book_row(losses))
        self.d_losses.append((losses["d_loss"], losses["d_A"], losses["d_B"]))

    def sample_images(self, data_loader, batch_i, run_folder, test_A_file, test_B_file):
        """The book's two 2 x 4 figures (original, translated, reconstructed, identity for A and B): the
        named test images, then a random test image of each domain, in run_folder/images/<p>_<epoch>_<batch>.png."""
        return _needs_book_loader("sample_images", data_loader)(self, batch_i, run_folder, test_A_file, test_B_file)

    # ------------------------------------------------------------- files
    def plot_model(self, run_folder):
        """Diagrams of the five models in run_folder/viz (Keras' plot_model, which needs pydot and Graphviz);
        without them, each model's summary as text there instead, said in one line. The combined model is
        drawn as the book builds it: img_A, img_B in, its six outputs out."""
        viz = Path(run_folder) / "viz"
        viz.mkdir(parents=True, exist_ok=True)
        models = {"combined": self._functional_combined(), **{name: getattr(self, name) for name in NETWORKS}}
        can_draw = importlib.util.find_spec("pydot") is not None and shutil.which("dot") is not None
        for name, model in models.items():
            if can_draw:
                keras.utils.plot_model(model, to_file=str(viz / f"{name}.png"), show_shapes=True,
                                       show_layer_names=True)
            else:
                lines = []
                model.summary(print_fn=lambda line, *args, **kwargs: lines.append(line))
                write_atomic(viz / f"{name}.txt", "\n".join(lines) + "\n")
        if not can_draw:
            print(f"plot_model: diagrams need pydot and Graphviz (pip install pydot; apt or brew install "
                  f"graphviz); wrote each model's summary to {viz}/<model>.txt instead", flush=True)

    def _functional_combined(self):
        """The combined model as the book's functional Model (Example 5-5), for a diagram: same networks."""
        img_A = keras.Input(self.img_shape, name="img_A")
        img_B = keras.Input(self.img_shape, name="img_B")
        fake_B, fake_A = self.g_AB(img_A), self.g_BA(img_B)
        outputs = [self.d_A(fake_A), self.d_B(fake_B), self.g_BA(fake_B), self.g_AB(fake_A),
                   self.g_BA(img_A), self.g_AB(img_B)]
        return keras.Model([img_A, img_B], outputs, name="combined")

    def save(self, folder):
        """The book's `save`: the settings (folder/params.json, the book's params.pkl without a pickle),
        then `plot_model(folder)`. `models.CycleGAN(**json.load(open('params.json')))` builds it again."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / "params.json", json.dumps(self.config.to_dict(), indent=2) + "\n")
        self.plot_model(folder)

    def save_model(self, run_folder):
        """The book's `save_model`: each network as a Keras file in run_folder (g_AB.keras, g_BA.keras,
        d_A.keras, d_B.keras, loadable with keras.saving.load_model) and the combined model's weights
        (model.weights.h5, what `load_weights` reads). The book's obj.pkl is not written: no pickles."""
        run_folder = Path(run_folder)
        run_folder.mkdir(parents=True, exist_ok=True)
        self.combined.build()   # its networks are built; Keras asks the model itself to say so
        for name in NETWORKS:
            save_atomically(run_folder / f"{name}.keras", getattr(self, name).save)
        save_atomically(run_folder / "model.weights.h5", self.combined.save_weights)

    def load_weights(self, filepath):
        """The book's `load_weights`: the combined model's weights (all four networks) from a Keras weights
        file. Keras 3 names such files *.weights.h5, so the book's 'weights/weights.h5' is read as
        'weights/weights.weights.h5' when only that exists (gan.train writes it when it ends or is stopped). Weights that
        are not finite are refused, and the model keeps the ones it had."""
        path = _weights_file(Path(filepath))
        self.combined.build()
        before = [keras.ops.convert_to_numpy(w) for w in self.combined.weights]
        self.combined.load_weights(str(path))
        for weight in self.combined.weights:
            if not np.all(np.isfinite(keras.ops.convert_to_numpy(weight))):
                for w, value in zip(self.combined.weights, before):
                    w.assign(value)
                raise ValueError(f"{path}: {weight.path} holds NaN or inf values: not loaded (the model keeps "
                                 "its weights); use an earlier weights file")
        return path


def _weights_file(path):
    if path.is_file():
        return path
    keras_name = path.with_name(path.name[:-len(".h5")] + ".weights.h5") if path.name.endswith(".h5") else None
    if keras_name is not None and not path.name.endswith(".weights.h5") and keras_name.is_file():
        return keras_name
    raise FileNotFoundError(f"{path}: no such weights file. gan.train writes the combined weights to "
                            f"<run_folder>/weights/weights.weights.h5 and gan.save_model to <run_folder>/model.weights.h5; "
                            "a run's checkpoints resume with gan.train(..., run_folder=<the run>)")


def save_atomically(path, save):
    """save(temporary file) then rename it to `path`: a crash mid-save never leaves a half file there."""
    temporary = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        save(str(temporary))
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
