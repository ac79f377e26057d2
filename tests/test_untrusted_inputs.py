"""The second round of attacks (issue #24): nothing written through a link, nothing loaded unchecked,
bounded work per input. Tiny shapes (32 px, 4/4 filters); each test names the attack it replays."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models import CycleGAN
from models import checkpoint as ckpt
from utils import run_folder as layout
from utils.run_lock import RunLock

REPO = Path(__file__).resolve().parents[1]
DATASET = "synthetic_apple2orange"
TINY = dict(input_dim=(32, 32, 3), gen_n_filters=4, disc_n_filters=4, buffer_max_length=2, epochs=1,
            decay_epochs=1, seed=0)
ENV = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
needs_links = pytest.mark.skipif(os.name != "posix", reason="symbolic links need privileges on Windows")


def run_script(*args, timeout=900):
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO, env=ENV, capture_output=True, text=True,
                          timeout=timeout)


def error_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("error:") or ": error:" in line]


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(folder / name)
    return folder


# ----------------------------------------------------------------- 1. no write follows a link
@needs_links
def test_a_lock_that_is_a_link_is_refused_and_its_target_is_untouched(tmp_path):
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    run = tmp_path / "run"
    run.mkdir()
    (run / ".lock").symlink_to(outside)
    with pytest.raises(Exception, match=r"\.lock is not a regular file .*Delete"):
        RunLock(run).acquire()
    assert outside.read_text() == "keep me"


@needs_links
def test_train_py_with_a_lock_linked_outside_the_run_leaves_that_file_unchanged(data_root, tmp_path):
    from utils.training import train
    run = train(TINY, DATASET, data_root=data_root, run_root=tmp_path / "runs", max_steps=1, progress=False)
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    (run / ".lock").symlink_to(outside)
    config_before = (run / layout.CONFIG).read_text()
    done = run_script(REPO / "train.py", "--resume", run, "--max-steps", "2", "--no-progress")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    [line] = error_lines(done.stderr)
    assert f"{run / '.lock'} is not a regular file" in line
    assert outside.read_text() == "keep me"
    assert (run / layout.CONFIG).read_text() == config_before   # nothing recorded for a refused resume


@needs_links
def test_write_atomic_replaces_a_link_instead_of_writing_through_it(tmp_path):
    from models.files import write_atomic
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    (tmp_path / "out.txt").symlink_to(outside)
    (tmp_path / f".out.txt.tmp-{os.getpid()}").symlink_to(outside)   # a link planted at the temporary name
    write_atomic(tmp_path / "out.txt", "new")
    assert outside.read_text() == "keep me"
    assert (tmp_path / "out.txt").read_text() == "new" and not (tmp_path / "out.txt").is_symlink()


@needs_links
def test_translate_overwrite_refuses_an_output_that_links_to_an_input(tiny_run, photos, tmp_path):
    from utils.translate import translate_folder
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").symlink_to(photos / "a.png")
    before = (photos / "a.png").read_bytes()
    with pytest.raises(ValueError, match=r"a\.png is a link to the input .*a\.png"):
        translate_folder(tiny_run, "AtoB", photos, out, progress=False, overwrite=True)
    assert (photos / "a.png").read_bytes() == before


@needs_links
def test_translate_overwrite_replaces_a_link_to_elsewhere_not_its_target(tiny_run, photos, tmp_path):
    from utils.translate import translate_folder
    outside = tmp_path / "precious.png"
    outside.write_bytes(b"keep me")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").symlink_to(outside)
    translate_folder(tiny_run, "AtoB", photos, out, progress=False, overwrite=True)
    assert outside.read_bytes() == b"keep me"
    assert not (out / "a.png").is_symlink() and Image.open(out / "a.png").size == (24, 20)


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    """A model folder (utils/trained_model.py layout) of an untrained tiny CycleGAN."""
    from utils.trained_model import save_model_folder
    gan = CycleGAN(**{k: v for k, v in TINY.items() if k not in ("epochs", "decay_epochs")})
    return save_model_folder(gan, tmp_path_factory.mktemp("models") / "tiny", made_by="a test")


def test_export_refuses_an_existing_file_without_overwrite(model_folder, tmp_path):
    import export as export_script
    out = tmp_path / "g.keras"
    out.write_bytes(b"an earlier export")
    args = [str(model_folder), "--direction", "AtoB", "--format", "keras", "--out", str(out)]
    with pytest.raises(SystemExit, match=r"g\.keras exist already: pass --overwrite"):
        export_script.main(args)
    assert out.read_bytes() == b"an earlier export"
    export_script.main([*args, "--overwrite"])
    assert out.stat().st_size > 1000 and not list(tmp_path.glob(".*tmp*"))


@needs_links
def test_export_refuses_a_target_that_links_to_the_models_own_weights(model_folder, tmp_path):
    from utils.export import export_generator
    out = tmp_path / "g.keras"
    out.symlink_to(model_folder / "g_AB.weights.h5")
    before = (model_folder / "g_AB.weights.h5").read_bytes()
    with pytest.raises(ValueError, match=r"g\.keras is a link to the input .*g_AB\.weights\.h5"):
        export_generator(model_folder, "AtoB", "keras", out, overwrite=True)
    assert (model_folder / "g_AB.weights.h5").read_bytes() == before
