"""The notebooks' Colab setup cell, executed in a Jupyter kernel with the Colab switch forced: it clones a
local copy of this working tree, skips the pip install (nothing is downloaded in tests), downloads the
dataset from a server on 127.0.0.1, and leaves the notebook in the clone's notebooks/ folder, where the
notebook's own next cells find the code and the data. Without the switch the cell does nothing."""

import functools
import http.server
import io
import os
import shutil
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
    setup, parameters = source.cells[1], next(c for c in source.cells if "parameters" in c.metadata.get("tags", []))
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


def test_without_colab_the_cell_and_setup_do_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("CYCLEGAN_FORCE_COLAB", raising=False)
    assert colab.setup(tmp_path / "x", dataset="apple2orange") is None and not (tmp_path / "x").exists()
    env = {k: v for k, v in os.environ.items() if k != "CYCLEGAN_FORCE_COLAB"}
    env["CYCLEGAN_COLAB_ROOT"] = str(tmp_path / "clone")
    for path in NOTEBOOKS:
        cell = nbformat.read(path, as_version=4).cells[1].source
        run = subprocess.run([sys.executable, "-c", cell], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert run.returncode == 0 and run.stdout == "" and run.stderr == "", run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_every_notebook_opens_with_the_badge_and_the_setup_cell_of_utils_colab():
    """The repository address is in one place (utils/colab.py); `python -m utils.colab` writes these cells."""
    for path in NOTEBOOKS:
        cells = nbformat.read(path, as_version=4).cells
        assert cells[0].cell_type == "markdown" and cells[0].source == colab.badge_markdown(path.stem)
        assert f"github/{colab.GITHUB_REPO}/blob/main/notebooks/{path.name}" in cells[0].source
        assert cells[1].cell_type == "code" and cells[1].source == colab.setup_cell(path.stem)
        assert colab.REPO_URL in cells[1].source
        assert path.stem in colab.NOTEBOOK_DATASETS


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
