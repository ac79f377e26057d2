"""The notebooks on Google Colab: their first code cell gets the project, then calls `setup()` here.

Each notebook opens with a markdown cell and a setup cell, both written by this module (`python -m
utils.colab`, which rewrites them in notebooks/*.ipynb), so the repository address lives in one place:
GITHUB_REPO below. The project has no public address yet (GITHUB_REPO is None): the markdown cell then
says how to open the notebook in Colab from a clone (ZIP_COMMAND makes cyclegan-keras.zip, uploaded to
/content beside the notebook), and no "Open in Colab" badge is shown. Once GITHUB_REPO is set, the badge
comes back and the cell clones from GitHub.

In Colab the setup cell takes, in order: the folder /content/cyclegan-keras if it is there; a clone
(CYCLEGAN_REPO_URL, else the public repository if any); else /content/cyclegan-keras.zip, which
`setup()` unpacks (`unpack()`: every member checked first); else it stops with one line saying what to
upload. The cell imports this module from the zip itself (Python reads modules from a zip on sys.path),
so the checks live here and the cell stays short. `setup()` then installs the requirements (TensorFlow
with its CUDA libraries on a GPU runtime), says which GPU the runtime has, moves into the project's
notebooks/ folder (the notebooks' paths, `..` and `../data`, are those of a local clone) and downloads
the notebook's dataset. Anywhere else the cell and `setup()` do nothing.

Switches, for the tests (which act as Colab against a local copy and a server on 127.0.0.1):
CYCLEGAN_FORCE_COLAB=1 acts as in Colab; CYCLEGAN_COLAB_ROOT: the project folder (its zip: the same
path + ".zip"); CYCLEGAN_REPO_URL: what to clone; CYCLEGAN_COLAB_SKIP_INSTALL=1: no pip install;
CYCLEGAN_DATASET_URL: the archive server.
"""

import importlib
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

# Set this when the project is published ("owner/name" on GitHub), then run `python -m utils.colab`: the
# badges and the clone address use it. None: no public address yet, so no badge (it would lead nowhere).
GITHUB_REPO = None
COLAB_ROOT = "/content/cyclegan-keras"   # Colab's working folder is /content
# Run in a clone: the committed project in one zip, its files under cyclegan-keras/ (COLAB_ROOT's name).
ZIP_COMMAND = "git archive --prefix=cyclegan-keras/ -o cyclegan-keras.zip HEAD"
# The project's zip unpacks to about 40 MB in about 250 files: far above both, far below a disk's worth.
UNPACK_MAX_BYTES = 1 << 30
UNPACK_MAX_MEMBERS = 20_000
NOTEBOOK_DATASETS = {"05_01_cyclegan_apple2orange": "apple2orange", "05_02_cyclegan_monet": "monet2photo",
                     "05_03_cyclegan_ablation": None}   # 05_03 uses the built-in synthetic data
# Colab brings its own notebook server and kernel: replacing them breaks the session. The tests are not needed.
NOT_ON_COLAB = ("jupyter", "ipykernel", "nbclient", "nbformat", "pytest", "playwright")
TENSORFLOW = {"gpu": "tensorflow[and-cuda]==2.21.0", "cpu": "tensorflow==2.21.0"}


def repo_url():
    """The public clone address, or "" while GITHUB_REPO is None."""
    return f"https://github.com/{GITHUB_REPO}.git" if GITHUB_REPO else ""


def in_colab():
    return "google.colab" in sys.modules or os.environ.get("CYCLEGAN_FORCE_COLAB") == "1"


def nvidia_gpu():
    """(name, compute capability as (major, minor)) of the runtime's first NVIDIA GPU, from nvidia-smi; None
    without one. Not utils.runtime.devices.gpu(): this runs before the pinned TensorFlow is installed, to choose it."""
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
    """What mixed_precision=True picks on a GPU of this compute capability, in words (utils/runtime/devices.py's rule;
    that module needs no Keras until it asks the backend for its GPU, so it is read before the install)."""
    from utils.runtime.devices import gpu_compute_dtype
    dtype = gpu_compute_dtype(capability)
    return dtype + (" with loss scaling" if dtype == "float16" else "")


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
    if not Path(root).is_dir():
        unpack(root)   # the cell found neither the folder nor a clone address, but the zip
    leave_the_zip(root)
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
              "(training on Colab's CPU is many times slower; a new runtime starts empty: upload "
              "cyclegan-keras.zip again if you used it).")
    if os.environ.get("CYCLEGAN_COLAB_SKIP_INSTALL") != "1":
        install(root, gpu)
    os.chdir(root / "notebooks")   # as in a local clone: the repository is `..`, the data `../data`
    if dataset:
        from utils.datasets.download import DEFAULT_BASE_URL, download_dataset
        download_dataset(dataset, root / "data", os.environ.get("CYCLEGAN_DATASET_URL", DEFAULT_BASE_URL))
    print(f"Ready: the project is in {root}, this notebook runs in {root / 'notebooks'}.")
    return {"root": root, "gpu": gpu}


def _refusal(members, top):
    """Why the members of a project zip must not be unpacked (None: they may): one short phrase."""
    if not members:
        return "it is empty"
    if len(members) > UNPACK_MAX_MEMBERS:
        return f"it holds {len(members):,} members, more than {UNPACK_MAX_MEMBERS:,} (the project has a few hundred)"
    declared = sum(info.file_size for info in members)
    if declared > UNPACK_MAX_BYTES:
        return f"it declares {declared:,} bytes unpacked, more than {UNPACK_MAX_BYTES:,} (the project: about 40 MB)"
    for info in members:
        name = info.filename
        if name.startswith("/"):
            return f"the member {name!r} has an absolute path"
        if ".." in name.split("/"):
            return f"the member {name!r} climbs out of its folder with '..'"
        if stat.S_ISLNK(info.external_attr >> 16):
            return f"the member {name!r} is a symbolic link"
        if not name.startswith(top):
            return f"the member {name!r} is not inside {top}"
    return None


def unpack(root):
    """Unpack root + ".zip" (made by ZIP_COMMAND) into root's parent, after checking every member (all
    under "<root's name>/", no absolute path, no "..", no link, UNPACK_MAX_MEMBERS and UNPACK_MAX_BYTES
    at most, room on the disk). Through a temporary folder: a failed unpack leaves no half project that a
    rerun would take for the whole. Anything wrong: SystemExit with one line (the cell stops, no traceback)."""
    root = Path(root)
    archive = root.with_name(root.name + ".zip")
    remake = f"make it again in your clone with `{ZIP_COMMAND}` and upload it to {root.parent}"
    try:
        with zipfile.ZipFile(archive) as zip_file:
            members = zip_file.infolist()
            problem = _refusal(members, root.name + "/")
            declared = sum(info.file_size for info in members)
            if problem is None and declared > shutil.disk_usage(root.parent).free:
                problem = f"it declares {declared:,} bytes and {root.parent} has less free space"
            if problem:
                raise SystemExit(f"error: not unpacking {archive}: {problem}; {remake}")
            temporary = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}-unpacking-"))
            try:
                zip_file.extractall(temporary)   # reads at most each member's declared size, checks its CRC
                os.replace(temporary / root.name, root)
            finally:
                shutil.rmtree(temporary, ignore_errors=True)
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        raise SystemExit(f"error: cannot unpack {archive}: {error}; {remake}") from None
    print(f"Unpacked {archive} into {root}.")


def leave_the_zip(root):
    """The cell may have imported this module (with utils and models) from root + ".zip": forget those
    modules and that path, so that every later import, here and in the notebook, comes from the folder."""
    inside = tuple(f"{path}.zip" for path in {os.path.abspath(root), str(Path(root).resolve())})
    sys.path[:] = [path for path in sys.path if not path.startswith(inside)]
    for name, module in list(sys.modules.items()):
        if (getattr(module, "__file__", None) or "").startswith(inside):
            del sys.modules[name]
    importlib.invalidate_caches()   # the folder did not exist at the cell's first import: look again


# ---------------------------------------------------------------- the notebooks' first two cells
def badge_markdown(notebook):
    url = f"https://colab.research.google.com/github/{GITHUB_REPO}/blob/main/notebooks/{notebook}.ipynb"
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"


def upload_markdown(notebook):
    """How to run `notebook` in Colab without a public repository: from a zip of a clone."""
    return (
        "**Run this notebook in Colab.** The project has no public address yet, so Colab cannot open it from "
        "GitHub; take it from your clone:\n\n"
        f"1. In your clone: `{ZIP_COMMAND}` (the committed files).\n"
        f"2. In Colab: File > Upload notebook, and pick this notebook (`notebooks/{notebook}.ipynb`).\n"
        "3. Runtime > Change runtime type > T4 GPU (first: a new runtime starts with an empty `/content`).\n"
        "4. Drag `cyclegan-keras.zip` into the Files panel (the folder icon on the left): it lands in `/content`.\n"
        "5. Run the cells from the top: the next one unpacks the zip into `/content/cyclegan-keras`, installs "
        "the requirements and gets the data.\n\n"
        "Outside Colab the next cell does nothing. More: [docs/install.md](../docs/install.md#colab).")


def first_cell(notebook):
    """The markdown cell on top: the badge once the project is public, else how to upload it."""
    return badge_markdown(notebook) if GITHUB_REPO else upload_markdown(notebook)


def setup_cell(notebook):
    """The first code cell of `notebook` (its file name without .ipynb): get the project, then `setup()`."""
    dataset = NOTEBOOK_DATASETS[notebook]
    missing = (f'f"error: no project: upload {{ROOT}}.zip first (missing, or not a zip; make it in your clone with '
               f'`{ZIP_COMMAND}` and drag it into the Files panel), then run this cell again"')
    return (
        "# Colab only (elsewhere this cell does nothing): get the project, its requirements, the GPU, the data.\n"
        "import os, subprocess, sys, zipfile\n"
        'if "google.colab" in sys.modules or os.environ.get("CYCLEGAN_FORCE_COLAB") == "1":\n'
        f'    ROOT = os.environ.get("CYCLEGAN_COLAB_ROOT", "{COLAB_ROOT}")\n'
        f'    if not os.path.isdir(ROOT) and (url := os.environ.get("CYCLEGAN_REPO_URL", "{repo_url()}")):\n'
        '        subprocess.run(["git", "clone", "-q", "--depth", "1", url, ROOT], check=True)\n'
        "    if not os.path.isdir(ROOT) and not zipfile.is_zipfile(ROOT + \".zip\"):\n"
        f"        raise SystemExit({missing})\n"
        "    # the project folder, else its zip (docs/install.md#colab): setup() checks and unpacks it\n"
        '    sys.path[:0] = [ROOT, ROOT + ".zip/" + os.path.basename(ROOT)]\n'
        "    from utils import colab\n"
        f"    colab.setup(ROOT, dataset={dataset!r})")


def write_notebook_cells(folder=Path(__file__).resolve().parents[1] / "notebooks"):
    """Put (or update) the Colab cell (badge or upload steps) and the setup cell of every notebook in `folder`
    right after its title (its first markdown cell, "# ..."); the cells tagged colab-badge / colab-setup are
    replaced, the others kept as they are."""
    import nbformat
    for path in sorted(Path(folder).glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        cells = [c for c in notebook.cells if not {"colab-badge", "colab-setup"} & set(c.metadata.get("tags", []))]
        badge = nbformat.v4.new_markdown_cell(first_cell(path.stem), metadata={"tags": ["colab-badge"]})
        setup_code = nbformat.v4.new_code_cell(setup_cell(path.stem), metadata={"tags": ["colab-setup"]})
        badge.id, setup_code.id = "colab-badge", "colab-setup"   # fixed ids: rewriting changes nothing
        title = next((i for i, c in enumerate(cells) if c.cell_type == "markdown" and c.source.startswith("# ")), None)
        if title is None:
            raise ValueError(f"{path}: no title cell (a markdown cell starting '# ') to put the Colab cells after")
        title_cell = cells.pop(title)
        notebook.cells = [title_cell, badge, setup_code] + cells
        nbformat.write(notebook, path)
        print(f"{path.name}: " + (f"badge and setup cell for {GITHUB_REPO}" if GITHUB_REPO
                                  else "no public repository: upload steps and setup cell"))


if __name__ == "__main__":
    write_notebook_cells()
