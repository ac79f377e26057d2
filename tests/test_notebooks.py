"""Every notebook runs top to bottom with a tiny configuration, from notebooks/ as a student runs it.

Papermill-style: a cell is inserted after the one tagged `parameters`, setting tiny values for the
names that cell defines (others keep their values), and the data and run folders point into a
temporary folder. Each must print its time estimate (utils/training/budget.py) before training. The committed
notebooks are also checked for stale outputs and thin cells.
"""

import ast
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from utils.datasets.synthetic import SYNTHETIC_DATASETS, ensure_dataset

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
MAX_CODE_LINES = 10


def tiny_settings(tmp_path):
    """Tiny values by parameter name, for the conventions of every notebook in notebooks/."""
    return {
        "IMG_SIZE": 32, "GEN_FILTERS": 4, "DISC_FILTERS": 4, "FILTERS": 4,   # 05_03 uses one FILTERS
        "EPOCHS": 1, "DECAY_EPOCHS": 1, "MAX_STEPS": 4, "STEPS": 4,
        "SAMPLE_INTERVAL": 2, "CHECKPOINT_INTERVAL": 2,
        "VARIANTS": ["full", "lambda_id=0"], "NAME": "tiny",
        "DATA_ROOT": str(tmp_path / "data"), "RUN_ROOT": str(tmp_path / "run"), "OUT_ROOT": str(tmp_path / "ablation"),
    }


def parameters_cell(notebook):
    cells = [i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", [])]
    assert len(cells) == 1, "exactly one cell must be tagged 'parameters'"
    return cells[0]


def assigned_names(source):
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """Small copies of the synthetic datasets: the notebooks find them instead of generating 300 images."""
    root = tmp_path_factory.mktemp("nb")
    for name in SYNTHETIC_DATASETS:
        ensure_dataset(name, data_root=root / "data", size=32, n_train=4, n_test=3, seed=0)
    return root


@pytest.mark.long
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom_with_a_tiny_configuration(path, tiny_data):
    notebook = nbformat.read(path, as_version=4)
    index = parameters_cell(notebook)
    defined = assigned_names(notebook.cells[index].source)
    overrides = {k: v for k, v in tiny_settings(tiny_data).items() if k in defined}
    assert {"DATA_ROOT"} <= set(overrides), "the parameters cell must define DATA_ROOT"
    injected = nbformat.v4.new_code_cell("\n".join(f"{k} = {v!r}" for k, v in overrides.items()))
    injected.metadata["tags"] = ["injected-parameters"]
    notebook.cells.insert(index + 1, injected)
    has_page = any("build_app(" in cell.source for cell in notebook.cells if cell.cell_type == "code")
    if has_page:   # the inline classroom page (utils/inference/serve.py) runs in the kernel: check it, close it
        notebook.cells.append(nbformat.v4.new_code_cell("import urllib.request\n"
                                                        "assert urllib.request.urlopen(page.local_url).status == 200\n"
                                                        "page.close()"))
    client = NotebookClient(notebook, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})   # cwd = notebooks/
    client.execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the notebook shows no picture"
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert re.search(r"about \d+ minutes? .*on this machine", printed), "no time estimate printed before training"
    assert "To change it" in printed
    if has_page:
        shown = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
        assert '<iframe src="http://127.0.0.1:' in shown, "the classroom page is not shown in the notebook"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebook_is_thin_and_clean(path):
    notebook = nbformat.read(path, as_version=4)
    parameters_cell(notebook)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        assert not cell.outputs and cell.execution_count is None, "committed notebooks hold no outputs"
        lines = [line for line in cell.source.splitlines() if line.strip() and not line.strip().startswith("#")]
        assert len(lines) <= MAX_CODE_LINES, f"a code cell of {len(lines)} lines:\n{cell.source}"
        assert not any(line.lstrip().startswith(("def ", "class ")) for line in lines), cell.source


def auto_settings(source):
    """Names a parameters cell sets to "auto" (also in tuple assignments such as `A, B = "auto", 1`)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                pairs = (zip(target.elts, node.value.elts) if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple)
                         else [(target, node.value)])
                names |= {t.id for t, v in pairs if isinstance(t, ast.Name) and isinstance(v, ast.Constant) and v.value == "auto"}
    return names


def names_used(source, context):
    return {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name) and isinstance(n.ctx, context)}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_a_setting_left_auto_is_filled_in_before_a_cell_reads_it(path):
    """A setting that a later cell replaces ("auto" -> this machine's value, as 05_02's size and generator)
    is not read by a cell before that one; the tiny run sets those settings by hand and cannot see it."""
    notebook = nbformat.read(path, as_version=4)
    index = parameters_cell(notebook)
    code = [cell.source for cell in notebook.cells[index + 1:] if cell.cell_type == "code"]
    for name in auto_settings(notebook.cells[index].source):
        filled = [i for i, source in enumerate(code) if name in names_used(source, ast.Store)]
        if filled:   # else "auto" is handed on as it is (MAX_STEPS to plan_steps)
            early = [source for source in code[:filled[0]] if name in names_used(source, ast.Load)]
            assert not early, f"{name} is read while still 'auto', before the cell that fills it in:\n{early[0]}"
