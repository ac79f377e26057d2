"""The house rules a reader relies on: the project's imports form no circle and never point upward (the
runtime at the bottom, models/ on it, then utils' shared files, datasets, training, inference, evaluation, the Colab helper, and
the entry scripts on top), utils/ is folders by concept, and no file names a path of one machine."""

import ast
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = {".py", ".md", ".ipynb", ".json", ".txt", ".cfg", ".ini", ".toml", ".sh", ".yml", ".yaml", ""}
# An absolute path of a machine: a home or scratch folder, or a Windows drive.
MACHINE_PATH = re.compile(r"(?<![\w.<])(/home/\w|/root/|/Users/\w|/work/|/tmp/\w|/private/var/|[A-Z]:\\\\Users)")


def tracked_files():
    try:
        listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / name for name in listed.splitlines()]


def imported_modules(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


# Layers, bottom first: a module may import its own layer or those below it, never one above.
LAYERS = (("utils.runtime",), ("models",), ("utils", "utils.cli", "utils.images", "utils.plots"), ("utils.datasets",),
          ("utils.training",), ("utils.inference",), ("utils.evaluation",), ("utils.colab", "utils.loaders"))
PROJECT_FOLDERS = ("models", "utils")
ENTRY_SCRIPTS = ("train.py", "translate.py", "evaluate.py", "export.py", "serve.py", "ablate.py", "quickstart.py")


def module_name(path, root):
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root, folders=PROJECT_FOLDERS, scripts=ENTRY_SCRIPTS):
    """{module: {project module it imports}} from every import statement, at module level and inside
    functions alike (read with ast, nothing run). `from package import name` counts as an import of
    package.name when that is a module, else of the package."""
    files = [path for folder in folders for path in sorted((root / folder).rglob("*.py"))]
    files += [root / script for script in scripts if (root / script).is_file()]
    modules = {module_name(path, root): path for path in files}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets.update(f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules
                               else node.module for alias in node.names)
        graph[name] = {target for target in targets if target in modules}   # a module importing itself: a circle
    return graph


def find_cycle(graph):
    """One import circle as a list [a, b, ..., a], or None (depth-first search)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def layer(module):
    """The index in LAYERS of a project module (entry scripts: above them all)."""
    best = None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (index, len(prefix))
    return len(LAYERS) if best is None else best[0]


def test_no_import_circle():
    cycle = find_cycle(import_graph(ROOT))
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_no_module_imports_from_a_layer_above_its_own():
    upward = sorted(f"{source} imports {target}" for source, targets in import_graph(ROOT).items()
                    for target in targets if layer(target) > layer(source))
    assert upward == [], "upward imports (see LAYERS): " + "; ".join(upward)


def test_the_import_checks_catch_a_planted_circle_and_an_upward_import(tmp_path):
    (tmp_path / "utils" / "training").mkdir(parents=True)
    (tmp_path / "models").mkdir()
    (tmp_path / "utils" / "__init__.py").write_text("")
    (tmp_path / "utils" / "training" / "__init__.py").write_text("")
    (tmp_path / "utils" / "training" / "loop.py").write_text("def f():\n    from utils.training import page\n")
    (tmp_path / "utils" / "training" / "page.py").write_text("import utils.training.loop\n")
    (tmp_path / "models" / "net.py").write_text("from utils.training.page import x\n")
    graph = import_graph(tmp_path)
    cycle = find_cycle(graph)
    assert cycle[0] == cycle[-1] and sorted(cycle[:-1]) == ["utils.training.loop", "utils.training.page"]
    assert "utils.training.page" in graph["models.net"] and layer("utils.training.page") > layer("models.net")
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_utils_is_folders_by_concept_with_few_loose_files():
    loose = sorted(path.name for path in (ROOT / "utils").glob("*.py") if path.name != "__init__.py")
    assert len(loose) <= 6, f"utils/ has {len(loose)} loose files: {loose}"
    for package in sorted(p for p in (ROOT / "utils").iterdir() if p.is_dir() and p.name != "__pycache__"):
        init = package / "__init__.py"
        assert init.is_file() and len(ast.get_docstring(ast.parse(init.read_text())) or "") > 40, \
            f"{package.relative_to(ROOT)} needs an __init__.py whose docstring says what lives there"


def test_models_holds_the_paper_and_imports_only_the_runtime_below_it():
    """models/ is the paper (networks, losses, the step, the pool, the schedule); below it only utils/runtime/
    (kernels, devices, the executor), and no module of utils/runtime/ imports models/ or the rest of utils/."""
    offenders = {str(path.relative_to(ROOT)): module for path in sorted((ROOT / "models").glob("*.py"))
                 for module in imported_modules(path)
                 if (module == "utils" or module.startswith("utils.")) and not module.startswith("utils.runtime")}
    assert offenders == {}
    runtime = {str(path.relative_to(ROOT)): module for path in sorted((ROOT / "utils" / "runtime").glob("*.py"))
               for module in imported_modules(path)
               if module.split(".")[0] == "models" or (module.startswith("utils.") and not module.startswith("utils.runtime"))}
    assert runtime == {}
    plumbing = sorted({"checkpoint.py", "checkpoint_checks.py", "files.py", "disk_space.py", "devices.py",
                       "executor.py", "onednn.py"} & {path.name for path in (ROOT / "models").glob("*.py")})
    assert plumbing == [], f"plumbing back in models/: {plumbing}"


def test_importing_the_project_sets_nothing():
    """No import has a side effect: `import models`, `import utils` and every package's __init__ leave the
    environment as they found it (TensorFlow's kernels are chosen by a call, utils/runtime/onednn.py)."""
    code = ("import os, sys; sys.path.insert(0, '.'); before = dict(os.environ); import models, utils, "
            "utils.runtime, utils.training, utils.inference, utils.evaluation, utils.datasets; "
            "import models.config; changed = sorted(k for k in set(before) | set(os.environ) "
            "if before.get(k) != os.environ.get(k)); print(changed); "
            "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))")
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("TF_ENABLE_ONEDNN_OPTS", "CYCLEGAN_KERNELS_CHOSEN_FOR")}
    out = subprocess.run([__import__("sys").executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=True).stdout.split("\n")
    assert out[0] == "[]", f"importing the project changed the environment: {out[0]}"
    assert out[1] == "[]", f"importing the packages and models.config loaded {out[1]}"


def test_no_file_names_an_absolute_path_of_a_machine():
    found = []
    for path in tracked_files():
        if path.suffix not in TEXT_SUFFIXES or not path.is_file() or path.name == "test_repository.py":
            continue
        for number, line in enumerate(path.read_text(errors="ignore").splitlines(), 1):
            if MACHINE_PATH.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}")
    assert found == []


def test_the_machine_path_rule_catches_what_it_should():
    assert MACHINE_PATH.search('"repo": "/home/alice/cyclegan"')
    assert MACHINE_PATH.search("saved in /work/main/run/x")
    assert MACHINE_PATH.search(r"C:\\Users\\bob")
    assert MACHINE_PATH.search('"checkpoints_dir": "/tmp/cyclegan_bench_ckpt_858ahnp8"')
    assert not MACHINE_PATH.search("run/cyclegan/0001_apple2orange and ../shared/bench/x.py")
    assert not MACHINE_PATH.search("<scratch>/pcg and <tmp>/run")


def test_every_test_named_in_what_can_go_wrong_exists():
    """docs/what_can_go_wrong.md promises each guarantee with a test (`file::test_name`): each must be there."""
    text = (ROOT / "docs" / "what_can_go_wrong.md").read_text()
    named = set(re.findall(r"`(\w+)::(test_\w+)", text))
    assert len(named) > 50
    files = {"untrusted": "test_untrusted_inputs.py"}   # the page's one short name that is not the file's

    def defined(short, name):
        path = ROOT / "tests" / files.get(short, f"test_{short}.py")
        return path.is_file() and re.search(rf"^\s*def {name}\(", path.read_text(), re.M)

    missing = [f"{short}::{name}" for short, name in sorted(named) if not defined(short, name)]
    assert not missing, f"docs/what_can_go_wrong.md names tests that do not exist: {missing}"
