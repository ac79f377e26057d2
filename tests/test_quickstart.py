"""`python quickstart.py demo|test`: the Quickstart's two commands for machines without make (Windows)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import quickstart

ROOT = Path(__file__).resolve().parents[1]


def _run(*args, timeout=900):
    return subprocess.run([sys.executable, str(ROOT / "quickstart.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)


def test_demo_builds_the_venv_from_requirements_then_trains_the_demo(tmp_path):
    venv = tmp_path / "venv"
    run = _run("demo", "--venv", str(venv), "--dry-run")
    assert run.returncode == 0, run.stderr
    commands = [line[2:] for line in run.stdout.splitlines() if line.startswith("+ ")]
    python = str(quickstart.venv_python(venv))
    assert commands[0].endswith(f"-m venv {venv}")
    assert commands[2] == f"{python} -m pip install --quiet -r {ROOT / 'requirements.txt'}"   # what make venv runs
    assert commands[-1] == f"{python} train.py --demo"
    assert not venv.exists()   # a dry run


def test_a_built_venv_is_reused_and_rebuilt_when_the_requirements_change(tmp_path):
    venv = tmp_path / "venv"
    assert quickstart.needs_install(venv)
    (venv).mkdir()
    (venv / ".installed").touch()
    assert not quickstart.needs_install(venv)
    run = _run("test", "--venv", str(venv), "--dry-run", "--", "-x")
    assert [line for line in run.stdout.splitlines() if line.startswith("+ ")] == \
        [f"+ {quickstart.venv_python(venv)} -m pytest -m 'not long' -n 2 -x"]   # make test's split and workers
    run = _run("test-long", "--venv", str(venv), "--dry-run")
    assert [line for line in run.stdout.splitlines() if line.startswith("+ ")] == \
        [f"+ {quickstart.venv_python(venv)} -m pytest -m long"]
    os.utime(venv / ".installed", (0, 0))   # older than requirements.txt
    assert quickstart.needs_install(venv)


def test_windows_venvs_keep_their_python_in_scripts():
    assert quickstart.venv_python(Path("v"), os_name="nt") == Path("v/Scripts/python.exe")
    gpu = quickstart.install_commands(Path("v"), gpu=True)
    assert gpu[-1][-1] == "tensorflow[and-cuda]==2.21.0" and "tensorflow-cpu" in gpu[-2]


def test_test_runs_pytest_with_the_given_arguments():
    run = _run("--python", sys.executable, "test", "--", "-q", "-p", "no:cacheprovider", "tests/test_platforms.py")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert " passed" in run.stdout


@pytest.mark.long
def test_demo_trains_with_the_given_arguments(tmp_path):
    run = _run("--python", sys.executable, "demo", "--", "--max-steps", "2", "--img-size", "32", "--gen-filters", "4",
               "--disc-filters", "4", "--data-root", str(tmp_path / "data"), "--run-root", str(tmp_path / "run"),
               "--no-progress")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "training on CPU (no GPU found)" in run.stdout   # the device line
    (folder,) = (tmp_path / "run").iterdir()
    assert (folder / "index.html").is_file() and list((folder / "weights").glob("ckpt-*"))
