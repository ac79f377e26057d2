"""Nothing lost, nothing silent (issue #11): NaN, damaged checkpoints, translate over the originals,
zip bombs, a full disk, bad values, and one-line errors. Tiny shapes (32 px, 4/4 filters)."""

import io
import json
import math
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models import CycleGAN, CycleGANConfig
from utils.training import checkpoint as ckpt
from utils.training import run_folder as layout
from utils.training.logs import read_losses

REPO = Path(__file__).resolve().parents[1]
DATASET = "synthetic_apple2orange"
TINY = dict(input_dim=(32, 32, 3), gen_n_filters=4, disc_n_filters=4, buffer_max_length=2, epochs=1,
            decay_epochs=1, seed=0)
ENV = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}


def run_script(*args, env=None, timeout=900):
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO, env={**ENV, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


def error_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("error:") or ": error:" in line]


@pytest.fixture(scope="module")
def two_checkpoints(tmp_path_factory):
    """weights/ with ckpt-00000001 and ckpt-00000002 of a tiny model (no data needed)."""
    folder = tmp_path_factory.mktemp("ckpts") / "weights"
    gan = CycleGAN(**{k: v for k, v in TINY.items() if k not in ("epochs", "decay_epochs")})
    rng = np.random.default_rng(0)
    for _ in range(2):
        gan.train_step(*(rng.uniform(-1, 1, (1, 32, 32, 3)).astype("float32") for _ in range(2)))
        ckpt.save(gan, folder)
    return folder


# ----------------------------------------------------------------- 2. NaN and inf
@pytest.mark.parametrize("field, value", [("lambda_id", math.nan), ("learning_rate", math.inf),
                                          ("lambda_reconstr", -math.inf), ("beta_1", math.nan)])
def test_non_finite_settings_are_refused(field, value):
    with pytest.raises(ValueError, match=f"{field}=.*finite"):
        CycleGANConfig(**{field: value})


@pytest.mark.long
def test_training_stops_at_the_first_non_finite_loss_and_keeps_the_good_checkpoints(data_root, tmp_path):
    from utils.training.loop import NonFiniteLossError
    from utils.training.trainer import train

    def blow_up(gan, row):   # after step 3 g_AB's weights turn NaN, as a diverging run's do
        if row["step"] == 3:   # (all of them: a ReLU can hide one NaN kernel from the losses)
            for weight in gan.g_AB.trainable_weights:
                weight.assign(np.full(weight.shape, np.nan, "float32"))

    with pytest.raises(NonFiniteLossError, match=r"diverged at step 4: .*nan.*last good checkpoint is .*ckpt-00000002"):
        train(TINY, DATASET, data_root=data_root, run_root=tmp_path, checkpoint_interval=2, sample_interval=100,
              max_steps=12, progress=False, callbacks=[blow_up])
    run = tmp_path / f"0001_{DATASET}"
    assert read_losses(run / layout.LOSSES_CSV)["step"].tolist() == [1, 2, 3]   # the NaN step is not logged
    assert sorted(p.name for p in (run / "weights").glob("ckpt-*")) == ["ckpt-00000000", "ckpt-00000002"]
    assert ckpt.resolve(run / "weights").name == "ckpt-00000002"
    assert "training diverged at step 4" in (run / "index.html").read_text()
    assert not (run / ".lock").exists()


@pytest.mark.long
def test_weights_with_nan_are_neither_saved_nor_loaded(two_checkpoints, tmp_path):
    import h5py
    folder = tmp_path / "weights"
    shutil.copytree(two_checkpoints, folder)
    gan = ckpt.restore(folder)
    kernel = gan.d_A.trainable_weights[0]
    kernel.assign(np.full(kernel.shape, np.inf, "float32"))
    gan.step = 3
    with pytest.raises(ckpt.CheckpointError, match="not saving a checkpoint of step 3: d_A weight .* NaN or inf"):
        ckpt.save(gan, folder)
    assert sorted(p.name for p in folder.glob("*ckpt-*")) == ["ckpt-00000001", "ckpt-00000002"]

    # a checkpoint with NaN in a weight file and its manifest recomputed (the hashes cannot catch it)
    newest = folder / "ckpt-00000002"
    with h5py.File(newest / "g_BA.weights.h5", "r+") as weights:
        names = []
        weights.visititems(lambda name, item: names.append(name) if isinstance(item, h5py.Dataset) else None)
        floats = [n for n in names if weights[n].dtype.kind == "f" and weights[n].size > 1]
        weights[floats[0]][...] = np.nan
    state = json.loads((newest / "state.json").read_text())
    state["files"]["g_BA.weights.h5"] = {"bytes": (newest / "g_BA.weights.h5").stat().st_size,
                                         "sha256": ckpt.sha256_of(newest / "g_BA.weights.h5")}
    state["checksum"] = ckpt.state_checksum(state)
    (newest / "state.json").write_text(json.dumps(state))
    with pytest.raises(ckpt.CheckpointError, match=r"g_BA\.weights\.h5 holds NaN or inf"):
        ckpt.restore(newest)


# ----------------------------------------------------------------- 3. damaged checkpoints
def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _empty(path):
    path.write_bytes(b"")


def _garble(path):
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(255 - b for b in data[middle:middle + 64])
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name, damage, reason", [
    ("g_AB.weights.h5", _truncate, "bytes, .* were written"),
    ("d_B.weights.h5", _garble, "does not match its SHA-256"),
    ("optimizers.npz", _empty, "has 0 bytes"),
    ("pools.npz", _garble, "does not match its SHA-256"),
    ("state.json", _truncate, "state.json is unreadable"),
    ("state.json", lambda p: p.write_text(p.read_text().replace('"step": 2', '"step": 7')), "checksum mismatch"),
])
def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(two_checkpoints, tmp_path, capsys, name, damage,
                                                                   reason):
    folder = tmp_path / "weights"
    shutil.copytree(two_checkpoints, folder)
    damage(folder / "ckpt-00000002" / name)
    assert ckpt.resolve(folder).name == "ckpt-00000001"
    warning = capsys.readouterr().err
    assert f"skipping the damaged checkpoint {folder / 'ckpt-00000002'}" in warning
    assert name in warning and __import__("re").search(reason, warning), warning


def test_resume_from_a_damaged_newest_checkpoint_restores_the_one_before(two_checkpoints, tmp_path):
    folder = tmp_path / "weights"
    shutil.copytree(two_checkpoints, folder)
    _truncate(folder / "ckpt-00000002" / "g_AB.weights.h5")
    assert ckpt.restore(folder).step == 1


def test_no_intact_checkpoint_is_one_error_naming_each_file(two_checkpoints, tmp_path):
    folder = tmp_path / "weights"
    shutil.copytree(two_checkpoints, folder)
    _truncate(folder / "ckpt-00000002" / "optimizers.npz")
    (folder / "ckpt-00000001" / "state.json").write_text("{not json")
    with pytest.raises(ckpt.CheckpointError) as error:
        ckpt.restore(folder)
    message = str(error.value)
    assert "no intact checkpoint" in message
    assert str(folder / "ckpt-00000002" / "optimizers.npz") in message
    assert str(folder / "ckpt-00000001" / "state.json") in message


def test_a_checkpoint_holds_a_manifest_of_sizes_and_hashes(two_checkpoints):
    state = json.loads((two_checkpoints / "ckpt-00000002" / "state.json").read_text())
    assert set(state["files"]) == set(ckpt.FILES)
    for name, entry in state["files"].items():
        assert entry["bytes"] == (two_checkpoints / "ckpt-00000002" / name).stat().st_size
        assert len(entry["sha256"]) == 64
    assert ckpt.verify(two_checkpoints / "ckpt-00000002") == []


# ----------------------------------------------------------------- 4. translate never replaces the originals
@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for name in ("dup.jpg", "dup.png", "dup_png.png", "Other.png", "other.PNG"):
        Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(folder / name)
    return folder


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("output", [".", "sub/folder"])
def test_translate_refuses_the_input_folder_or_one_inside_it(tiny_run, photos, output):
    from utils.inference.translation import translate_folder
    before = _snapshot(photos)
    with pytest.raises(ValueError, match="the translations would replace or mix with the originals"):
        translate_folder(tiny_run, "AtoB", photos, photos / output, progress=False)
    assert _snapshot(photos) == before


def test_translate_gives_each_input_its_own_output_and_never_overwrites_without_asking(tiny_run, photos, tmp_path):
    from utils.inference.translation import translate_folder
    out = tmp_path / "out"
    written, _ = translate_folder(tiny_run, "AtoB", photos, out, progress=False)
    assert len(written) == 5 and len({p.name.casefold() for p in written}) == 5   # dup.jpg and dup.png both kept
    first = _snapshot(out)
    with pytest.raises(FileExistsError, match=r"exist already: pass --overwrite"):
        translate_folder(tiny_run, "AtoB", photos, out, progress=False)
    assert _snapshot(out) == first
    assert len(translate_folder(tiny_run, "BtoA", photos, out, progress=False, overwrite=True)[0]) == 5


# ----------------------------------------------------------------- 5. zip bombs and links
def _zip(path, members, links=()):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for name, target in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16   # a symbolic link, as `zip --symlinks` stores it
            archive.writestr(info, target)
    return path


def _png():
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def _official_layout(extra=None):
    members = {f"horse2zebra/{split}/0.png": _png() for split in ("trainA", "trainB", "testA", "testB")}
    return {**members, **(extra or {})}


def _download(tmp_path, archive):
    from utils.datasets.download import download_dataset
    served = tmp_path / "served"
    served.mkdir(exist_ok=True)
    shutil.move(archive, served / "horse2zebra.zip")
    return download_dataset("horse2zebra", tmp_path / "data", base_url=served.as_uri())


def test_a_zip_bomb_is_refused_before_extracting(tmp_path):
    from utils.datasets.download import DownloadError
    bomb = _zip(tmp_path / "bomb.zip", _official_layout({"horse2zebra/trainA/big.png": bytes(30_000_000)}))
    assert bomb.stat().st_size < 100_000
    with pytest.raises(DownloadError, match=r"declares 30,000,000 bytes .* a zip bomb"):
        _download(tmp_path, bomb)
    assert not list((tmp_path / "data").iterdir())   # nothing extracted, nothing left


def test_an_archive_larger_than_the_free_space_is_refused(tmp_path, monkeypatch):
    from utils.datasets import download
    monkeypatch.setattr(download, "free_mb", lambda path: 50.0)
    with pytest.raises(download.DownloadError, match=r"MB free \(keeping 100 MB spare\)"):
        _download(tmp_path, _zip(tmp_path / "a.zip", _official_layout()))
    assert not list((tmp_path / "data").iterdir())


def test_a_symbolic_link_member_is_refused_by_name(tmp_path):
    from utils.datasets.download import DownloadError
    archive = _zip(tmp_path / "link.zip", _official_layout(), links=[("horse2zebra/trainA/1.png", "/etc/passwd")])
    with pytest.raises(DownloadError, match=r"'horse2zebra/trainA/1.png' is a symbolic link"):
        _download(tmp_path, archive)
    assert not list((tmp_path / "data").iterdir())


def test_a_safe_archive_still_downloads(tmp_path):
    folder = _download(tmp_path, _zip(tmp_path / "ok.zip", _official_layout()))
    assert (folder / "testB" / "0.png").is_file()


# ----------------------------------------------------------------- 6. disk full (a file size limit)
DISK_FULL_SCRIPT = r"""
import json, resource, signal, sys
from pathlib import Path
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # a write past the limit fails with EFBIG instead
import numpy as np
from models import CycleGAN
from utils.runtime.disk_space import DiskFullError
from utils.training import checkpoint as ckpt
from utils import plots

folder, limit = Path(sys.argv[1]), int(sys.argv[2])
gan = CycleGAN(input_dim=(32, 32, 3), gen_n_filters=4, disc_n_filters=4, buffer_max_length=2)
for step in range(3):
    gan.step = step
    ckpt.save(gan, folder / "weights")
gan.step = 3
grids, rng = [], np.random.default_rng(0)
for i in range(12):   # noise: a GIF of it cannot compress below the limit
    grids.append(folder / f"grid_{i:02d}.png")
    plots.image_table([[rng.uniform(-1, 1, (128, 128, 3)).astype("float32")]], grids[-1])
_, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
result = {}
for name, write in (("checkpoint", lambda: ckpt.save(gan, folder / "weights")),
                    ("gif", lambda: plots.save_grid_animation(grids, folder / "progress.gif", scale=1))):
    if name == "gif":   # 12 frames of noise: far above 100 KB
        resource.setrlimit(resource.RLIMIT_FSIZE, (min(limit, 100_000), hard))
    try:
        write()
        result[name] = "written"
    except DiskFullError as error:   # what utils/training/checkpoint.py raises
        result[name] = str(error)
    except OSError as error:         # plots raise the OSError; the training loop words it
        result[name] = f"OSError {error.errno}"
print(json.dumps(result))
"""


@pytest.mark.long
@pytest.mark.skipif(not hasattr(os, "getrlimit") and sys.platform == "win32", reason="needs RLIMIT_FSIZE (POSIX)")
@pytest.mark.parametrize("limit, where", [(400_000, "optimizers.npz"), (100_000, "weights.h5")])
def test_disk_full_while_saving_keeps_the_good_checkpoints_and_leaves_no_temporary_files(tmp_path, limit, where):
    """400 KB: the weight files fit and the optimizer file fails mid-write (numpy's own EFBIG); 100 KB:
    a weight file would not fit and the save is refused before h5py writes (h5py crashes on a failed write)."""
    done = run_script("-c", DISK_FULL_SCRIPT, tmp_path, limit)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    message = result["checkpoint"]
    # the folder named is one that exists; the file it was writing follows (issue #24)
    assert message.startswith(f"disk full at {tmp_path / 'weights'} (writing ckpt-00000003/") and where in message, message
    assert "MB free" in message and f"the last good checkpoint is {tmp_path / 'weights' / 'ckpt-00000002'}" in message
    weights = tmp_path / "weights"
    assert sorted(p.name for p in weights.iterdir()) == ["ckpt-00000000", "ckpt-00000001", "ckpt-00000002", "latest"]
    assert all(ckpt.verify(p) == [] for p in weights.glob("ckpt-*"))
    assert result["gif"] == "OSError 27"   # EFBIG; its temporary file is gone (below)
    assert not [p for p in tmp_path.rglob("*") if "tmp" in p.name], list(tmp_path.rglob("*tmp*"))


@pytest.mark.skipif(not hasattr(__import__("resource"), "prlimit") if os.name == "posix" else True,
                    reason="needs resource.prlimit (Linux) to shrink a running process's file size limit")
@pytest.mark.long
def test_disk_full_mid_run_is_one_message_and_the_run_resumes(data_root, tmp_path):
    """A trainer whose disk fills up (its file size limit drops to 1 KB mid-run) stops with one line
    naming the place, the free space and the last good checkpoint, leaves no temporary file, and
    the run resumes from that checkpoint once there is room again."""
    import resource
    import time

    from utils.training.trainer import load_run, train
    command = [sys.executable, str(REPO / "train.py"), "--dataset", DATASET, "--data-root", str(data_root),
               "--run-root", str(tmp_path), "--img-size", "32", "--gen-filters", "4", "--disc-filters", "4",
               "--epochs", "2", "--decay-epochs", "2", "--sample-interval", "3", "--checkpoint-interval", "4",
               "--max-steps", "200", "--no-progress"]
    process = subprocess.Popen(command, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run = tmp_path / f"0001_{DATASET}"
    deadline = time.time() + 900
    while not ((run / layout.LOSSES_CSV).exists() and len(read_losses(run / layout.LOSSES_CSV)["step"]) >= 6):
        if process.poll() is not None or time.time() > deadline:
            process.kill()
            raise AssertionError(f"no 6 steps logged: {process.communicate()[1][-3000:]}")
        time.sleep(0.05)
    _, hard = resource.prlimit(process.pid, resource.RLIMIT_FSIZE)
    resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (1024, hard))
    out, err = process.communicate(timeout=900)
    assert process.returncode == 1, err[-3000:]
    assert "Traceback" not in err
    [line] = error_lines(err)
    assert line.startswith("error: disk full at ") and " MB free" in line and "the last good checkpoint is " in line
    last_good = Path(line.split("the last good checkpoint is ")[1].split(". ")[0])
    assert ckpt.verify(last_good) == [] and last_good.parent == run / "weights"
    assert not [p for p in run.rglob("*") if ".tmp" in p.name or p.name == ".lock"]
    train(None, None, run, data_root=data_root, resume=True, max_steps=14, progress=False)
    assert read_losses(run / layout.LOSSES_CSV)["step"].tolist() == list(range(1, 15))
    assert load_run(run).step == 14


# ----------------------------------------------------------------- 8. every value checked before anything is made
@pytest.mark.parametrize("script, flags, says", [
    ("train.py", ["--batch-size", "0"], "--batch-size: must be an integer >= 1, got 0"),
    ("train.py", ["--n-grid-images", "-1"], "--n-grid-images: must be an integer >= 1, got -1"),
    ("train.py", ["--max-steps", "-5"], "--max-steps: must be an integer >= 1, got -5"),
    ("train.py", ["--checkpoint-interval", "0"], "--checkpoint-interval: must be an integer >= 1, got 0"),
    ("train.py", ["--lambda-id", "nan"], "--lambda-id: must be a finite number, got 'nan'"),
    ("train.py", ["--learning-rate", "inf"], "--learning-rate: must be a finite number, got 'inf'"),
    ("train.py", ["--img-size", "33"], "--img-size 33: the unet generator downsamples by 16"),
    ("ablate.py", ["--steps", "-3"], "--steps: must be an integer >= 1, got -3"),
    ("ablate.py", ["--img-size", "33"], "--img-size 33: the unet generator downsamples by 16"),
    ("ablate.py", ["--variant", "lambda_id=-1"], "variant 'lambda_id=-1': lambda_id=-1: loss weights must be >= 0"),
    ("ablate.py", ["--variant", "a b:lambda_id=0", "--variant", "a_b:lambda_id=5"], "would share the folder runs/a_b"),
])
def test_a_bad_value_is_one_line_exit_2_and_leaves_no_folder(tmp_path, script, flags, says):
    where = ["--dataset", DATASET, "--data-root", tmp_path / "data"]
    if script == "train.py":
        where += ["--run-root", tmp_path / "runs"]
    else:
        where += ["--out-root", tmp_path / "runs"] + (["--steps", "2"] if "--steps" not in flags else [])
    done = run_script(REPO / script, *where, *flags)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    [line] = error_lines(done.stderr)
    assert says in line
    assert not (tmp_path / "runs").exists() and not (tmp_path / "data").exists()


def test_settings_are_checked_before_a_run_folder_is_made(data_root, tmp_path):
    from utils.training.trainer import train
    for bad in ({"n_grid_images": -1}, {"checkpoint_interval": 0}, {"max_steps": -5}, {"batch_size": 0}):
        with pytest.raises(ValueError, match=f"{list(bad)[0]}=.*must be an integer >= 1"):
            train(TINY, DATASET, data_root=data_root, run_root=tmp_path / "runs", progress=False, **bad)
    assert not (tmp_path / "runs").exists()


def test_a_dataset_without_a_test_split_leaves_no_orphan_folder(data_root, tmp_path):
    from utils.datasets.loader import DatasetError
    from utils.training.trainer import train
    shutil.copytree(data_root / DATASET, tmp_path / "data" / "no_tests")
    shutil.rmtree(tmp_path / "data" / "no_tests" / "testA")
    shutil.rmtree(tmp_path / "data" / "no_tests" / "testB")
    with pytest.raises(DatasetError, match="testA"):
        train(TINY, "no_tests", data_root=tmp_path / "data", run_root=tmp_path / "runs", max_steps=2, progress=False)
    assert not list((tmp_path / "runs").iterdir())


@pytest.mark.long
def test_a_nested_dataset_name_with_dollars_trains(data_root, tmp_path):
    """'sub/a$\\q$b': a safe folder name, and the grid title is plain text (mathtext would fail on it)."""
    from utils.training.trainer import train
    name = "sub/a$\\q$b"
    shutil.copytree(data_root / DATASET, tmp_path / "data" / name)
    run = train(TINY, name, data_root=tmp_path / "data", run_root=tmp_path / "runs", max_steps=1,
                sample_interval=1, progress=False)
    assert run.parent == tmp_path / "runs" and run.name == "0001_sub_a_q_b"
    assert [p.name for p in layout.grid_paths(run)] == ["grid_0000000.png", "grid_0000001.png"]


def test_two_variants_sharing_a_folder_are_refused():
    from utils.evaluation import ablation
    with pytest.raises(ValueError, match="'lambda_id=0' and 'lambda_id_0' would share the folder runs/lambda_id_0"):
        ablation.variant_configs(ablation.full_config(), {"lambda_id=0": {"lambda_id": 0.0},
                                                          "lambda_id_0": {"lambda_id": 5.0}})


# ----------------------------------------------------------------- 9. one line, or the traceback with --debug
@pytest.mark.long
def test_user_errors_are_one_line_and_debug_shows_the_traceback(tiny_run, photos):
    args = [REPO / "translate.py", tiny_run, "--direction", "AtoB", "--input", photos, "--output", photos]
    plain = run_script(*args)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    [line] = error_lines(plain.stderr)
    assert line.startswith(f"error: output folder {photos} is the input folder")
    for debug in (run_script(*args, "--debug"), run_script(*args, env={"CYCLEGAN_DEBUG": "1"})):
        assert debug.returncode != 0 and "Traceback (most recent call last)" in debug.stderr
        assert "ValueError: output folder" in debug.stderr
