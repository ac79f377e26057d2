"""The notebooks on Google Colab: their first cell clones the project, then calls `setup()` here.

Each notebook opens with an "Open in Colab" badge and a setup cell, both written by this module
(`python -m utils.colab`, which rewrites them in notebooks/*.ipynb), so the repository address lives
in one place: GITHUB_REPO below. In Colab the cell clones the repository into /content, and
`setup()` installs the requirements (TensorFlow with its CUDA libraries on a GPU runtime), says which
GPU the runtime has, moves into the clone's notebooks/ folder (the notebooks' paths, `..` and
`../data`, are those of a local clone) and downloads the notebook's dataset. Anywhere else the cell
and `setup()` do nothing.

Switches, for the tests (which act as Colab against a local copy and a server on 127.0.0.1):
CYCLEGAN_FORCE_COLAB=1 acts as in Colab; CYCLEGAN_COLAB_ROOT: where to clone; CYCLEGAN_REPO_URL:
what to clone; CYCLEGAN_COLAB_SKIP_INSTALL=1: no pip install; CYCLEGAN_DATASET_URL: the archive server.
"""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

# Set this when the project is published (owner/name on GitHub): the clone address and the badges use it.
# There is no public address yet, so this is a placeholder; `python -m utils.colab` rewrites the notebooks.
GITHUB_REPO = "YOUR-GITHUB-USER/cyclegan-keras"
REPO_URL = f"https://github.com/{GITHUB_REPO}.git"
COLAB_ROOT = "/content/cyclegan-keras"   # Colab's working folder is /content
NOTEBOOK_DATASETS = {"05_01_cyclegan_apple2orange": "apple2orange", "05_02_cyclegan_monet": "monet2photo",
                     "05_03_cyclegan_ablation": None}   # 05_03 uses the built-in synthetic data
# Colab brings its own notebook server and kernel: replacing them breaks the session. The tests are not needed.
NOT_ON_COLAB = ("jupyter", "ipykernel", "nbclient", "nbformat", "pytest", "playwright")
TENSORFLOW = {"gpu": "tensorflow[and-cuda]==2.21.0", "cpu": "tensorflow==2.21.0"}


def in_colab():
    return "google.colab" in sys.modules or os.environ.get("CYCLEGAN_FORCE_COLAB") == "1"


def nvidia_gpu():
    """(name, compute capability as (major, minor)) of the runtime's first NVIDIA GPU, from nvidia-smi; None
    without one. Not models.devices.gpu(): this runs before the pinned TensorFlow is installed, to choose it."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,compute_cap", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = out.stdout.strip().splitlines() if out.returncode == 0 else []
    if not lines:
        return None
    name, _, capability = lines[0].partition(",")
    return name.strip(), parse_capability(capability)


def mixed_precision_on(capability):
    """What mixed_precision=True picks on a GPU of this compute capability (models/devices.py's rule)."""
    return "bfloat16" if capability and capability >= (8, 0) else "float16 with loss scaling"


def parse_capability(text):
    """'8.6' -> (8, 6), '12.0' -> (12, 0) (compared as numbers: as strings '12.0' < '8'); None if unreadable."""
    try:
        return tuple(int(part) for part in text.strip().split("."))[:2] or None
    except ValueError:
        return None


def colab_requirements(text, gpu):
    """requirements.txt's lines for Colab: one TensorFlow line (`TENSORFLOW`; Colab has the `tensorflow`
    package already, and tensorflow-cpu beside it would overwrite its files), without NOT_ON_COLAB."""
    lines = [TENSORFLOW["gpu" if gpu else "cpu"]]
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        name = re.split(r"[\s=<>!~;\[]", line, maxsplit=1)[0].lower()
        if line and name not in ("tensorflow", "tensorflow-cpu") and name not in NOT_ON_COLAB:
            lines.append(line)
    return lines


def install(root, gpu):
    """pip install the Colab requirements; say so if a package already imported was replaced."""
    imported = {name for name in ("numpy", "PIL", "matplotlib", "keras", "tensorflow") if name in sys.modules}
    text = colab_requirements((Path(root) / "requirements.txt").read_text(), gpu)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(text) + "\n")
    print("Installing the requirements (a few minutes the first time)...", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", f.name], check=True)
    if imported:
        print(f"{', '.join(sorted(imported))} was imported before the install: Runtime > Restart session, then run "
              "this cell again (the clone and the install are kept).")


def setup(root=COLAB_ROOT, dataset=None):
    """In Colab: install, report the GPU, cd into root/notebooks, download `dataset`. Elsewhere: nothing.

    Returns None outside Colab, else {'root': Path, 'gpu': (name, capability) or None}.
    """
    if not in_colab():
        return None
    root = Path(root).resolve()
    gpu = nvidia_gpu()
    if gpu:
        # Keras takes this GPU by itself; growth instead of TensorFlow's grab of all its memory at start.
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", "0")
        os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
        capability = ".".join(map(str, gpu[1])) if gpu[1] else "unknown"
        print(f"GPU runtime: {gpu[0]} (compute capability {capability}); --mixed-precision / mixed_precision=True "
              f"picks {mixed_precision_on(gpu[1])} on it")
    else:
        print("No GPU in this runtime: Runtime > Change runtime type > T4 GPU, then run this cell again "
              "(training on Colab's CPU is many times slower).")
    if os.environ.get("CYCLEGAN_COLAB_SKIP_INSTALL") != "1":
        install(root, gpu)
    os.chdir(root / "notebooks")   # as in a local clone: the repository is `..`, the data `../data`
    if dataset:
        from utils.datasets.download import DEFAULT_BASE_URL, download_dataset
        download_dataset(dataset, root / "data", os.environ.get("CYCLEGAN_DATASET_URL", DEFAULT_BASE_URL))
    print(f"Ready: the project is in {root}, this notebook runs in {root / 'notebooks'}.")
    return {"root": root, "gpu": gpu}


# ---------------------------------------------------------------- the notebooks' first two cells
def badge_markdown(notebook):
    url = f"https://colab.research.google.com/github/{GITHUB_REPO}/blob/main/notebooks/{notebook}.ipynb"
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"


def setup_cell(notebook):
    """The first code cell of `notebook` (its file name without .ipynb): clone, then `setup()`."""
    dataset = NOTEBOOK_DATASETS[notebook]
    return (
        "# Colab only (elsewhere this cell does nothing): get the project, its requirements, the GPU, the data.\n"
        "import os, subprocess, sys\n"
        'if "google.colab" in sys.modules or os.environ.get("CYCLEGAN_FORCE_COLAB") == "1":\n'
        f'    ROOT = os.environ.get("CYCLEGAN_COLAB_ROOT", "{COLAB_ROOT}")\n'
        "    if not os.path.isdir(ROOT):\n"
        f'        url = os.environ.get("CYCLEGAN_REPO_URL", "{REPO_URL}")\n'
        '        subprocess.run(["git", "clone", "-q", "--depth", "1", url, ROOT], check=True)\n'
        "    sys.path.insert(0, ROOT)\n"
        "    from utils import colab\n"
        f"    colab.setup(ROOT, dataset={dataset!r})")


def write_notebook_cells(folder=Path(__file__).resolve().parents[1] / "notebooks"):
    """Put (or update) the badge and the setup cell at the top of every notebook in `folder`."""
    import nbformat
    for path in sorted(Path(folder).glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        cells = [c for c in notebook.cells if not {"colab-badge", "colab-setup"} & set(c.metadata.get("tags", []))]
        badge = nbformat.v4.new_markdown_cell(badge_markdown(path.stem), metadata={"tags": ["colab-badge"]})
        setup_code = nbformat.v4.new_code_cell(setup_cell(path.stem), metadata={"tags": ["colab-setup"]})
        badge.id, setup_code.id = "colab-badge", "colab-setup"   # fixed ids: rewriting changes nothing
        notebook.cells = [badge, setup_code] + cells
        nbformat.write(notebook, path)
        print(f"{path.name}: badge and setup cell for {GITHUB_REPO}")


if __name__ == "__main__":
    write_notebook_cells()
