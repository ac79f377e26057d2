"""train(time_budget_minutes=): the steps planned before training are planned again from the run's own.

A fake clock makes every training step take one second, so the re-plan is the same on every machine:
REPLAN_AFTER (20) timed steps after the first, at step 21, 21 s of a 60 s budget are gone and
(60 - 21) / (1 s x OVERHEAD 1.15) = 33 more steps fit: 54 in all.
"""

import json
import types

import pytest

from models import CycleGAN, CycleGANConfig
from models.lr_schedule import learning_rate_at
from utils.training import loop
from utils.training.logs import read_losses
from utils.training.trainer import train

DATASET = "synthetic_apple2orange"   # 6 training images per domain in the tests' data_root: 6 steps an epoch
TINY = dict(input_dim=(32, 32, 3), gen_n_filters=4, disc_n_filters=4, buffer_max_length=4, seed=0)


@pytest.fixture
def one_second_steps(monkeypatch):
    """The loop's clock, advanced by one second by each training step and by nothing else."""
    now = [1_000_000.0]
    monkeypatch.setattr(loop, "time", types.SimpleNamespace(time=lambda: now[0]))
    step = CycleGAN.train_step

    def slow_step(self, imgs_A, imgs_B):
        now[0] += 1.0
        return step(self, imgs_A, imgs_B)

    monkeypatch.setattr(CycleGAN, "train_step", slow_step)


def trained(run):
    meta = json.loads((run / "config.json").read_text())
    return meta, read_losses(run / "logs" / "losses.csv")


@pytest.mark.parametrize("planned", [200, 30])   # a plan timed too fast, and one timed too slow
def test_a_run_at_a_constant_rate_is_replanned_to_the_steps_that_fit(data_root, tmp_path, one_second_steps, capsys,
                                                                     planned):
    config = CycleGANConfig(**TINY, epochs=100, decay_epochs=100)   # no decay within the run
    run = train(config, DATASET, data_root=data_root, run_root=tmp_path, max_steps=planned, progress=False,
                time_budget_minutes=1)
    meta, losses = trained(run)
    assert losses["step"].astype(int).tolist() == list(range(1, 55))
    assert meta["training"]["max_steps"] == 54
    assert meta["sessions"][-1]["replanned"] == {"at_step": 21, "s_per_step": 1.0, "max_steps_before": planned,
                                                 "max_steps": 54}
    assert meta["sessions"][-1]["time_budget_minutes"] == 1
    assert f"Re-planned to keep to the 1-minute budget: 1 s a step in this run, so 54 steps instead of {planned}" \
        in capsys.readouterr().out
    assert (meta["model"]["epochs"], meta["model"]["decay_epochs"]) == (100, 100)


def test_a_fitted_schedule_is_fitted_again_and_still_ends_with_its_decay(data_root, tmp_path, one_second_steps, capsys):
    # 5 + 5 epochs of 6 steps, 60 steps planned; 54 fit: 9 whole epochs, 5 at the full rate and 4 decaying
    config = CycleGANConfig(**TINY, epochs=5, decay_epochs=5)
    run = train(config, DATASET, data_root=data_root, run_root=tmp_path, max_steps=60, progress=False,
                time_budget_minutes=1)
    meta, losses = trained(run)
    assert int(losses["step"][-1]) == 54
    assert (meta["model"]["epochs"], meta["model"]["decay_epochs"]) == (5, 4)
    assert meta["training"]["total_epochs"] == 9 and meta["training"]["max_steps"] == 54
    assert "the schedule fitted again: 5 epochs at the full learning rate, then 4 decaying" in capsys.readouterr().out
    last_rate = float(losses["learning_rate"][-1])   # set for the last step: epoch 8, batch 5
    assert last_rate == pytest.approx(learning_rate_at(8 + 5 / 6, config.learning_rate, 5, 4))
    assert last_rate < learning_rate_at(8 + 5 / 6, config.learning_rate, 5, 5)


def test_a_plan_within_a_tenth_is_kept_and_no_budget_changes_nothing(data_root, tmp_path, one_second_steps, capsys):
    config = CycleGANConfig(**TINY, epochs=100, decay_epochs=100)
    kept = train(config, DATASET, data_root=data_root, run_root=tmp_path, max_steps=50, progress=False,
                 time_budget_minutes=1)   # 54 fit: within a tenth of 50
    untimed = train(config, DATASET, data_root=data_root, run_root=tmp_path, max_steps=30, progress=False)
    assert "Re-planned" not in capsys.readouterr().out
    for run, steps in ((kept, 50), (untimed, 30)):
        meta, losses = trained(run)
        assert int(losses["step"][-1]) == steps and "replanned" not in meta["sessions"][-1]


@pytest.mark.parametrize("minutes", [0, -1, float("nan"), float("inf"), "10", True])
def test_a_bad_time_budget_names_the_value(tmp_path, minutes):
    with pytest.raises(ValueError, match="time_budget_minutes=.*must be a number of minutes > 0"):
        train(CycleGANConfig(**TINY), DATASET, run_root=tmp_path, time_budget_minutes=minutes)
