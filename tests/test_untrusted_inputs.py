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
from utils.training import checkpoint as ckpt
from utils.training import run_folder as layout
from utils.training.lock import RunLock

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


@pytest.mark.long
@needs_links
def test_train_py_with_a_lock_linked_outside_the_run_leaves_that_file_unchanged(data_root, tmp_path):
    from utils.training.trainer import train
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
    from utils.runtime.files import write_atomic
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    (tmp_path / "out.txt").symlink_to(outside)
    (tmp_path / f".out.txt.tmp-{os.getpid()}").symlink_to(outside)   # a link planted at the temporary name
    write_atomic(tmp_path / "out.txt", "new")
    assert outside.read_text() == "keep me"
    assert (tmp_path / "out.txt").read_text() == "new" and not (tmp_path / "out.txt").is_symlink()


@needs_links
def test_translate_overwrite_refuses_an_output_that_links_to_an_input(tiny_run, photos, tmp_path):
    from utils.inference.translation import translate_folder
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").symlink_to(photos / "a.png")
    before = (photos / "a.png").read_bytes()
    with pytest.raises(ValueError, match=r"a\.png is a link to the input .*a\.png"):
        translate_folder(tiny_run, "AtoB", photos, out, progress=False, overwrite=True)
    assert (photos / "a.png").read_bytes() == before


@needs_links
def test_translate_overwrite_replaces_a_link_to_elsewhere_not_its_target(tiny_run, photos, tmp_path):
    from utils.inference.translation import translate_folder
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
    """A model folder (utils/inference/trained_model.py layout) of an untrained tiny CycleGAN."""
    from utils.inference.trained_model import save_model_folder
    gan = CycleGAN(**{k: v for k, v in TINY.items() if k not in ("epochs", "decay_epochs")})
    return save_model_folder(gan, tmp_path_factory.mktemp("models") / "tiny", made_by="a test")


def test_export_refuses_an_existing_file_without_overwrite(model_folder, tmp_path):
    import export as export_script
    out = tmp_path / "g.keras"
    args = [str(model_folder), "--direction", "AtoB", "--format", "keras", "--out", str(out)]
    export_script.main(args)
    earlier = out.read_bytes()   # an earlier export (--overwrite replaces only what an export wrote)
    with pytest.raises(SystemExit, match=r"g\.keras exist already: pass --overwrite"):
        export_script.main(args)
    assert out.read_bytes() == earlier
    export_script.main([*args, "--overwrite"])
    assert out.stat().st_size > 1000 and not list(tmp_path.glob(".*tmp*"))


@needs_links
def test_export_refuses_a_target_that_links_to_the_models_own_weights(model_folder, tmp_path):
    from utils.inference.export import export_generator
    out = tmp_path / "g.keras"
    out.symlink_to(model_folder / "g_AB.weights.h5")
    before = (model_folder / "g_AB.weights.h5").read_bytes()
    with pytest.raises(ValueError, match=r"g\.keras is a link to the input .*g_AB\.weights\.h5"):
        export_generator(model_folder, "AtoB", "keras", out, overwrite=True)
    assert (model_folder / "g_AB.weights.h5").read_bytes() == before


# ----------------------------------------------------------------- 2. a checkpoint proves what it is
def reseal(folder, state=None):
    """Rewrite a checkpoint's manifest and checksum after a test changed its files (or `state`), as an
    attacker (or a buggy tool) would: only the checks beyond the hashes can then catch the change."""
    state = state or json.loads((folder / "state.json").read_text())
    state["files"] = {f: {"bytes": (folder / f).stat().st_size, "sha256": ckpt.sha256_of(folder / f)} for f in ckpt.FILES}
    state["checksum"] = ckpt.state_checksum(state)
    (folder / "state.json").write_text(json.dumps(state))


def _tiny_gan(seed=0):
    return CycleGAN(**{**{k: v for k, v in TINY.items() if k not in ("epochs", "decay_epochs")}, "seed": seed})


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    """A run folder (config.json + weights/ckpt-00000001, ckpt-00000002) and another run's checkpoint
    of step 3 (seed 1), both of the tiny model."""
    root = tmp_path_factory.mktemp("saved")
    rng = np.random.default_rng(0)
    images = [rng.uniform(-1, 1, (1, 32, 32, 3)).astype("float32") for _ in range(2)]
    gan = _tiny_gan()
    (root / "run").mkdir()
    (root / "run" / layout.CONFIG).write_text(json.dumps({"dataset": DATASET, "model": gan.config.to_dict(),
                                                          "training": {}}))
    for _ in range(2):
        gan.train_step(*images)
        ckpt.save(gan, root / "run" / "weights")
    other = _tiny_gan(seed=1)
    for _ in range(3):
        other.train_step(*images)
    ckpt.save(other, root / "other" / "weights")
    return root


@pytest.fixture
def run(saved_run, tmp_path):
    shutil.copytree(saved_run, tmp_path / "copy", symlinks=True)
    return tmp_path / "copy" / "run"


def _falls_back_to(run, step, says, capsys):
    """The run's checkpoints resolve (and resume) to `step`, with one warning containing `says`."""
    ckpt._warned.clear()
    assert ckpt.resolve(run / "weights").name == f"ckpt-{step:08d}"
    warning = capsys.readouterr().err
    assert "warning: skipping the damaged checkpoint" in warning and says in warning, warning
    assert ckpt.restore(run / "weights").step == step


@pytest.mark.long
@needs_links
@pytest.mark.parametrize("target", ["another run", "an older step"])
def test_a_checkpoint_folder_that_is_a_link_is_refused(run, target, capsys):
    newest = run / "weights" / "ckpt-00000003"
    newest.symlink_to(run.parent / "other" / "weights" / "ckpt-00000003" if target == "another run"
                      else run / "weights" / "ckpt-00000001")
    (run / "weights" / "latest").write_text(newest.name)
    _falls_back_to(run, 2, "ckpt-00000003 is a symbolic link", capsys)


def test_a_checkpoint_whose_step_is_not_its_folders_name_is_refused(run, capsys):
    shutil.copytree(run / "weights" / "ckpt-00000001", run / "weights" / "ckpt-00000003")
    (run / "weights" / "latest").write_text("ckpt-00000003")
    _falls_back_to(run, 2, "holds step 1, not the step of its folder name ckpt-00000003", capsys)


def test_a_checkpoint_of_another_run_copied_in_is_refused(run, capsys):
    shutil.copytree(run.parent / "other" / "weights" / "ckpt-00000003", run / "weights" / "ckpt-00000003")
    (run / "weights" / "latest").write_text("ckpt-00000003")
    _falls_back_to(run, 2, "was saved by another run: seed 1 (the run's config.json: 0)", capsys)


def test_a_state_without_its_manifest_is_damaged(run, capsys):
    """An altered weight file plus a state.json without "files" once skipped every hash check."""
    newest = run / "weights" / "ckpt-00000002"
    state = json.loads((newest / "state.json").read_text())
    del state["files"]
    state["checksum"] = ckpt.state_checksum(state)
    (newest / "state.json").write_text(json.dumps(state))
    _falls_back_to(run, 1, f"damaged: {newest / 'state.json'} lacks files", capsys)


def test_a_state_missing_a_key_is_damaged_and_falls_back(run, capsys):
    newest = run / "weights" / "ckpt-00000002"
    state = json.loads((newest / "state.json").read_text())
    del state["pool_rng"]
    reseal(newest, state)
    _falls_back_to(run, 1, f"damaged: {newest / 'state.json'} lacks pool_rng", capsys)


@pytest.mark.long
def test_a_resume_that_fails_appends_nothing_to_config_json(data_root, tmp_path):
    from utils.training.trainer import train
    run = train(TINY, DATASET, data_root=data_root, run_root=tmp_path, max_steps=2, checkpoint_interval=1,
                progress=False)
    for folder in (run / "weights").glob("ckpt-*"):
        state = json.loads((folder / "state.json").read_text())
        del state["step"]
        reseal(folder, state)
    before = (run / layout.CONFIG).read_bytes()
    with pytest.raises(ckpt.CheckpointError, match="lacks step"):
        train(None, None, run, data_root=data_root, resume=True, max_steps=4, progress=False)
    assert (run / layout.CONFIG).read_bytes() == before
    assert not (run / ".lock").exists()


# ----------------------------------------------------------------- 4. non-finite training state is damage
def _set_h5_value(path, value):
    import h5py
    with h5py.File(path, "r+") as weights:
        names = []
        weights.visititems(lambda name, item: names.append(name) if isinstance(item, h5py.Dataset) else None)
        floats = [n for n in names if weights[n].dtype.kind == "f" and weights[n].size > 1 and "optimizer" not in n]
        weights[floats[0]][(0,) * weights[floats[0]].ndim] = value


def _set_npz_value(path, key_filter, value):
    with np.load(path, allow_pickle=False) as arrays:
        contents = {key: arrays[key] for key in arrays.files}
    key = next(k for k, v in contents.items() if key_filter(k) and v.dtype.kind == "f" and v.size)
    contents[key] = contents[key].copy()
    contents[key].flat[0] = value
    np.savez(path, **contents)


@pytest.mark.parametrize("file, damage, says", [
    ("g_AB.weights.h5", lambda p: _set_h5_value(p, np.nan), "g_AB.weights.h5 holds NaN or inf"),
    ("d_B.weights.h5", lambda p: _set_h5_value(p, 1e30), "holds a weight of 1e+30"),
    ("optimizers.npz", lambda p: _set_npz_value(p, lambda k: not k.endswith("/paths"), np.nan),
     "optimizers.npz holds NaN or inf"),
    ("pools.npz", lambda p: _set_npz_value(p, lambda k: True, np.inf), "pools.npz holds NaN or inf"),
])
def test_non_finite_or_huge_state_is_damage_and_falls_back(run, capsys, file, damage, says):
    newest = run / "weights" / "ckpt-00000002"
    damage(newest / file)
    reseal(newest)   # the manifest recomputed: only the values give it away
    _falls_back_to(run, 1, says, capsys)


@pytest.mark.long
def test_a_diverging_run_never_saves_a_huge_checkpoint_and_resumes_with_a_new_learning_rate(data_root, tmp_path):
    """--learning-rate 1e30: the first step's weights are around 1e30 while the losses may stay finite."""
    from utils.training.loop import NonFiniteLossError
    from utils.training.trainer import train
    with pytest.raises(NonFiniteLossError, match=r"training diverged at step \d+: .*(g_AB|g_BA|d_A|d_B|pool)"
                                                 r".*last good checkpoint is .*ckpt-00000000"):
        train({**TINY, "learning_rate": 1e30}, DATASET, data_root=data_root, run_root=tmp_path, max_steps=6,
              checkpoint_interval=2, sample_interval=100, progress=False)
    run = tmp_path / f"0001_{DATASET}"
    assert [p.name for p in (run / "weights").glob("ckpt-*")] == ["ckpt-00000000"]
    assert ckpt.verify(run / "weights" / "ckpt-00000000") == []
    train(None, None, run, data_root=data_root, resume=True, max_steps=2, checkpoint_interval=2,
          learning_rate=2e-4, progress=False)
    meta = json.loads((run / layout.CONFIG).read_text())
    assert meta["model"]["learning_rate"] == 2e-4 and meta["sessions"][-1]["learning_rate"] == 2e-4
    assert json.loads((run / "weights" / "ckpt-00000002" / "state.json").read_text())["config"]["learning_rate"] == 2e-4


def test_the_divergence_message_names_the_pool_when_the_pool_is_the_cause():
    from utils.training.loop import NonFiniteLossError, check_losses
    gan = _tiny_gan()
    gan.pool_A.set_state(np.full((1, 32, 32, 3), np.inf, np.float32), gan.pool_A.get_state()[1])
    with pytest.raises(NonFiniteLossError, match="cause: the image pool pool_A holds NaN or inf"):
        check_losses(5, {"g_loss": float("nan")}, gan=gan)
    gan.pool_A.set_state([], gan.pool_A.get_state()[1])
    with pytest.raises(NonFiniteLossError, match="the weights and pools are finite: the losses overflowed"):
        check_losses(5, {"g_loss": float("nan")}, gan=gan)


# ----------------------------------------------------------------- 3. every loader checks what it loads
def _model_copy(model_folder, tmp_path, damage=None, reseal_manifest=True):
    """A copy of the model folder with `damage(g_AB file)` done, its manifest recomputed if asked."""
    folder = tmp_path / "model"
    shutil.copytree(model_folder, folder)
    if damage:
        damage(folder / "g_AB.weights.h5")
    if reseal_manifest:
        meta = json.loads((folder / "config.json").read_text())
        meta["files"] = {name: {"bytes": (folder / name).stat().st_size, "sha256": ckpt.sha256_of(folder / name)}
                         for name in ("g_AB.weights.h5", "g_BA.weights.h5")}
        (folder / "config.json").write_text(json.dumps(meta))
    return folder


def test_a_model_folder_carries_a_manifest_and_the_shipped_ones_check_out(model_folder):
    from utils.inference.trained_model import check_model_folder
    meta = json.loads((model_folder / "config.json").read_text())
    assert set(meta["files"]) == {"g_AB.weights.h5", "g_BA.weights.h5"}
    for shipped in ("apple2orange_128", "synthetic_apple2orange_64"):
        folder = REPO / "pretrained" / shipped
        check_model_folder(folder, json.loads((folder / "config.json").read_text()))   # raises if not


@pytest.mark.long
def test_a_model_folder_with_one_nan_weight_is_refused_by_translate_export_and_evaluate(model_folder, photos,
                                                                                          tmp_path):
    folder = _model_copy(model_folder, tmp_path, lambda p: _set_h5_value(p, np.nan))   # hashes recomputed
    file = folder / "g_AB.weights.h5"
    for script, args in (("translate.py", ["--direction", "AtoB", "--input", photos, "--output", tmp_path / "out"]),
                         ("export.py", ["--direction", "AtoB", "--format", "keras", "--out", tmp_path / "g.keras"]),
                         ("evaluate.py", ["--dataset", DATASET, "--data-root", tmp_path / "data"])):
        done = run_script(REPO / script, folder, *args)
        assert done.returncode != 0 and "Traceback" not in done.stderr, (script, done.stderr[-2000:])
        [line] = error_lines(done.stderr)
        assert f"{file} holds NaN or inf" in line, (script, line)
    assert not (tmp_path / "out").exists() and not (tmp_path / "g.keras").exists()


def test_a_model_folder_with_altered_bytes_fails_its_hash(model_folder, tmp_path):
    from utils.inference.trained_model import load_generators

    def garble(path):   # 4 KB of random bytes in the middle: h5py may still open it
        data = bytearray(path.read_bytes())
        middle = len(data) // 2
        data[middle:middle + 4096] = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
        path.write_bytes(bytes(data))

    folder = _model_copy(model_folder, tmp_path, garble, reseal_manifest=False)
    with pytest.raises(ValueError, match=r"g_AB\.weights\.h5 does not match its size and SHA-256"):
        load_generators(folder)


def test_a_model_folder_without_a_manifest_is_refused_with_the_command_that_adds_one(model_folder, tmp_path):
    from utils.inference.trained_model import ModelFileError, add_manifest, load_generators
    folder = _model_copy(model_folder, tmp_path)
    meta = json.loads((folder / "config.json").read_text())
    del meta["files"]
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match=f"has no manifest .*--add-manifest {folder}"):
        load_generators(folder)
    weights = (folder / "g_AB.weights.h5").read_bytes()
    add_manifest(folder)
    assert (folder / "g_AB.weights.h5").read_bytes() == weights
    assert load_generators(folder).g_AB is not None


def test_a_translation_that_is_not_finite_is_an_error_for_that_image_not_a_black_png(model_folder, photos,
                                                                                     tmp_path, capsys):
    from utils.inference.trained_model import load_generators
    from utils.inference.translation import translate_folder
    model = load_generators(model_folder)
    kernel = model.g_AB.weights[0]
    kernel.assign(np.full(kernel.shape, np.nan, "float32"))   # as a model built in memory might be
    written, skipped = translate_folder(model, "AtoB", photos, tmp_path / "out", progress=False)
    assert written == [] and [p.name for p, _ in skipped] == ["a.png", "b.png"]
    assert "returned NaN or inf for this image" in capsys.readouterr().out
    assert not list((tmp_path / "out").glob("*.png"))


# ----------------------------------------------------------------- 5. bounded work per input
def strip_png(width, height=1, pixels=True):
    """A valid grayscale PNG of width x height (zeros), a few KB however wide; pixels=False: header only."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    rows = zlib.compress(b"\x00" * ((width + 1) * height), 9) if pixels else b""
    return b"\x89PNG\r\n\x1a\n" + header + (chunk(b"IDAT", rows) if pixels else b"") + chunk(b"IEND", b"")


@pytest.mark.parametrize("width, height, says", [(89_000_000, 1, "a side of 89,000,000 px is more than the limit"),
                                                 (30_001, 1_000, "a side of 30,001 px is more than the limit"),
                                                 (20_000, 100, "200 times longer than wide")])
def test_an_image_is_refused_by_its_sides_before_it_is_decoded(tmp_path, width, height, says):
    from utils.images import ImageReadError, check_header
    path = tmp_path / "strip.png"
    path.write_bytes(strip_png(width, height, pixels=False))   # under Pillow's pixel limit
    with pytest.raises(ImageReadError, match=says):
        check_header(path)


def test_one_strip_image_is_one_message_and_the_rest_of_the_folder_is_translated(tiny_run, photos, tmp_path,
                                                                                   capsys):
    from utils.inference.translation import translate_folder
    (photos / "strip.png").write_bytes(strip_png(89_000_000))   # 86 KB, 89 megapixels, one row
    written, skipped = translate_folder(tiny_run, "AtoB", photos, tmp_path / "out", progress=False)
    assert sorted(p.name for p in written) == ["a.png", "b.png"]
    assert [p.name for p, _ in skipped] == ["strip.png"]
    assert "strip.png" in capsys.readouterr().out


@pytest.fixture(scope="module")
def page(tiny_run):
    """The classroom page (Gradio, utils/inference/serve.py) for the tiny run, started on a free port."""
    from utils.inference.serve import build_app, launch
    app = build_app([tiny_run], max_side=64, max_bytes=200_000)
    url = launch(app, port=0)
    yield app, int(url.rstrip("/").rsplit(":", 1)[1])
    app.close()


def _raw_request(port, head, body=b"", wait=20):
    """Send raw bytes, keep the socket open, return all the server answers until it closes (or `wait` s)."""
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as connection:
        connection.sendall(head + body)
        answer = b""
        try:
            while chunk := connection.recv(65536):
                answer += chunk
        except TimeoutError:
            pass
        return answer.decode("latin-1")


def _upload_head(length):
    return (b"POST /gradio_api/upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            + (f"Content-Length: {length}\r\n".encode() if length is not None else b"") + b"\r\n")


def test_the_page_refuses_a_negative_length_and_reads_no_body_without_one(page):
    _, port = page
    answer = _raw_request(port, _upload_head(-1), b"x" * 100_000)   # the stream goes on: an endless read would hang
    assert answer.startswith("HTTP/1.1 400") and "Invalid HTTP request" in answer
    answer = _raw_request(port, _upload_head(None), b"x" * 100_000)   # an empty upload, then garbage: closed
    assert answer.startswith("HTTP/1.1 200") and "HTTP/1.1 400" in answer


@pytest.mark.long
def test_the_page_refuses_a_form_of_many_parts(page):
    _, port = page
    part = b"--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\ny\r\n"
    body = part * 3_000 + b"--b--\r\n"
    answer = _raw_request(port, _upload_head(len(body)), body)
    assert answer.startswith("HTTP/1.1 400") and "carries one photo: more than 4 parts" in answer


def test_the_page_refuses_a_strip_image_by_its_header(page, tmp_path):
    import gradio as gr
    app, _ = page
    (tmp_path / "strip.png").write_bytes(strip_png(39_999_000))
    with pytest.raises(gr.Error, match="strip.png is not an image this page can read: 39999000x1: a side of "
                                       "39,999,000 px is more than the limit"):
        app.translator.answer({"path": str(tmp_path / "strip.png"), "orig_name": "strip.png"})


# ----------------------------------------------------------------- 6. the smaller ones
def _zip_download(tmp_path, members=None, raw=None):
    """download_dataset of horse2zebra from a local 'server' holding `members` as a zip (or `raw` bytes)."""
    import zipfile

    from utils.datasets.download import download_dataset
    served = tmp_path / "served"
    served.mkdir(exist_ok=True)
    if raw is not None:
        (served / "horse2zebra.zip").write_bytes(raw)
    else:
        with zipfile.ZipFile(served / "horse2zebra.zip", "w") as archive:
            for name, data in members.items():
                archive.writestr(name, data)
    return download_dataset("horse2zebra", tmp_path / "data", base_url=served.as_uri())


def test_a_zip_of_100000_empty_members_is_refused_before_extracting(tmp_path):
    from utils.datasets.download import DownloadError
    members = {f"horse2zebra/{split}/0.png": b"x" for split in ("trainA", "trainB", "testA", "testB")}
    members.update({f"horse2zebra/trainA/{i}.txt": b"" for i in range(100_000)})
    with pytest.raises(DownloadError, match=r"holds 100,004 members, more than 50,000"):
        _zip_download(tmp_path, members)
    assert not list((tmp_path / "data").iterdir())


@pytest.mark.parametrize("members, raw, says", [
    (None, b"<!DOCTYPE html><html><body>Moved</body></html>", "is a web page, not a zip archive"),
    ({"horse2zebra/trainA": b"a file", "horse2zebra/trainA/0.png": b"x"}, None,
     "'horse2zebra/trainA' is both a file and a folder"),
])
def test_a_web_page_or_a_file_folder_clash_is_not_called_a_truncated_download(tmp_path, members, raw, says):
    from utils.datasets.download import DownloadError
    with pytest.raises(DownloadError, match=says) as error:
        _zip_download(tmp_path, members, raw)
    assert "truncated" not in str(error.value)


def test_a_disk_full_message_names_a_path_that_exists(tmp_path):
    import errno

    from utils.runtime.disk_space import disk_full_error
    failed = tmp_path / "weights" / "ckpt-00000003" / "optimizers.npz"   # never written
    (tmp_path / "weights").mkdir()
    message = str(disk_full_error(OSError(errno.ENOSPC, "No space left on device"), failed))
    named = Path(message.split("disk full at ")[1].split(" (writing")[0].split(":")[0])
    assert named.exists() and named == tmp_path / "weights"
    assert "(writing ckpt-00000003/optimizers.npz)" in message


SIGTERM_AT_START = r"""
import os, signal, sys, time
import train
from utils.training import trainer
original = trainer._model_for
def slow_model_for(*args, **kwargs):   # SIGTERM arrives after the lock is taken, before the first step
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)
    return original(*args, **kwargs)
trainer._model_for = slow_model_for
sys.argv = ["train.py", *sys.argv[1:]]
from utils.cli import run_main
run_main(train.main)
"""


def test_sigterm_between_the_lock_and_the_first_step_leaves_no_folder_and_says_so(data_root, tmp_path):
    done = run_script("-c", SIGTERM_AT_START, "--dataset", DATASET, "--data-root", data_root, "--run-root",
                      tmp_path / "runs", "--img-size", "32", "--gen-filters", "4", "--disc-filters", "4",
                      "--max-steps", "2", "--no-progress")
    assert done.returncode == 130, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr
    assert "Stopped before the first step: the new run folder" in done.stderr and "was removed" in done.stderr
    assert not list((tmp_path / "runs").iterdir())


@pytest.mark.parametrize("script, flags, says", [
    ("train.py", ["--img-size", "1000000000"], "at most 4096 px a side"),
    ("train.py", ["--gen-filters", "1000000000"], "--gen-filters 1000000000: must be a positive integer, at most 1024"),
    ("ablate.py", ["--img-size", "1000000000"], "at most 4096 px a side"),
    ("ablate.py", ["--gen-filters", "1000000000"], "--gen-filters 1000000000: must be a positive integer, at most 1024"),
    ("train.py", ["--log-interval", "0"], "--log-interval: must be an integer >= 1, got 0"),
    ("train.py", ["--seed", "-1"], "--seed: must be an integer >= 0, got -1"),
    ("ablate.py", ["--seed", "-1"], "--seed: must be an integer >= 0, got -1"),
    ("serve.py", ["--port", "-1"], "--port: must be from 0 (any free port) to 65535, got -1"),
    ("serve.py", ["--port", "65536"], "--port: must be from 0 (any free port) to 65535, got 65536"),
    ("serve.py", ["--max-upload-mb", "inf"], "--max-upload-mb: must be a finite number, got 'inf'"),
    ("export.py", ["--direction", "AtoB", "--format", "pickle"], "--format: invalid choice: 'pickle'"),
    ("-m utils.datasets.synthetic", ["synthetic_apple2orange", "--size", "-5"], "--size: must be an integer >= 1, got -5"),
    ("-m utils.datasets.synthetic", ["synthetic_apple2orange", "--n-train", "0"], "--n-train: must be an integer >= 1, got 0"),
    ("-m utils.datasets.synthetic", ["synthetic_apple2orange", "--seed", "-1"], "--seed: must be an integer >= 0, got -1"),
])
def test_an_absurd_value_is_one_line_and_exit_2(tmp_path, script, flags, says):
    where = {"train.py": ["--dataset", DATASET, "--data-root", tmp_path / "data", "--run-root", tmp_path / "runs",
                          "--max-steps", "1"],   # should a value pass, the run stays short
             "ablate.py": ["--dataset", DATASET, "--data-root", tmp_path / "data", "--out-root", tmp_path / "runs",
                           "--steps", "2"],
             "serve.py": [tmp_path / "no_model"], "export.py": [tmp_path / "no_model"],
             "-m utils.datasets.synthetic": ["--data-root", tmp_path / "data"]}[script]
    command = script.split() if script.startswith("-m") else [REPO / script]
    done = run_script(*command, *where, *flags)
    assert done.returncode == 2, (done.stdout[-1000:], done.stderr[-2000:])
    assert "Traceback" not in done.stderr and "usage:" not in done.stderr
    [line] = error_lines(done.stderr)
    assert says in line, line
    assert not (tmp_path / "runs").exists() and not (tmp_path / "data").exists()


@pytest.mark.parametrize("script, args, says", [
    ("translate.py", ["{model}", "--direction", "AtoB", "--input", "{missing}"], "--input {missing}: no such folder"),
    ("translate.py", ["{model}", "--direction", "AtoB", "--input", "{model}", "--max-side", "-1"], "--max-side -1"),
    ("export.py", ["{missing}", "--direction", "AtoB", "--format", "keras"], "no such model: {missing}"),
    ("serve.py", ["{model}", "{missing}"], "no such model: {missing}"),
    ("serve.py", ["{model}", "--port", "65536"], "--port: must be from 0"),
])
def test_refusals_that_need_no_model_come_before_tensorflow_is_imported(tmp_path, script, args, says):
    fake = tmp_path / "fake" / "tensorflow"   # importing it fails loudly: the refusal must come first
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('tensorflow was imported')\n")
    (tmp_path / "model").mkdir()
    names = {"model": tmp_path / "model", "missing": tmp_path / "missing"}
    env = {**ENV, "PYTHONPATH": f"{fake.parent}{os.pathsep}{REPO}"}
    done = subprocess.run([sys.executable, REPO / script, *(a.format(**names) for a in args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "tensorflow was imported" not in done.stderr, done.stderr[-2000:]
    [line] = error_lines(done.stderr)
    assert says.format(**names) in line
