"""The notebooks' Colab setup cell, run with the Colab switch forced (in a Jupyter kernel, or as a script):
it clones a local copy of this working tree, or unpacks the zip that `git archive` made of a copy (the
route while the project has no public address), skips the pip install (nothing is downloaded in tests),
downloads the dataset from a server on 127.0.0.1, and leaves the notebook in the project's notebooks/
folder, where the notebook's own next cells find the code and the data. Without the project or its zip
it stops with one line; an unsafe zip is refused. Without the switch the cell does nothing."""

import functools
import http.server
import io
import os
import shlex
import shutil
import stat
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from PIL import Image

from utils import colab

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _git(*args, cwd):
    subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", *args], cwd=cwd,
                   check=True, capture_output=True)


@pytest.fixture
def local_remote(tmp_path):
    """A git repository holding this working tree's files (committed or not, minus ignored ones)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout of the project")
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    source = tmp_path / "remote"
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    _git("init", "-q", cwd=source)
    _git("add", "-A", cwd=source)
    _git("commit", "-q", "-m", "snapshot", cwd=source)
    return source.as_uri()   # file://...: a real clone, as from GitHub


# What the setup cell imports before setup() runs, and where setup() then moves (notebooks/).
SMALL_PROJECT = ("utils/__init__.py", "utils/colab.py", "models/__init__.py", "utils/runtime/onednn.py", "requirements.txt")


def _zip_of(repository, content):
    """`git archive` of `repository` as docs/install.md says, moved to content/cyclegan-keras.zip."""
    content.mkdir(parents=True, exist_ok=True)
    _git(*shlex.split(colab.ZIP_COMMAND)[1:], cwd=repository)
    return Path(shutil.move(repository / "cyclegan-keras.zip", content / "cyclegan-keras.zip"))


@pytest.fixture
def project_zip(tmp_path):
    """content/cyclegan-keras.zip: `git archive` of a small committed copy of this project."""
    if shutil.which("git") is None:
        pytest.skip("needs git")
    source = tmp_path / "small"
    for name in SMALL_PROJECT:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    (source / "notebooks").mkdir()
    (source / "notebooks" / "README.md").write_text("the notebooks\n")
    _git("init", "-q", cwd=source)
    _git("add", "-A", cwd=source)
    _git("commit", "-q", "-m", "snapshot", cwd=source)
    return _zip_of(source, tmp_path / "content")


def _run_cell(notebook, tmp_path, extra=""):
    """The notebook's setup cell (then `extra`) as a script, acting as Colab with /content = tmp_path/content."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CYCLEGAN_")}
    env.update(CYCLEGAN_FORCE_COLAB="1", CYCLEGAN_COLAB_ROOT=str(tmp_path / "content" / "cyclegan-keras"),
               CYCLEGAN_COLAB_SKIP_INSTALL="1")
    cell = nbformat.read(ROOT / "notebooks" / f"{notebook}.ipynb", as_version=4).cells[2].source
    (tmp_path / "content").mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-c", cell + "\n" + extra], cwd=tmp_path / "content", env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def archive_server(tmp_path):
    """base_url of a server on 127.0.0.1 holding apple2orange.zip (2 tiny images per split)."""
    served = tmp_path / "served"
    served.mkdir()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for split in ("trainA", "trainB", "testA", "testB"):
            for index in range(2):
                image = io.BytesIO()
                Image.new("RGB", (8, 8), (40 * index, 200, 30)).save(image, format="PNG")
                archive.writestr(f"apple2orange/{split}/{index}.png", image.getvalue())
    (served / "apple2orange.zip").write_bytes(buffer.getvalue())

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.long
def test_setup_cell_forced_clones_downloads_and_leaves_the_notebook_ready(tmp_path, local_remote, archive_server,
                                                                          monkeypatch):
    clone = tmp_path / "content" / "cyclegan-keras"
    for name, value in {"CYCLEGAN_FORCE_COLAB": "1", "CYCLEGAN_COLAB_ROOT": str(clone),
                        "CYCLEGAN_REPO_URL": local_remote, "CYCLEGAN_COLAB_SKIP_INSTALL": "1",
                        "CYCLEGAN_DATASET_URL": archive_server}.items():
        monkeypatch.setenv(name, value)   # the kernel inherits them
    source = nbformat.read(ROOT / "notebooks" / "05_01_cyclegan_apple2orange.ipynb", as_version=4)
    setup = next(c for c in source.cells if "colab-setup" in c.metadata.get("tags", []))
    parameters = next(c for c in source.cells if "parameters" in c.metadata.get("tags", []))
    assert "colab-setup" in setup.metadata["tags"]
    check = nbformat.v4.new_code_cell("import os\nprint('cwd', os.getcwd())\nfrom utils.training.trainer import pick_dataset\n"
                                      "print('dataset', pick_dataset(DATASET, DATA_ROOT))")
    # the setup cell twice (a student reruns it: nothing is cloned or downloaded again), then the notebook's
    # own settings cell and a check that its data path finds the downloaded dataset
    rerun = setup.copy()
    rerun.id = "colab-setup-rerun"
    notebook = nbformat.v4.new_notebook(cells=[source.cells[0], setup, rerun, parameters, check])
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()   # Colab starts in /content

    text = "".join(o.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs)
    assert not [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert (clone / ".git").is_dir() and (clone / "utils" / "colab.py").is_file()
    assert sorted(p.name for p in (clone / "data" / "apple2orange" / "trainA").iterdir()) == ["0.png", "1.png"]
    assert f"cwd {clone / 'notebooks'}" in text
    assert "dataset apple2orange" in text and "Using the real dataset apple2orange" in text
    assert "No GPU in this runtime" in text   # this machine has none: the cell says how to get one
    assert text.count("Ready: the project is in") == 2


@pytest.mark.long
def test_in_a_kernel_the_cell_stops_without_the_zip_then_unpacks_the_uploaded_one(tmp_path, local_remote,
                                                                                  archive_server, monkeypatch):
    """The zip route as a student takes it: the cell run before the upload stops with one line (no traceback),
    the zip of the whole project made as docs/install.md says, then the cell (twice) and the notebook's cells."""
    content = tmp_path / "content"
    content.mkdir()
    project = content / "cyclegan-keras"
    monkeypatch.delenv("CYCLEGAN_REPO_URL", raising=False)
    for name, value in {"CYCLEGAN_FORCE_COLAB": "1", "CYCLEGAN_COLAB_ROOT": str(project),
                        "CYCLEGAN_COLAB_SKIP_INSTALL": "1", "CYCLEGAN_DATASET_URL": archive_server}.items():
        monkeypatch.setenv(name, value)   # the kernel inherits them
    source = nbformat.read(ROOT / "notebooks" / "05_01_cyclegan_apple2orange.ipynb", as_version=4)
    setup = next(c for c in source.cells if "colab-setup" in c.metadata.get("tags", []))
    parameters = next(c for c in source.cells if "parameters" in c.metadata.get("tags", []))
    remote = tmp_path / "remote"   # local_remote's repository: `git archive` in it, as in a student's clone
    upload = nbformat.v4.new_code_cell(
        f"import shlex, shutil, subprocess\nsubprocess.run(shlex.split({colab.ZIP_COMMAND!r}), cwd={str(remote)!r}, "
        f"check=True)\nshutil.move({str(remote / 'cyclegan-keras.zip')!r}, {str(content)!r})")
    check = nbformat.v4.new_code_cell("import os, utils\nprint('cwd', os.getcwd())\nprint('utils', utils.__file__)\n"
                                      "from utils.training.trainer import pick_dataset\n"
                                      "print('dataset', pick_dataset(DATASET, DATA_ROOT))")
    cells = [source.cells[0], setup, upload, setup.copy(), setup.copy(), parameters, check]
    for index, cell in enumerate(cells):
        cell.id = f"cell-{index}"
    notebook = nbformat.v4.new_notebook(cells=cells)
    NotebookClient(notebook, timeout=300, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(content)}}).execute()   # Colab starts in /content

    errors = [(i, o) for i, c in enumerate(notebook.cells) if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert [(i, o.ename) for i, o in errors] == [(1, "SystemExit")], errors
    stopped = errors[0][1]
    assert stopped.evalue.startswith(f"error: no project: upload {project}.zip first")
    assert colab.ZIP_COMMAND in stopped.evalue
    assert not any("Traceback" in line or "File " in line for line in stopped.traceback), stopped.traceback
    text = "".join(o.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs)
    assert text.count(f"Unpacked {project}.zip into {project}.") == 1 and text.count("Ready: the project is in") == 2
    assert f"cwd {project / 'notebooks'}" in text and f"utils {project / 'utils' / '__init__.py'}" in text
    assert "dataset apple2orange" in text and "Using the real dataset apple2orange" in text
    assert (project / "utils" / "colab.py").read_bytes() == (ROOT / "utils" / "colab.py").read_bytes()
    assert sorted(p.name for p in (project / "data" / "apple2orange" / "trainA").iterdir()) == ["0.png", "1.png"]


def test_without_colab_the_cell_and_setup_do_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("CYCLEGAN_FORCE_COLAB", raising=False)
    assert colab.setup(tmp_path / "x", dataset="apple2orange") is None and not (tmp_path / "x").exists()
    env = {k: v for k, v in os.environ.items() if k != "CYCLEGAN_FORCE_COLAB"}
    env["CYCLEGAN_COLAB_ROOT"] = str(tmp_path / "clone")
    for path in NOTEBOOKS:
        cell = nbformat.read(path, as_version=4).cells[2].source
        run = subprocess.run([sys.executable, "-c", cell], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert run.returncode == 0 and run.stdout == "" and run.stderr == "", run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_every_notebook_opens_with_the_colab_cells_of_utils_colab_and_no_badge_to_nowhere():
    """The repository address is in one place (utils/colab.py); `python -m utils.colab` writes these cells.
    No public address yet: a badge would open a placeholder repository, so the cell says how to upload instead."""
    assert colab.GITHUB_REPO is None and colab.repo_url() == ""
    assert 'id="colab"' in (ROOT / "docs" / "install.md").read_text()   # the cell's link to docs/install.md#colab
    for path in NOTEBOOKS:
        cells = nbformat.read(path, as_version=4).cells
        assert cells[0].cell_type == "markdown" and cells[0].source.startswith("# ")   # the title first (issue 34)
        cells = cells[1:]
        assert cells[0].cell_type == "markdown" and cells[0].source == colab.first_cell(path.stem)
        assert "colab-badge.svg" not in path.read_text() and "colab.research.google.com" not in path.read_text()
        assert colab.ZIP_COMMAND in cells[0].source and f"`notebooks/{path.name}`" in cells[0].source
        assert "(../docs/install.md#colab)" in cells[0].source
        assert cells[1].cell_type == "code" and cells[1].source == colab.setup_cell(path.stem)
        assert "github.com" not in cells[1].source and 'CYCLEGAN_REPO_URL", "")' in cells[1].source
        assert path.stem in colab.NOTEBOOK_DATASETS


def test_with_a_public_repository_the_badge_and_the_clone_come_back_and_no_other_cell_changes(tmp_path,
                                                                                               monkeypatch):
    original = NOTEBOOKS[0]
    copy = tmp_path / original.name
    shutil.copy2(original, copy)
    monkeypatch.setattr(colab, "GITHUB_REPO", "someone/cyclegan-keras")
    colab.write_notebook_cells(tmp_path)
    cells, before = nbformat.read(copy, as_version=4).cells, nbformat.read(original, as_version=4).cells
    assert cells[0] == before[0] and cells[0].source.startswith("# ")   # the title stays on top
    cells, before = cells[1:], before[1:]
    assert cells[0].source == (
        "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research."
        f"google.com/github/someone/cyclegan-keras/blob/main/notebooks/{original.name})")
    assert 'os.environ.get("CYCLEGAN_REPO_URL", "https://github.com/someone/cyclegan-keras.git")' in cells[1].source
    assert cells[2:] == before[2:]
    monkeypatch.setattr(colab, "GITHUB_REPO", None)
    colab.write_notebook_cells(tmp_path)   # and back: byte for byte the committed notebook
    assert copy.read_bytes() == original.read_bytes()


def test_the_cell_unpacks_the_zip_of_git_archive_and_everything_then_imports_from_the_folder(tmp_path, project_zip):
    check = ("import utils, models, utils.colab\n"
             "print('files', utils.__file__, models.__file__, utils.colab.__file__)\n"
             "print('cwd', os.getcwd())\nprint('zip on path', [p for p in sys.path if 'cyclegan-keras.zip' in p])")
    project = tmp_path / "content" / "cyclegan-keras"
    first = _run_cell("05_03_cyclegan_ablation", tmp_path, check)
    again = _run_cell("05_03_cyclegan_ablation", tmp_path, check)   # a rerun: the folder is there now
    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    assert f"Unpacked {project_zip} into {project}." in first.stdout and "Unpacked" not in again.stdout
    for run in (first, again):
        assert f"Ready: the project is in {project}" in run.stdout
        assert (f"files {project / 'utils' / '__init__.py'} {project / 'models' / '__init__.py'} "
                f"{project / 'utils' / 'colab.py'}") in run.stdout   # not from inside the zip
        assert f"cwd {project / 'notebooks'}" in run.stdout and "zip on path []" in run.stdout
    assert (project / "notebooks" / "README.md").read_text() == "the notebooks\n"
    assert sorted(p.name for p in project.parent.iterdir()) == ["cyclegan-keras", "cyclegan-keras.zip"]


@pytest.mark.parametrize("upload", [None, b"<!doctype html><html>Sign in</html>"], ids=["no zip", "not a zip"])
def test_without_the_project_or_its_zip_the_cell_stops_with_one_line_saying_what_to_upload(tmp_path, upload):
    content = tmp_path / "content"
    content.mkdir()
    if upload is not None:
        (content / "cyclegan-keras.zip").write_bytes(upload)
    run = _run_cell("05_01_cyclegan_apple2orange", tmp_path)
    assert run.returncode == 1 and run.stdout == "" and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert run.stderr.startswith(f"error: no project: upload {content / 'cyclegan-keras'}.zip first")
    assert colab.ZIP_COMMAND in run.stderr and "Files panel" in run.stderr
    assert sorted(p.name for p in content.iterdir()) == ([] if upload is None else ["cyclegan-keras.zip"])


def test_the_cell_refuses_a_zip_with_a_member_that_climbs_out_and_writes_nothing(tmp_path, project_zip):
    with zipfile.ZipFile(project_zip, "a") as archive:
        archive.writestr("../evil", "written outside /content")
    run = _run_cell("05_03_cyclegan_ablation", tmp_path)
    assert run.returncode == 1 and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert run.stderr.startswith(f"error: not unpacking {project_zip}: the member '../evil' climbs out")
    assert colab.ZIP_COMMAND in run.stderr
    assert not (tmp_path / "evil").exists() and not (tmp_path / "content" / "evil").exists()
    assert sorted(p.name for p in project_zip.parent.iterdir()) == ["cyclegan-keras.zip"]


def _link(name, target):
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target


@pytest.mark.parametrize("member, reason", [
    (("../evil", "x"), "'../evil' climbs out of its folder"),
    (("cyclegan-keras/../../evil", "x"), "'cyclegan-keras/../../evil' climbs out of its folder"),
    (("/evil", "x"), "'/evil' has an absolute path"),
    (_link("cyclegan-keras/notebooks", "/etc"), "'cyclegan-keras/notebooks' is a symbolic link"),
    (("elsewhere/evil", "x"), "'elsewhere/evil' is not inside cyclegan-keras/"),
], ids=["dot-dot", "dot-dot inside", "absolute", "link", "other folder"])
def test_unpack_refuses_an_unsafe_member_before_writing_anything(tmp_path, member, reason):
    content = tmp_path / "content"
    content.mkdir()
    with zipfile.ZipFile(content / "cyclegan-keras.zip", "w") as archive:
        archive.writestr("cyclegan-keras/utils/colab.py", "")
        archive.writestr(*member)
    with pytest.raises(SystemExit) as refused:
        colab.unpack(content / "cyclegan-keras")
    assert str(refused.value).startswith(f"error: not unpacking {content / 'cyclegan-keras.zip'}: the member {reason}")
    assert colab.ZIP_COMMAND in str(refused.value)
    assert sorted(p.name for p in content.iterdir()) == ["cyclegan-keras.zip"] and not (tmp_path / "evil").exists()


@pytest.mark.parametrize("limit, value, reason", [
    ("UNPACK_MAX_BYTES", 100, "it declares 1,000 bytes unpacked, more than 100"),
    ("UNPACK_MAX_MEMBERS", 1, "it holds 2 members, more than 1")])
def test_unpack_refuses_a_zip_bigger_than_a_project(tmp_path, monkeypatch, limit, value, reason):
    monkeypatch.setattr(colab, limit, value)
    content = tmp_path / "content"
    content.mkdir()
    with zipfile.ZipFile(content / "cyclegan-keras.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("cyclegan-keras/a", b"0" * 1000)
        archive.writestr("cyclegan-keras/b", b"")
    with pytest.raises(SystemExit, match=f"error: not unpacking .*: {reason}"):
        colab.unpack(content / "cyclegan-keras")
    assert sorted(p.name for p in content.iterdir()) == ["cyclegan-keras.zip"]


def test_colab_requirements_swap_tensorflow_and_keep_colab_s_own_notebook_tools():
    text = (ROOT / "requirements.txt").read_text()
    gpu, cpu = colab.colab_requirements(text, gpu=True), colab.colab_requirements(text, gpu=False)
    assert [l for l in gpu if l.startswith("tensorflow")] == ["tensorflow[and-cuda]==2.21.0"]
    assert [l for l in cpu if l.startswith("tensorflow")] == ["tensorflow==2.21.0"]
    assert "keras==3.15.1" in gpu and "tensorboard==2.21.0" in gpu
    assert not [l for l in gpu if l.split("==")[0] in colab.NOT_ON_COLAB]


@pytest.mark.parametrize("printed, capability, fast", [("Tesla T4, 7.5", (7, 5), False), ("NVIDIA A100, 8.0", (8, 0), True),
                                                         ("NVIDIA H200, 9.0", (9, 0), True),
                                                         ("NVIDIA B200, 10.0", (10, 0), True),
                                                         ("NVIDIA RTX PRO 6000, 12.0", (12, 0), True)])
def test_the_gpu_probe_compares_compute_capabilities_as_numbers(tmp_path, monkeypatch, printed, capability, fast):
    """'10.0' and '12.0' sort before '8' as strings: they were announced as float16 GPUs."""
    smi = tmp_path / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\necho '{printed}'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    name, found = colab.nvidia_gpu()
    assert name == printed.split(",")[0] and found == capability
    assert colab.mixed_precision_on(found) == ("bfloat16" if fast else "float16 with loss scaling")
    assert colab.parse_capability("not a number") is None


def test_the_gpu_precision_line_needs_no_keras_and_follows_the_models_rule():
    """utils/colab.py says what mixed precision a runtime's GPU gets before the pinned Keras is installed: it
    reads utils/runtime/devices.py's one rule (gpu_compute_dtype) without importing Keras."""
    import subprocess
    code = ("import sys; sys.modules['keras'] = None; sys.modules['tensorflow'] = None\n"
            "from utils.colab import mixed_precision_on\n"
            "print(mixed_precision_on((7, 5)), '|', mixed_precision_on((8, 0)), '|', mixed_precision_on(None))")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "float16 with loss scaling | bfloat16 | float16 with loss scaling"
