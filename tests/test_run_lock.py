"""One owner per run folder, with real processes: a second trainer or ablation is refused by name,
SIGTERM saves like Ctrl-C, a lock left by a killed process is taken over with a message."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from utils.datasets.synthetic import ensure_dataset
from utils.training import run_folder as layout
from utils.training.lock import LOCK_FILE, RunLock, RunLockedError, read_holder
from utils.training.logs import read_losses

REPO = Path(__file__).resolve().parents[1]
DATASET = "synthetic_apple2orange"
TINY_FLAGS = ["--img-size", "32", "--gen-filters", "4", "--disc-filters", "4", "--epochs", "100", "--decay-epochs", "100",
              "--sample-interval", "7", "--checkpoint-interval", "5", "--no-progress"]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}


def wait_for(condition, process, seconds=900, what="condition"):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return
        if process is not None and process.poll() is not None:
            raise AssertionError(f"process ended before {what}: {process.stderr.read().decode()[-3000:]}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def csv_steps(run):
    return read_losses(run / layout.LOSSES_CSV)["step"].astype(int).tolist()


def hold_lock(folder):
    """A separate Python process that owns `folder` (like a running trainer) until killed."""
    code = ("import sys, time; from utils.training.lock import RunLock; lock = RunLock(sys.argv[1]).acquire(); "
            "print('locked', flush=True); time.sleep(600)")
    process = subprocess.Popen([sys.executable, "-c", code, str(folder)], cwd=REPO, env=ENV,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout.readline().decode().strip() == "locked", process.stderr.read().decode()
    return process


@pytest.fixture(scope="module")
def contested_run(tmp_path_factory):
    """Trainer A runs; trainer B resumes the same folder meanwhile; then A gets SIGTERM."""
    root = tmp_path_factory.mktemp("contested")
    ensure_dataset(DATASET, data_root=root / "data", size=32, n_train=6, n_test=2, seed=0)
    command = [sys.executable, str(REPO / "train.py"), "--dataset", DATASET, "--data-root", str(root / "data"),
               "--run-root", str(root / "runs"), "--max-steps", "500", *TINY_FLAGS]
    first = subprocess.Popen(command, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    run = root / "runs" / f"0001_{DATASET}"
    try:
        wait_for(lambda: (run / layout.LOSSES_CSV).exists() and len(csv_steps(run)) >= 7, first, what="7 steps")
        holder = read_holder(run)
        second = subprocess.run([sys.executable, str(REPO / "train.py"), "--resume", str(run), "--no-progress"],
                                cwd=REPO, env=ENV, capture_output=True, text=True, timeout=900)
        steps_before_term = len(csv_steps(run))
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=900)
    finally:
        first.kill()
        first.wait()
    return {"run": run, "first": first, "first_out": out.decode(), "first_err": err.decode(), "holder": holder,
            "second": second, "steps_before_term": steps_before_term}


@pytest.mark.long
def test_a_second_trainer_on_one_run_is_refused_naming_the_first(contested_run):
    second, first = contested_run["second"], contested_run["first"]
    assert contested_run["holder"]["pid"] == first.pid
    assert second.returncode == 1
    assert f"in use by process {first.pid}" in second.stderr
    assert "Traceback" not in second.stderr
    assert len([line for line in second.stderr.splitlines() if line.startswith("error:")]) == 1
    # the refused process wrote nothing: every step once, in order, all from the first trainer
    steps = csv_steps(contested_run["run"])
    assert steps == list(range(1, len(steps) + 1))


def test_sigterm_finishes_the_step_saves_and_says_how_to_resume(contested_run):
    from utils.training.trainer import load_run
    run = contested_run["run"]
    assert contested_run["first"].returncode == 130, contested_run["first_err"][-2000:]
    assert "SIGTERM: finishing this step and saving a checkpoint" in contested_run["first_err"]
    assert "python train.py --resume" in contested_run["first_out"]
    steps = csv_steps(run)
    assert steps[-1] >= contested_run["steps_before_term"]
    assert load_run(run).step == steps[-1]                   # nothing lost since the last checkpoint interval
    assert f"stopped by SIGTERM at step {steps[-1]}" in (run / "index.html").read_text()
    assert not (run / LOCK_FILE).exists()                    # released on exit


def test_a_lock_left_by_a_killed_process_is_taken_over_with_a_message(tmp_path, capsys):
    holder = hold_lock(tmp_path)
    try:
        with pytest.raises(RunLockedError, match=rf"in use by process {holder.pid} on .*delete .*\.lock"):
            RunLock(tmp_path).acquire()
        holder.send_signal(signal.SIGKILL)   # no chance to clean up: the lock file stays, the kernel's lock goes
        holder.wait(timeout=30)
    finally:
        holder.kill()
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == holder.pid
    with RunLock(tmp_path):
        assert read_holder(tmp_path)["pid"] == os.getpid()
        assert f"taking over the lock of {tmp_path} left by process {holder.pid}" in capsys.readouterr().err
    assert not (tmp_path / LOCK_FILE).exists()


def test_two_ablations_on_one_folder_the_second_is_refused(tmp_path):
    import ablate
    folder = tmp_path / "ablation" / "quick"
    holder = hold_lock(folder)   # as a first ablate.py on this folder does while it trains
    try:
        with pytest.raises(RunLockedError, match=rf"{re.escape(str(folder))} is in use by process {holder.pid}.*one ablation"):
            ablate.main(["--dataset", DATASET, "--data-root", str(tmp_path / "data"), "--out-root",
                         str(tmp_path / "ablation"), "--name", "quick", "--img-size", "32", "--steps", "2",
                         "--gen-filters", "4", "--disc-filters", "4", "--quiet"])
    finally:
        holder.kill()
        holder.wait()
    assert sorted(p.name for p in folder.iterdir()) == [LOCK_FILE]   # the refused one wrote nothing
