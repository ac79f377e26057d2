"""The book's own CycleGAN methods (models/book_methods.py, utils/loaders.py): its notebook 05_01 runs as
printed, and each method does what the book's does, through the project's safe paths."""

import json
import shutil

import keras
import matplotlib
import numpy as np
import pytest

from models import CycleGAN
from utils.loaders import DataLoader, load_model
from utils.training import run_folder as layout

matplotlib.use("Agg")

TINY = dict(input_dim=(32, 32, 3), gen_n_filters=4, disc_n_filters=4, buffer_max_length=4, seed=0)
TEST_A_FILE, TEST_B_FILE = "n07740461_14740.jpg", "n07749192_4241.jpg"   # the book's two test images

# The code cells of the book's notebook 05_01_cyclegan_train.ipynb (davidADSP/GDL_code), as printed.
# Only the first line differs: the book's models/cycleGAN.py is models/cyclegan.py here, and a Mac's
# file system cannot hold both names; `from models import CycleGAN` is its import.
BOOK_CELLS = [
    """import os
import matplotlib.pyplot as plt

from models import CycleGAN
from utils.loaders import DataLoader""",
    """
# run params
SECTION = 'paint'
RUN_ID = '0001'
DATA_NAME = 'apple2orange'
RUN_FOLDER = 'run/{}/'.format(SECTION)
RUN_FOLDER += '_'.join([RUN_ID, DATA_NAME])

if not os.path.exists(RUN_FOLDER):
    os.mkdir(RUN_FOLDER)
    os.mkdir(os.path.join(RUN_FOLDER, 'viz'))
    os.mkdir(os.path.join(RUN_FOLDER, 'images'))
    os.mkdir(os.path.join(RUN_FOLDER, 'weights'))

mode =  'build' # 'build' # """,
    "IMAGE_SIZE = 128",
    """
data_loader = DataLoader(dataset_name=DATA_NAME, img_res=(IMAGE_SIZE, IMAGE_SIZE))
""",
    """gan = CycleGAN(
    input_dim = (IMAGE_SIZE,IMAGE_SIZE,3)
    ,learning_rate = 0.0002
    , buffer_max_length = 50
    , lambda_validation = 1
    , lambda_reconstr = 10
    , lambda_id = 2
    , generator_type = 'unet'
    , gen_n_filters = 32
    , disc_n_filters = 32
    )

if mode == 'build':
    gan.save(RUN_FOLDER)
else:
    gan.load_weights(os.path.join(RUN_FOLDER, 'weights/weights.h5'))
    """,
    "gan.g_BA.summary()",
    "gan.g_AB.summary()",
    "gan.d_A.summary()",
    "gan.d_B.summary()",
    """BATCH_SIZE = 1
EPOCHS = 200
PRINT_EVERY_N_BATCHES = 10

TEST_A_FILE = 'n07740461_14740.jpg'
TEST_B_FILE = 'n07749192_4241.jpg'""",
    """gan.train(data_loader
        , run_folder = RUN_FOLDER
        , epochs=EPOCHS
        , test_A_file = TEST_A_FILE
        , test_B_file = TEST_B_FILE
        , batch_size=BATCH_SIZE
        , sample_interval=PRINT_EVERY_N_BATCHES)
        """,
    """fig = plt.figure(figsize=(20,10))

plt.plot([x[1] for x in gan.g_losses], color='green', linewidth=0.1) #DISCRIM LOSS
# plt.plot([x[2] for x in gan.g_losses], color='orange', linewidth=0.1)
plt.plot([x[3] for x in gan.g_losses], color='blue', linewidth=0.1) #CYCLE LOSS
# plt.plot([x[4] for x in gan.g_losses], color='orange', linewidth=0.25)
plt.plot([x[5] for x in gan.g_losses], color='red', linewidth=0.25) #ID LOSS
# plt.plot([x[6] for x in gan.g_losses], color='orange', linewidth=0.25)

plt.plot([x[0] for x in gan.g_losses], color='black', linewidth=0.25)

# plt.plot([x[0] for x in gan.d_losses], color='black', linewidth=0.25)

plt.xlabel('batch', fontsize=18)
plt.ylabel('loss', fontsize=16)

plt.ylim(0, 5)

plt.show()""",
]
# Tiny data, tiny sizes: the only changes to the cells' numbers.
TINY_NUMBERS = {"IMAGE_SIZE = 128": "IMAGE_SIZE = 32", "EPOCHS = 200": "EPOCHS = 1",
                "PRINT_EVERY_N_BATCHES = 10": "PRINT_EVERY_N_BATCHES = 2"}


@pytest.fixture()
def book_folder(tmp_path, data_root, monkeypatch):
    """A folder laid out as the book's repository: data/apple2orange (the tiny synthetic images, the
    book's two test file names among them) and run/paint; the working directory for the book's cells."""
    target = tmp_path / "data" / "apple2orange"
    shutil.copytree(data_root / "synthetic_apple2orange", target)
    for split, name in (("testA", TEST_A_FILE), ("testB", TEST_B_FILE)):
        first = sorted((target / split).iterdir())[0]
        first.rename(first.with_name(name))
    (tmp_path / "run" / "paint").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_cells(cells, namespace):
    for cell in cells:
        for printed, tiny in TINY_NUMBERS.items():
            cell = cell.replace(printed, tiny)
        exec(compile(cell, "<book cell>", "exec"), namespace)
    return namespace


def test_the_book_notebook_05_01_runs_as_printed(book_folder):
    ns = run_cells(BOOK_CELLS, {})
    run, gan = book_folder / ns["RUN_FOLDER"], ns["gan"]
    steps = ns["data_loader"].n_batches(1)   # one epoch of the tiny set
    assert gan.step == steps and gan.epoch == 1
    assert len(gan.g_losses) == steps and len(gan.g_losses[0]) == 7 and len(gan.d_losses[0]) == 3
    assert np.isfinite(gan.g_losses).all() and gan.g_losses[-1][0] > 0
    params = json.loads((run / "params.json").read_text())   # gan.save: the settings, no pickle
    assert params["gen_n_filters"] == 32 and not list(run.glob("*.pkl"))
    assert (run / "viz" / "g_AB.png").exists() or (run / "viz" / "g_AB.txt").exists()   # plot_model
    assert list((run / "weights").glob("ckpt-*")) and (run / "weights" / "weights.weights.h5").is_file()
    assert list((run / "images").glob("*.png"))   # the project's grids, the book's two test images first
    with np.load(run / layout.GRID_INPUTS) as grid:
        first_A = grid["A"][0]
    named = ns["data_loader"].load_img(book_folder / "data/apple2orange/testA" / TEST_A_FILE)[0]
    np.testing.assert_allclose(first_A, named, atol=1e-6)

    # The book's mode = 'load': load_weights reads the book's path, then train goes on from the checkpoint.
    trained = [keras.ops.convert_to_numpy(w) for w in gan.g_AB.weights]
    load_cells = [cell.replace("mode =  'build'", "mode =  'load'") for cell in BOOK_CELLS]
    ns2 = run_cells(load_cells[:5], {})
    for loaded, saved in zip(ns2["gan"].g_AB.weights, trained):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded), saved)
    run_cells(load_cells[9:11], ns2)   # the run is complete: it resumes, has nothing left, and says so
    assert ns2["gan"].step == steps


def test_train_discriminators_is_the_books_half_step_and_trains_only_the_discriminators(data_root):
    gan = CycleGAN(**TINY)
    imgs = np.random.default_rng(0).uniform(-1, 1, (2, 1, 32, 32, 3)).astype(np.float32)
    valid, fake = np.ones((1,) + gan.disc_patch), np.zeros((1,) + gan.disc_patch)
    before = {n: [keras.ops.convert_to_numpy(w) for w in getattr(gan, n).weights] for n in ("g_AB", "d_A", "d_B")}
    d_loss = gan.train_discriminators(imgs[0], imgs[1], valid, fake)
    assert len(d_loss) == 14 and all(np.isfinite(d_loss))
    total, dA, dA_real, dA_fake, dB, dB_real, dB_fake = d_loss[:7]
    assert dA == pytest.approx(0.5 * (dA_real + dA_fake)) and total == pytest.approx(0.5 * (dA + dB))
    assert all(0 <= accuracy <= 1 for accuracy in d_loss[7:])
    changed = {n: any(not np.array_equal(keras.ops.convert_to_numpy(w), b)
                      for w, b in zip(getattr(gan, n).weights, before[n])) for n in before}
    assert changed == {"g_AB": False, "d_A": True, "d_B": True}
    assert len(gan.pool_A.get_state()[0]) == 1   # the fakes went through the history pool


def test_train_generators_is_the_books_combined_step_and_never_touches_a_discriminator(data_root):
    """The book's positional combined.train_on_batch, after a discriminator step (the Keras 3 freeze
    pitfall): the generators change, the discriminators do not, and a discriminator still trains after."""
    gan = CycleGAN(**TINY)
    imgs = np.random.default_rng(1).uniform(-1, 1, (2, 1, 32, 32, 3)).astype(np.float32)
    valid, fake = np.ones((1,) + gan.disc_patch), np.zeros((1,) + gan.disc_patch)
    gan.train_discriminators(imgs[0], imgs[1], valid, fake)
    snapshot = {n: [keras.ops.convert_to_numpy(w) for w in getattr(gan, n).weights] for n in ("g_AB", "g_BA", "d_A")}
    g_loss = gan.train_generators(imgs[0], imgs[1], valid)
    assert len(g_loss) == 7 and np.isfinite(g_loss).all()
    weights = [gan.loss_weights[name] for name in ("valid_A", "valid_B", "reconstr_A", "reconstr_B", "id_A", "id_B")]
    assert g_loss[0] == pytest.approx(sum(w * v for w, v in zip(weights, g_loss[1:])), rel=1e-4)
    for name, before in snapshot.items():
        same = all(np.array_equal(keras.ops.convert_to_numpy(w), b) for w, b in zip(getattr(gan, name).weights, before))
        assert same == (name == "d_A"), name
    d_A_before = [keras.ops.convert_to_numpy(w) for w in gan.d_A.trainable_weights]
    gan.train_discriminators(imgs[0], imgs[1], valid, fake)
    assert any(not np.array_equal(keras.ops.convert_to_numpy(w), b) for w, b in zip(gan.d_A.trainable_weights, d_A_before))


def test_save_model_and_load_weights_round_trip_and_refuse_non_finite_weights(tmp_path):
    gan = CycleGAN(**TINY)
    gan.save_model(tmp_path)
    for name in ("g_AB", "g_BA", "d_A", "d_B"):
        loaded = keras.saving.load_model(tmp_path / f"{name}.keras")
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded.weights[0]),
                                      keras.ops.convert_to_numpy(getattr(gan, name).weights[0]))
    other = CycleGAN(**{**TINY, "seed": 1})
    other.load_weights(tmp_path / "model.weights.h5")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(other.g_BA.weights[0]),
                                  keras.ops.convert_to_numpy(gan.g_BA.weights[0]))
    # The book's name weights.h5 is read as Keras 3's weights.weights.h5 when only that exists
    shutil.copy(tmp_path / "model.weights.h5", tmp_path / "weights.weights.h5")
    assert other.load_weights(tmp_path / "weights.h5").name == "weights.weights.h5"
    with pytest.raises(FileNotFoundError, match="no such weights file"):
        other.load_weights(tmp_path / "missing.h5")
    broken = CycleGAN(**TINY)
    broken.g_AB.weights[0].assign(np.full(broken.g_AB.weights[0].shape, np.nan, np.float32))
    broken.save_model(tmp_path / "broken")
    kept = keras.ops.convert_to_numpy(other.g_AB.weights[0])
    with pytest.raises(ValueError, match="NaN or inf"):
        other.load_weights(tmp_path / "broken" / "model.weights.h5")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(other.g_AB.weights[0]), kept)


def test_save_and_load_model_rebuild_the_same_settings(tmp_path):
    gan = CycleGAN(**{**TINY, "lambda_id": 2.0})
    gan.save(tmp_path)
    gan.save_model(tmp_path)
    (tmp_path / "weights").mkdir()
    shutil.copy(tmp_path / "model.weights.h5", tmp_path / "weights" / "weights.weights.h5")
    again = load_model(CycleGAN, tmp_path)
    assert again.config == gan.config
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(again.d_B.weights[0]),
                                  keras.ops.convert_to_numpy(gan.d_B.weights[0]))


def test_sample_images_draws_the_books_two_figures(book_folder):
    gan = CycleGAN(**TINY)
    loader = DataLoader("apple2orange", img_res=(32, 32))
    paths = gan.sample_images(loader, 3, "run/paint", TEST_A_FILE, TEST_B_FILE)
    assert [p.name for p in paths] == ["0_0_3.png", "1_0_3.png"] and all(p.is_file() for p in paths)
    with pytest.raises(Exception, match="testA"):
        gan.sample_images(loader, 3, "run/paint", "no_such.jpg", TEST_B_FILE)


def test_the_book_methods_say_what_they_need_instead_of_an_attribute_error(data_root):
    from utils.datasets.loader import DataLoader as PlainLoader
    gan = CycleGAN(**TINY)
    with pytest.raises(TypeError, match="from utils.loaders import DataLoader"):
        gan.train(PlainLoader("synthetic_apple2orange", img_res=(32, 32), data_root=data_root), "run/x", 1)
    with pytest.raises(ValueError, match="img_res"):
        gan.train(DataLoader("synthetic_apple2orange", img_res=(64, 64), data_root=data_root), "run/x", 1)
