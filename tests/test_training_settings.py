"""TrainingSettings (utils/training/settings.py) and the one-device executor (utils/runtime/executor.py)."""

import json

import numpy as np
import pytest

from utils.runtime.executor import OneDevice, make_executor
from utils.training.settings import TrainingSettings
from utils.training.trainer import train


def test_defaults_are_the_books_and_every_bad_value_is_named():
    settings = TrainingSettings()
    assert (settings.batch_size, settings.sample_interval, settings.checkpoint_interval) == (1, 500, 1000)
    assert settings.max_steps is None and settings.preprocess == "resize_and_crop"
    assert TrainingSettings(batch_size=np.int64(4)).batch_size == 4 and type(TrainingSettings(batch_size=np.int64(4)).batch_size) is int
    for name, value in [("batch_size", 0), ("sample_interval", 2.5), ("checkpoint_interval", True),
                        ("max_steps", -5), ("n_grid_images", "2")]:
        with pytest.raises(ValueError, match=f"{name}={value!r}: must be an integer >= 1"):
            TrainingSettings(**{name: value})

    class NotANumber:   # has a dtype but no integer kind: must not count as an integer
        dtype = "int64"

        def __lt__(self, other):
            return False

        def __int__(self):
            return 4

    with pytest.raises(ValueError, match="batch_size=.*must be an integer >= 1"):
        TrainingSettings(batch_size=NotANumber())


def test_a_stored_run_reads_back_and_a_resume_changes_only_what_it_may():
    stored = json.loads(json.dumps(TrainingSettings(batch_size=2, max_steps=8).to_dict()))
    stored["an_older_key"] = 1   # config.json of another version: ignored, not an error
    settings = TrainingSettings.from_dict(stored)
    assert settings == TrainingSettings(batch_size=2, max_steps=8)
    resumed = settings.changed(max_steps=20, sample_interval=None)
    assert resumed.max_steps == 20 and resumed.sample_interval == 500 and settings.max_steps == 8
    with pytest.raises(ValueError, match="batch_size cannot change when a run is resumed .*batch_size=2"):
        settings.changed(batch_size=4)
    with pytest.raises(ValueError, match="max_steps=0"):
        settings.changed(max_steps=0)


def test_defaults_list_only_what_a_user_chooses():
    assert set(TrainingSettings.defaults()) == {"batch_size", "sample_interval", "checkpoint_interval", "max_steps",
                                                "n_grid_images", "preprocess"}


def test_a_batch_that_does_not_split_across_devices_is_refused_with_the_fix():
    TrainingSettings(batch_size=4).check_devices(2)
    with pytest.raises(ValueError, match=r"batch_size=3: .*multiple of 2 \(e.g. --batch-size 2\)"):
        TrainingSettings(batch_size=3).check_devices(2)


def test_build_and_resume_are_one_choice(tmp_path):
    with pytest.raises(ValueError, match="mode='build' starts a run and resume=True continues one"):
        train(None, None, tmp_path, mode="build", resume=True)
    with pytest.raises(ValueError, match="resuming needs the run folder"):
        train(None, None, mode="load")


def test_one_device_executor_passes_batches_through():
    executor = make_executor(False)
    assert isinstance(executor, OneDevice) and executor.n_devices == 1
    a, b = np.zeros((3, 4, 4, 3)), np.ones((3, 4, 4, 3))
    even_a, even_b = executor.even_batches(a, b)
    assert even_a.shape == (3, 4, 4, 3) and even_a.dtype == np.float32 and np.array_equal(even_b, b)


def test_an_executor_on_two_devices_tops_up(monkeypatch):
    executor = OneDevice()
    monkeypatch.setattr(executor, "n_devices", 2)
    images = np.arange(3, dtype=np.float32).reshape(3, 1, 1, 1)
    (even,) = executor.even_batches(images)
    assert even[:, 0, 0, 0].tolist() == [0, 1, 2, 0]   # topped up with its own first image
