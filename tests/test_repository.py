"""The house rules a reader relies on: models/ stands alone, and no file names a path of one machine."""

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


def test_models_imports_nothing_from_utils():
    """models/ is the lower floor: the networks, the step, the pool, checkpoints; utils/ builds on it."""
    offenders = {str(path.relative_to(ROOT)): module for path in sorted((ROOT / "models").glob("*.py"))
                 for module in imported_modules(path) if module == "utils" or module.startswith("utils.")}
    assert offenders == {}


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
