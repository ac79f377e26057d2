"""One home per idea (issue 34 item 4): the direction and domain names, the reading of an image file, the run
folder's layout, the loading of a trained model, the progress policy, the mixed-precision rule and the CPU's
flags each live in one module, and the others ask it. Each test fails if a copy comes back or if a caller
behaves differently from its home.
"""

import argparse
import ast
import io
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from models import directions
from models.directions import DIRECTION_HELP, DIRECTIONS, DOMAINS, cycle_label, label
from utils import cli, images
from utils.training import run_folder as layout

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ("train.py", "translate.py", "evaluate.py", "export.py", "serve.py", "ablate.py", "quickstart.py")
# Where the issue found the copies: inference, evaluation, datasets, the shared files and the entry scripts.
SCOPE = ("utils/inference", "utils/evaluation", "utils/datasets", "utils/training", "utils/images.py", "utils/plots.py",
         "utils/cli.py", "utils/loaders.py", *SCRIPTS)


def python_files(*places):
    for place in places:
        path = ROOT / place
        yield from (sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.is_file() else [])


def project_files():
    return list(python_files("models", "utils", *SCRIPTS))


def constants(node):
    """The values of a tuple, list or set made only of constants, else None."""
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and node.elts and all(
            isinstance(e, ast.Constant) for e in node.elts):
        return tuple(e.value for e in node.elts)
    return None


def offenders(files, found):
    """['path:line what'] for every node of `files` that found(node) names (a string), else nothing."""
    out = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            what = found(node)
            if what:
                out.append(f"{path.relative_to(ROOT)}:{node.lineno} {what}")
    return out


# ----------------------------------------------------------------- a, b: direction and domain names
def test_labels_and_help_of_the_directions():
    assert DOMAINS == ("A", "B") and DIRECTIONS == ("AtoB", "BtoA")
    assert [label(d) for d in DIRECTIONS] == ["A → B (g_AB)", "B → A (g_BA)"]
    assert label("BtoA", ("Monet", "photo"), arrow="->") == "photo -> Monet (g_BA)"
    assert cycle_label("AtoB", ("Monet", "photo")) == "Monet → photo → Monet (cycled back)"
    assert DIRECTION_HELP == ", ".join(f"{d}: {directions.GENERATORS[d]} ({' -> '.join(directions.domains(d))})"
                                       for d in DIRECTIONS)
    with pytest.raises(ValueError, match="'AtoB'"):
        label("AtoA")


def direction_flags(monkeypatch, main, argv=("--help",)):
    """The keyword arguments each `--direction` flag of `main`'s parser is declared with."""
    declared = []
    add_argument = argparse.ArgumentParser.add_argument

    def recording(self, *names, **kwargs):
        if "--direction" in names:
            declared.append(kwargs)
        return add_argument(self, *names, **kwargs)
    monkeypatch.setattr(argparse.ArgumentParser, "add_argument", recording)
    with pytest.raises(SystemExit):
        main(list(argv))
    return declared


@pytest.mark.parametrize("script", ["translate", "export", "utils.evaluation.checkerboard"])
def test_every_direction_flag_takes_its_choices_and_help_from_directions(monkeypatch, capsys, script):
    main = __import__(script, fromlist=["main"]).main
    flags = direction_flags(monkeypatch, main)
    assert len(flags) == 1 and flags[0]["choices"] is DIRECTIONS and DIRECTION_HELP in flags[0]["help"]
    assert "{AtoB,BtoA}" in capsys.readouterr().out


def test_the_pages_columns_are_the_directions_labels(monkeypatch):
    from utils.inference import serve
    names = ("Monet", "photo")
    assert serve.column_titles(names) == (label("AtoB", names), cycle_label("AtoB", names),
                                          label("BtoA", names), cycle_label("BtoA", names))
    assert [key for key, _ in serve.COLUMNS] == ["AtoB", "AtoB,BtoA", "BtoA", "BtoA,AtoB"]
    assert [title for _, title in serve.COLUMNS] == list(serve.column_titles(DOMAINS))
    assert serve.domain_names("my_photos") == DOMAINS
    monkeypatch.setattr(serve, "label", lambda direction, names: f"label {direction}")   # the page asks directions.py
    assert serve.column_titles(names)[::2] == ("label AtoB", "label BtoA")


def test_no_copy_of_the_direction_or_domain_names():
    """No tuple, list or set of the two directions or the two domains, and no dict keyed by the two directions,
    outside models/directions.py (dicts keyed by domain, records such as {"A": accuracy, ...}, are data)."""
    def copy(node):
        values = constants(node)
        if values and (set(values) == set(DIRECTIONS) or values in (DOMAINS, DOMAINS[::-1])):
            return f"{values} (models/directions.py: DIRECTIONS, DOMAINS)"
        if isinstance(node, ast.Dict) and {k.value for k in node.keys if isinstance(k, ast.Constant)} >= set(DIRECTIONS):
            return "a dict keyed by 'AtoB' and 'BtoA' (build it from DIRECTIONS)"
        return None
    assert offenders(python_files(*SCOPE), copy) == []


def test_the_judge_has_one_probability_of_the_target():
    from utils.evaluation import judge as judges

    class Judge:   # P(B) = each image's mean
        def predict(self, x, batch_size=None, verbose=0):
            return np.asarray(x).mean(axis=(1, 2, 3))[:, None]
    x = np.stack([np.full((2, 2, 3), 0.2), np.full((2, 2, 3), 0.7)])
    np.testing.assert_allclose(judges.p_target(Judge(), x, "B"), [0.2, 0.7])
    np.testing.assert_allclose(judges.p_target(Judge(), x, "A"), [0.8, 0.3])
    rates = judges.judge_rates(Judge(), x, "A", {"usable": True})
    assert rates == {"judged_target": 0.5, "mean_p_target": pytest.approx(0.55)}
    with pytest.raises(ValueError):
        judges.p_target(Judge(), x, "C")
    compares_domain = offenders(python_files("utils/evaluation"), lambda node: isinstance(node, ast.Compare) and any(
        isinstance(c, ast.Constant) and c.value in DOMAINS for c in [node.left, *node.comparators]) and "== 'A'/'B'")
    assert compares_domain == []   # which way round P(B) is: judge.p_target only


# ----------------------------------------------------------------- c: one reader of image files
@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    from utils.datasets.synthetic import generate_dataset
    root = tmp_path_factory.mktemp("data")
    generate_dataset("synthetic_apple2orange", root, size=32, n_train=3, n_test=2)
    return root, "synthetic_apple2orange"


@pytest.fixture
def reads(monkeypatch):
    """The files decoded through utils.images' one opener, in order."""
    seen, real = [], images._open

    def spy(path, max_pixels, decode):
        if decode:
            seen.append(Path(path))
        return real(path, max_pixels, decode)
    monkeypatch.setattr(images, "_open", spy)
    return seen


def folders_read(seen):
    return {path.parent.name for path in seen}


def test_the_data_loader_reads_through_utils_images(synthetic, reads):
    from utils.datasets.loader import DataLoader
    root, name = synthetic
    loader = DataLoader(name, 32, root, prefetch=1)
    loader.make_batch(0, 0, 1, loader.epoch_order(0))
    assert folders_read(reads) == {"trainA", "trainB"}
    test_file = loader.test_paths("A")[0]
    assert loader.load_img(test_file).shape == (1, 32, 32, 3) and reads[-1] == test_file


def test_the_evaluation_reads_through_utils_images(synthetic, reads):
    from utils.evaluation import paired
    root, name = synthetic
    paired.load_test_set(name, (32, 32), root)
    assert folders_read(reads) == {"testA", "testB", "testMask"}
    reads.clear()
    paired.load_train_images(name, (32, 32), root)
    assert folders_read(reads) == {"trainA", "trainB"}
    reads.clear()
    images.load_images(root / name / "testB", 32)   # the unpaired evaluation and the judge
    assert folders_read(reads) == {"testB"}


def test_translate_the_page_the_gif_the_contact_sheet_and_the_checkerboard_read_through_utils_images(
        synthetic, reads, monkeypatch, tmp_path):
    from utils.datasets.synthetic import contact_sheet
    from utils.evaluation.checkerboard import folder_scores
    from utils.inference import serve, translation
    from utils.plots import save_grid_animation
    root, name = synthetic
    test_A = root / name / "testA"
    monkeypatch.setattr(translation, "load_generators", lambda source: source)
    monkeypatch.setattr(translation, "translate_image", lambda model, image, *args, **kwargs: image)
    translation.translate_folder(object(), "AtoB", test_A, tmp_path / "out", progress=False)
    assert folders_read(reads) == {"testA"}
    reads.clear()
    upload = images.list_images(root / name / "testB")[0]
    page = SimpleNamespace(max_bytes=2**20, max_bytes_text="1 MiB")
    assert serve.Translator.read_upload(page, str(upload))[0].shape == (32, 32, 3) and reads == [upload]
    reads.clear()
    grids = images.list_images(test_A)
    save_grid_animation(grids, tmp_path / "progress.gif")
    assert reads == grids
    reads.clear()
    contact_sheet(name, root, tmp_path / "sheet.png", n=2)
    assert folders_read(reads) == {"testA", "testB", "testMask"}
    reads.clear()
    folder_scores(test_A)
    assert reads == grids


def test_no_image_file_is_opened_outside_utils_images():
    """Image.open, imageio's imread and plt.imread only in utils/images.py. utils/training/logs.py opens the PNG
    bytes it logs to TensorBoard for their size only (the grid it wrote itself)."""
    allowed = {ROOT / "utils" / "images.py", ROOT / "utils" / "training" / "logs.py"}

    def opener(node):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("open", "imread"):
            owner = node.func.value
            if isinstance(owner, ast.Name) and owner.id in ("Image", "PIL", "iio", "imageio", "plt"):
                return f"{owner.id}.{node.func.attr}(...) (utils.images.read_rgb)"
        return None
    assert offenders([p for p in project_files() if p not in allowed], opener) == []


def test_read_rgb_resizes_as_resize_rgb_and_the_paired_set_keeps_its_values(synthetic):
    root, name = synthetic
    path = images.list_images(root / name / "testA")[0]
    raw = images.read_rgb(path)
    for resample in (Image.BICUBIC, Image.NEAREST):
        np.testing.assert_array_equal(images.read_rgb(path, size=(20, 24), resample=resample),
                                      images.resize_rgb(raw, (20, 24), resample))
    from utils.evaluation import paired
    own = paired.load_test_set(name, (32, 32), root)   # the dataset's own size: the file's pixels, nothing resampled
    assert own["A"].dtype == np.float64 and np.array_equal(own["A"][0], raw / 255.0)
    mask = images.read_rgb(root / name / "testMask" / path.name)
    assert np.array_equal(own["mask"][0], mask.mean(axis=-1) / 255.0 > 0.5)
    small = paired.load_test_set(name, (16, 16), root)   # another size: bicubic pictures, nearest masks
    np.testing.assert_array_equal(small["A"][0], images.resize_rgb(raw, (16, 16)) / 255.0)
    assert set(np.unique(images.resize_rgb(mask, (16, 16), Image.NEAREST))) <= {0, 255}
    loaded = images.load_images(root / name / "testA", 16)
    assert loaded.dtype == np.float32 and np.array_equal(loaded[0], (images.resize_rgb(raw, (16, 16)) / 255.0).astype(
        np.float32))


# ----------------------------------------------------------------- d: the run folder's layout
def test_run_folder_of_every_kind_of_model_path(tmp_path):
    run = tmp_path / "0001_x"
    ckpt = run / layout.WEIGHTS / "ckpt-00000010"
    ckpt.mkdir(parents=True)
    (ckpt / layout.CHECKPOINT_STATE).write_text("{}")
    (run / layout.CONFIG).write_text("{}")
    loose = tmp_path / "elsewhere" / "ckpt-00000020"
    loose.mkdir(parents=True)
    (loose / layout.CHECKPOINT_STATE).write_text("{}")
    model = tmp_path / "weights"   # a model folder that happens to be called weights
    model.mkdir()
    (model / layout.CONFIG).write_text("{}")
    assert [layout.run_folder_of(p) for p in (run, run / layout.WEIGHTS, ckpt, loose, model)] == [
        run, run, run, loose.parent, model]
    assert layout.is_checkpoint(ckpt) and not layout.is_checkpoint(run)
    assert layout.evaluation_file(run, layout.EVALUATION_JSON) == run / "evaluation.json"
    assert layout.evaluation_file(run, layout.FAILURES_FIGURE, 256) == run / "images" / "evaluation_failures_256px.png"


def test_translations_and_exports_of_a_checkpoint_or_weights_go_beside_the_run(tiny_run, tmp_path, monkeypatch):
    from utils.inference import translation
    from utils.inference.export import default_path
    for source in (tiny_run / layout.WEIGHTS, tiny_run / layout.WEIGHTS / "ckpt-00000000"):
        assert default_path(source, "BtoA", "tflite") == tiny_run / layout.EXPORT / "g_BA.tflite"
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(inputs / "a.png")
    monkeypatch.setattr(translation, "translate_image", lambda model, image, *args, **kwargs: image)
    written, _ = translation.translate_folder(tiny_run / layout.WEIGHTS, "AtoB", inputs, progress=False)
    assert written == [tiny_run / layout.TRANSLATED / "AtoB_inputs" / "a.png"]


LAYOUT_NAMES = {layout.CONFIG, layout.CHECKPOINT_STATE, layout.WEIGHTS, layout.TRANSLATED, layout.EXPORT,
                layout.INDEX, layout.IMAGES, layout.LOGS, layout.LOSSES_CSV, layout.EVALUATION_JSON}


def test_the_run_folders_names_come_from_run_folder_py():
    """No path joined with a run-folder name written out (`folder / "config.json"`) where the issue found them."""
    def spelled(node):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and isinstance(node.right, ast.Constant) \
                and node.right.value in LAYOUT_NAMES:
            return f"/ {node.right.value!r} (utils/training/run_folder.py)"
        return None
    files = [ROOT / p for p in ("utils/inference/translation.py", "utils/inference/export.py", "export.py",
                                "utils/inference/trained_model.py", "utils/inference/serve.py", "evaluate.py",
                                "utils/evaluation/ablation.py", "utils/evaluation/unpaired.py",
                                "utils/evaluation/checkerboard.py", "translate.py", "serve.py")]
    assert offenders(files, spelled) == []


# ----------------------------------------------------------------- e: one way to load a trained model
@pytest.fixture(scope="module")
def scored_run(tmp_path_factory):
    from models import CycleGAN
    from utils.training import checkpoint
    run = tmp_path_factory.mktemp("runs") / "0001_blobs"
    gan = CycleGAN(input_dim=(32, 32, 3), gen_n_filters=4, disc_n_filters=4, seed=0)
    checkpoint.save(gan, run / layout.WEIGHTS)
    (run / layout.CONFIG).write_text(json.dumps({"dataset": "blobs", "model": gan.config.to_dict(),
                                                 "training": {"data_root": "somewhere"}}))
    return run


def test_evaluation_loads_runs_and_model_folders_as_translate_does(scored_run, tmp_path):
    from utils.evaluation.unpaired import load_scored_model
    from utils.inference.trained_model import TrainedGenerators, load_generators, save_model_folder
    model, name, dataset, data_root = load_scored_model(scored_run)
    assert isinstance(model, TrainedGenerators) and (name, dataset, data_root) == ("ckpt-00000000", "blobs", "somewhere")
    assert model.step == 0 and model.checkpoint == name and model.dataset == "blobs"
    from_checkpoint = load_generators(scored_run / layout.WEIGHTS / name)
    assert from_checkpoint.dataset == "blobs" and from_checkpoint.step == 0   # the run's config.json, above weights/
    folder = save_model_folder(scored_run / layout.WEIGHTS / name, tmp_path / "model", made_by="a test")
    model, name, dataset, data_root = load_scored_model(folder)
    assert (name, dataset, data_root, model.step) == (None, "blobs", "data", None)


def test_no_second_way_to_load_a_trained_model():
    """Outside utils/training/ (which resumes whole CycleGANs) a trained model is loaded only by
    utils/inference/trained_model.load_generators: no checkpoint.restore or trainer.load_run, and no generator
    built or given weights by hand."""
    home = ROOT / "utils" / "inference" / "trained_model.py"

    def loader(node):
        name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
        if name in ("restore", "load_run", "build_any_size_generator", "load_weights"):
            return f"{name} (utils.inference.trained_model.load_generators)"
        return None
    files = [p for p in python_files("utils/inference", "utils/evaluation", "translate.py", "export.py", "serve.py",
                                     "evaluate.py", "ablate.py") if p != home]
    found = [line for line in offenders(files, loader) if "utils/evaluation/judge.py" not in line]   # its own network
    assert found == []


# ----------------------------------------------------------------- f: the progress policy, mixed precision; g: CPU flags
class Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


def test_the_progress_policy(monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.setattr(sys, "stderr", Stream(True))
    assert cli.wants_bar("auto") is True
    monkeypatch.setattr(sys, "stderr", Stream(False))          # a log file
    assert cli.wants_bar("auto") is False
    monkeypatch.setitem(sys.modules, "ipykernel", object())     # a Jupyter kernel: its stderr is no tty
    assert cli.wants_bar("auto") is True
    assert cli.wants_bar(False) is False and cli.wants_bar(True) is True


@pytest.mark.parametrize("tty", [True, False])
def test_translate_shows_its_bar_as_training_does(monkeypatch, tmp_path, tty):
    from utils.inference import translation
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(inputs / "a.png")
    monkeypatch.setattr(translation, "load_generators", lambda source: source)
    monkeypatch.setattr(translation, "translate_image", lambda model, image, *args, **kwargs: image)
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    stderr = Stream(tty)
    monkeypatch.setattr(sys, "stderr", stderr)
    translation.translate_folder(object(), "AtoB", inputs, tmp_path / "out", progress="auto")
    assert ("Translating AtoB" in stderr.getvalue()) is tty is cli.wants_bar("auto")


def test_one_progress_policy():
    """isatty and ipykernel are asked in utils/cli.py (and by utils/colab.py, which detects Colab); every tqdm bar
    of the issue's places is switched by utils.cli.wants_bar."""
    def policy(node):
        if isinstance(node, ast.Attribute) and node.attr == "isatty" or isinstance(node, ast.Constant) and \
                node.value == "ipykernel":
            return "a progress policy of its own (utils.cli.wants_bar)"
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "tqdm":
            disable = [k for k in node.keywords if k.arg == "disable"]
            if not disable or "wants_bar" not in ast.unparse(disable[0].value):
                return "a tqdm bar not switched by utils.cli.wants_bar"
        return None
    files = [p for p in python_files(*SCOPE) if p != ROOT / "utils" / "cli.py"]
    assert offenders(files, policy) == []


def test_the_mixed_precision_rule_and_the_cpu_flags_are_written_once():
    """Which 16-bit type a GPU gets (compute capability 8.0) only in utils/runtime/devices.py; /proc/cpuinfo is
    named (and read) only in utils/runtime/onednn.py: devices.py asks its cpu_flags."""
    def rule(node):
        if constants(node) == (8, 0):
            return "the compute capability 8.0 (utils.runtime.devices.gpu_compute_dtype)"
        if isinstance(node, ast.Constant) and node.value == "/proc/cpuinfo":
            return "/proc/cpuinfo (utils.runtime.onednn.cpu_flags)"
        return None
    found = offenders(project_files(), rule)
    assert sorted(line.split(":")[0] for line in found) == ["utils/runtime/devices.py", "utils/runtime/onednn.py"]
