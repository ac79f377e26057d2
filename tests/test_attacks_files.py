"""Issue #35, the third round of attacks on a run's files, weight files and translations: each test replays
an attack (tiny models, files made under tmp_path) and checks that nothing outside is touched and that the
refusal is one line naming the file."""

import json
import os
import shutil
import time
import tracemalloc

import h5py
import numpy as np
import pytest
from PIL import Image

from models import CycleGAN
from utils.training import checkpoint as ckpt
from utils.training.checkpoint_checks import CheckpointError
from utils.cli import UserError
from utils.training import run_folder as layout
from utils.training.lock import LOCK_FILE, RunLock, read_holder

TINY = dict(input_dim=(32, 32, 3), gen_n_filters=4, disc_n_filters=4, buffer_max_length=2, seed=0)
needs_links = pytest.mark.skipif(os.name != "posix", reason="links and directory descriptors: POSIX")


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    """A model folder (utils/inference/trained_model.py layout) of an untrained tiny CycleGAN."""
    from utils.inference.trained_model import save_model_folder
    return save_model_folder(CycleGAN(**TINY), tmp_path_factory.mktemp("models") / "tiny", made_by="a test")


def model_copy(model_folder, tmp_path, meta=None):
    """A copy of the model folder, its config.json replaced by `meta` (text or an object) if given."""
    folder = tmp_path / "model"
    shutil.copytree(model_folder, folder)
    if meta is not None:
        (folder / "config.json").write_text(meta if isinstance(meta, str) else json.dumps(meta))
    return folder


def reseal_model(folder):
    """Recompute a model folder's manifest after a test changed its weights, as an attacker would."""
    meta = json.loads((folder / "config.json").read_text())
    meta["files"] = {name: {"bytes": (folder / name).stat().st_size, "sha256": ckpt.sha256_of(folder / name)}
                     for name in ("g_AB.weights.h5", "g_BA.weights.h5")}
    (folder / "config.json").write_text(json.dumps(meta))


def reseal_checkpoint(folder, state=None):
    state = state or json.loads((folder / "state.json").read_text())
    state["files"] = {f: {"bytes": (folder / f).stat().st_size, "sha256": ckpt.sha256_of(folder / f)}
                      for f in ckpt.FILES}
    state["checksum"] = ckpt.state_checksum(state)
    (folder / "state.json").write_text(json.dumps(state))


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------- a hard-linked or huge .lock
def test_a_lock_that_is_a_hard_link_leaves_the_file_it_links_to_unchanged(tmp_path):
    """O_NOFOLLOW and S_ISREG do not see a hard link: the lock's JSON truncated the file outside the run."""
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    run = tmp_path / "run"
    run.mkdir()
    os.link(outside, run / LOCK_FILE)
    with RunLock(run):
        assert read_holder(run)["pid"] == os.getpid()
        assert outside.read_text() == "keep me"
    assert outside.read_text() == "keep me" and not (run / LOCK_FILE).exists()


def test_a_huge_sparse_lock_is_read_in_a_bounded_size(tmp_path):
    """A 2 GB sparse .lock took 41.7 s and 4.8 GB of memory to read for its holder's details."""
    run = tmp_path / "run"
    run.mkdir()
    with open(run / LOCK_FILE, "wb") as f:
        f.truncate(2 << 30)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with RunLock(run):
            assert read_holder(run)["pid"] == os.getpid()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 5 and peak < 10 << 20


@pytest.mark.parametrize("content", ["[1, 2]", '"a string"', "[" * 100_000 + "]" * 100_000])
def test_a_lock_that_is_not_a_json_object_is_taken_over(tmp_path, content):
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_FILE).write_text(content)
    with RunLock(run):   # was AttributeError ('list' object has no attribute 'get') or RecursionError
        assert read_holder(run)["pid"] == os.getpid()


# ----------------------------------------------------------------- links inside a run
def _two_runs(tmp_path):
    """Two run folders with a config.json, weights/ (two checkpoints), logs/losses.csv and images/."""
    gan = CycleGAN(**TINY)
    runs = []
    for name in ("mine", "other"):
        run = tmp_path / name
        for sub in (layout.IMAGES, layout.LOGS):
            (run / sub).mkdir(parents=True)
        (run / layout.CONFIG).write_text(json.dumps({"dataset": "x", "model": gan.config.to_dict(), "training": {}}))
        (run / layout.LOSSES_CSV).write_text("step\n1\n2\n")
        runs.append(run)
    for step in (0, 1):
        gan.step = step
        ckpt.save(gan, runs[1] / layout.WEIGHTS)
    (runs[1] / layout.WEIGHTS / ".tmp-ckpt-00000002-1-1").mkdir()   # another run's save in progress
    return runs


@needs_links
@pytest.mark.parametrize("linked", [layout.WEIGHTS, layout.LOGS, layout.IMAGES, layout.CONFIG, layout.LOSSES_CSV])
def test_a_run_with_a_link_to_another_runs_files_is_refused_and_that_run_is_untouched(tmp_path, linked):
    """weights/ linked to another run's: --resume saved there, pruned its checkpoints, moved its latest."""
    run, other = _two_runs(tmp_path)
    if (run / linked).is_dir():
        shutil.rmtree(run / linked)
    elif (run / linked).exists():
        (run / linked).unlink()
    (run / linked).symlink_to(other / linked)
    before = snapshot(other)
    with pytest.raises(UserError) as refused:
        RunLock(run).acquire()
    message = str(refused.value)
    assert f"{run / linked} is a symbolic link" in message and "\n" not in message
    assert not (run / LOCK_FILE).exists()   # refused: the lock is not kept
    layout.remove_temporary_files(run)      # what a refused start cleans up: nothing of the other run
    assert snapshot(other) == before and (other / layout.WEIGHTS / ".tmp-ckpt-00000002-1-1").is_dir()


@pytest.mark.long
@needs_links
def test_a_resume_through_a_linked_weights_folder_is_one_line_and_writes_nothing(data_root, tmp_path):
    from utils.training.trainer import train
    run = train({**TINY, "epochs": 1, "decay_epochs": 1}, "synthetic_apple2orange", data_root=data_root,
                run_root=tmp_path / "runs", max_steps=1, progress=False)
    other = tmp_path / "other_weights"
    shutil.move(run / layout.WEIGHTS, other)
    (run / layout.WEIGHTS).symlink_to(other)
    before, config = snapshot(other), (run / layout.CONFIG).read_bytes()
    with pytest.raises(UserError, match=f"{run / layout.WEIGHTS} is a symbolic link"):
        train(None, None, run, data_root=data_root, resume=True, max_steps=3, progress=False)
    assert snapshot(other) == before and (run / layout.CONFIG).read_bytes() == config


# ----------------------------------------------------------------- bombs inside weight files
def _plant(file, name="layers/hidden/vars/0", shape=(1_000_000, 1_000_000)):
    """A chunked gzip dataset of `shape` in a weight file, one chunk of zeros written: a few KB on disk."""
    with h5py.File(file, "r+") as weights:
        dataset = weights.create_dataset(name, shape=shape, dtype="float32", chunks=(100, 100), compression="gzip")
        dataset[:100, :100] = np.zeros((100, 100), np.float32)


@pytest.mark.parametrize("shape", [(1_000_000, 1_000_000), (4000, 25000)])   # MemoryError before; 400 MB read before
def test_a_weight_file_hiding_a_compressed_dataset_is_refused_before_reading_it(model_folder, tmp_path, shape):
    from utils.inference.trained_model import ModelFileError, load_generators
    folder = model_copy(model_folder, tmp_path)
    _plant(folder / "g_AB.weights.h5", shape=shape)
    reseal_model(folder)   # the manifest matches: only the shapes give it away
    assert (folder / "g_AB.weights.h5").stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError) as refused:
            load_generators(folder)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(refused.value)
    assert f"{folder / 'g_AB.weights.h5'} declares layers/hidden/vars/0 of shape {shape}" in message
    assert "\n" not in message and peak < 200 << 20


def test_a_weight_file_with_an_extra_dataset_is_not_this_models(model_folder, tmp_path):
    from utils.inference.trained_model import ModelFileError, load_generators
    folder = model_copy(model_folder, tmp_path)
    with h5py.File(folder / "g_BA.weights.h5", "r+") as weights:
        weights["layers/extra/vars/0"] = np.zeros(3, np.float32)
    reseal_model(folder)
    with pytest.raises(ModelFileError, match=r"g_BA\.weights\.h5 holds layers/extra/vars/0 .*no place for"):
        load_generators(folder)


@pytest.fixture
def two_checkpoints(tmp_path):
    gan = CycleGAN(**TINY)
    for step in (0, 1):
        gan.step = step
        ckpt.save(gan, tmp_path / "weights")
    return tmp_path / "weights"


def test_a_checkpoint_hiding_a_bomb_falls_back_to_the_one_before(two_checkpoints, capsys):
    newest = two_checkpoints / "ckpt-00000001"
    _plant(newest / "g_AB.weights.h5")
    reseal_checkpoint(newest)
    ckpt._warned.clear()
    assert ckpt.resolve(two_checkpoints).name == "ckpt-00000000"   # was MemoryError (translate, export, --resume)
    assert "g_AB.weights.h5 declares layers/hidden/vars/0" in capsys.readouterr().err


def test_a_checkpoint_whose_weights_hold_an_extra_dataset_is_not_loaded(two_checkpoints):
    newest = two_checkpoints / "ckpt-00000001"
    with h5py.File(newest / "d_A.weights.h5", "r+") as weights:
        weights["layers/extra/vars/0"] = np.zeros(3, np.float32)
    reseal_checkpoint(newest)
    with pytest.raises(CheckpointError, match=r"d_A\.weights\.h5 holds layers/extra/vars/0 .*no place for"):
        ckpt.restore(two_checkpoints)


def test_a_compressed_npz_member_is_refused_before_reading_it(two_checkpoints, capsys):
    newest = two_checkpoints / "ckpt-00000001"
    with np.load(newest / "pools.npz") as pools:
        arrays = {key: pools[key] for key in pools.files}
    np.savez_compressed(newest / "pools.npz", **arrays)
    reseal_checkpoint(newest)
    ckpt._warned.clear()
    assert ckpt.resolve(two_checkpoints).name == "ckpt-00000000"
    assert "pools.npz holds pool_A compressed" in capsys.readouterr().err


# ----------------------------------------------------------------- the output link swapped mid-run
@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png", "c.png"):
        Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(folder / name)
    return folder


def _repoint_after_first_write(monkeypatch, link, to, then=None):
    from utils.inference import translation
    original, calls = translation.save_png, []

    def save_then_repoint(*args, **kwargs):
        written = original(*args, **kwargs)
        if not calls:
            link.unlink()
            link.symlink_to(to)
            if then:
                then()
        calls.append(written)
        return written

    monkeypatch.setattr(translation, "save_png", save_then_repoint)


@needs_links
def test_an_output_link_repointed_at_the_inputs_mid_run_writes_nothing_over_them(tiny_run, photos, tmp_path,
                                                                                   monkeypatch):
    """--output a link to an empty folder, re-pointed at the input folder once the first PNG is there:
    299 of 300 originals were overwritten, exit 0."""
    from utils.inference.translation import translate_folder
    empty = tmp_path / "empty"
    empty.mkdir()
    link = tmp_path / "out"
    link.symlink_to(empty)
    originals = snapshot(photos)
    _repoint_after_first_write(monkeypatch, link, photos)
    written, skipped = translate_folder(tiny_run, "AtoB", photos, link, progress=False)
    assert len(written) == 3 and not skipped
    assert snapshot(photos) == originals
    assert sorted(p.name for p in empty.iterdir()) == ["a.png", "b.png", "c.png"]


@needs_links
def test_a_file_that_appears_after_the_checks_is_not_replaced_without_overwrite(tiny_run, photos, tmp_path,
                                                                                  monkeypatch):
    from utils.inference.translation import translate_folder
    out = tmp_path / "out_real"
    out.mkdir()
    link = tmp_path / "out"
    link.symlink_to(out)
    _repoint_after_first_write(monkeypatch, link, out, then=lambda: (out / "b.png").write_bytes(b"mine"))
    with pytest.raises(FileExistsError, match=r"b\.png exists already"):
        translate_folder(tiny_run, "AtoB", photos, link, progress=False)
    assert (out / "b.png").read_bytes() == b"mine" and not list(out.glob(".*tmp*"))


# ----------------------------------------------------------------- bad types in a model's config.json
@pytest.mark.parametrize("change, says", [
    (lambda meta: meta["model"].update(input_dim=64), "input_dim 64: must be 3 integers"),
    (lambda meta: meta["model"].update(input_dim=[64.9, 64.2, 3.7]),
     r"input_dim \[64.9, 64.2, 3.7\]: must be 3 integers"),
    (lambda meta: meta.update(model=[1, 2]), "the model settings are list"),
    (lambda meta: meta.update(model=None), "the model settings are NoneType"),
    (lambda meta: meta.pop("model"), 'has no "model" settings'),
    (lambda meta: meta["model"].update(gen_n_filters="4"), "gen_n_filters='4': must be a positive integer"),
    (lambda meta: meta["model"].update(gen_n_filters=8), r"was saved from another architecture: gen_n_filters 4 "
                                                          r"\(config\.json says 8\)"),
    (lambda meta: meta["model"].update(unet_upsampling="bilinear"), "unet_upsampling 'nearest' "
                                                                    r"\(config\.json says 'bilinear'\)"),
    (lambda meta: "[1, 2]", "holds a JSON list, not a model folder's config"),
    (lambda meta: "[" * 200_000 + "]" * 200_000, "nested too deeply"),
])
def test_a_bad_config_json_is_one_line_naming_the_file(model_folder, tmp_path, change, says):
    """Were TypeError, KeyError, AttributeError, RecursionError, a 135-line Keras dump, or a silent (64, 64, 3)."""
    from utils.inference.trained_model import ModelFileError, load_generators
    meta = json.loads((model_folder / "config.json").read_text())
    replaced = change(meta)
    folder = model_copy(model_folder, tmp_path, replaced if isinstance(replaced, str) else meta)
    with pytest.raises(ModelFileError, match=says) as refused:
        load_generators(folder)
    assert str(folder / "config.json") in str(refused.value) and "\n" not in str(refused.value)


def test_a_checkpoint_whose_config_has_bad_types_is_damage(two_checkpoints, capsys):
    newest = two_checkpoints / "ckpt-00000001"
    state = json.loads((newest / "state.json").read_text())
    state["config"]["input_dim"] = 32
    reseal_checkpoint(newest, state)
    ckpt._warned.clear()
    assert ckpt.resolve(two_checkpoints).name == "ckpt-00000000"   # was a TypeError in read_config
    assert "holds an invalid config (input_dim 32: must be 3 integers" in capsys.readouterr().err


# ----------------------------------------------------------------- an export into a read-only folder
def test_an_export_that_cannot_be_written_names_the_folder_not_its_temporary_file(model_folder, tmp_path,
                                                                                monkeypatch):
    import keras

    import export as export_script

    def read_only(self, path, *args, **kwargs):   # what a read-only folder does (the tests may run as root)
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(keras.Model, "save", read_only)
    out = tmp_path / "locked" / "g.keras"
    with pytest.raises(SystemExit) as stop:
        export_script.main([str(model_folder), "--direction", "AtoB", "--format", "keras", "--out", str(out)])
    message = str(stop.value.code)
    assert message == (f"error: --out {out}: cannot write into the folder {out.parent} (Permission denied); choose "
                       "an --out in a folder you can write to, with room for the export")
    assert not list(out.parent.iterdir())


# ----------------------------------------------------------------- a resumed run's damaged config.json
def test_resuming_a_run_whose_config_json_has_a_float_size_is_one_line_naming_the_file(tmp_path, data_root):
    """Was CycleGANConfig.from_dict cutting [64.9, 64.2, 3.7] to (64, 64, 3) without a word."""
    from utils.training.trainer import train
    run = tmp_path / "0001_run"
    run.mkdir()
    config = {"dataset": "synthetic_apple2orange", "model": {"input_dim": [64.9, 64.2, 3.7]},
              "training": {}, "sessions": []}
    (run / layout.CONFIG).write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"config\.json: input_dim \[64.9, 64.2, 3.7\]: must be 3 integers") as refused:
        train({}, None, run, data_root=data_root, resume=True, progress=False)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("bad", [(64.9, 64, 3), (64, 64, True), ("64", 64, 3)])
def test_a_config_built_in_python_refuses_a_size_that_is_not_a_whole_number(bad):
    from models.config import CycleGANConfig
    with pytest.raises(ValueError, match="input_dim holds .*: every value must be a whole number"):
        CycleGANConfig(input_dim=bad)
    assert CycleGANConfig(input_dim=(64.0, 64, 3)).input_dim == (64, 64, 3)
