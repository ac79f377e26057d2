"""A training command's console: no TensorFlow log noise, one progress line every N steps in a log file."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOISE = re.compile(r"^(E|W|I)0000 |absl|oneDNN|cpu_feature_guard|remapper|meta_optimizer", re.MULTILINE)


@pytest.mark.long
def test_train_command_prints_no_tensorflow_noise_and_plain_progress_lines(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "GLOG_minloglevel")}
    command = [sys.executable, "train.py", "--dataset", "synthetic_apple2orange", "--img-size", "32",
               "--gen-filters", "4", "--disc-filters", "4", "--max-steps", "4", "--log-interval", "2",
               "--sample-interval", "4", "--checkpoint-interval", "4",
               "--data-root", str(tmp_path / "data"), "--run-root", str(tmp_path / "run")]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    console = done.stdout + done.stderr
    assert done.returncode == 0, console
    assert not NOISE.search(console), console              # none of TensorFlow's C++ or absl lines
    # Not a terminal: a plain line every --log-interval steps in steps of the whole run, no bar redrawn with \r.
    assert re.search(r"^step 2/4 \(epoch 1/200\): D [\d.]+, G [\d.]+, cycle [\d.]+, left ", console, re.MULTILINE)
    assert re.search(r"^step 4/4 ", console, re.MULTILINE)
    assert "\r" not in console and "Epoch" not in console
    assert "Finished: 4 steps" in console


def test_the_training_loop_asks_the_one_progress_policy():
    """The loop's bar follows utils.cli.wants_bar (the policy itself: tests/test_one_home.py)."""
    from utils import cli
    from utils.training import loop
    assert loop.wants_bar is cli.wants_bar
