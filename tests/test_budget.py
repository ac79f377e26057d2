"""utils/training/budget.py: the notebooks' time estimate, the "auto" step budget, and that timing trains nothing."""

import re
import time

import keras
import numpy as np
import pytest

from models import CycleGAN, CycleGANConfig
from utils.training import budget

TINY = dict(input_dim=(32, 32, 3), gen_n_filters=4, disc_n_filters=4, epochs=100, decay_epochs=100)
ESTIMATE = re.compile(r"about \d+ minutes? .*on this machine")


def weights(gan):
    return [keras.ops.convert_to_numpy(v).copy() for v in budget._variables(gan)]


def test_timing_a_model_prints_the_estimate_and_leaves_it_untouched(capsys):
    gan = CycleGAN(**TINY)
    before = weights(gan)
    max_steps = budget.plan_steps(gan, steps_per_epoch=10, max_steps=5)
    out = capsys.readouterr().out
    assert max_steps == 5
    assert ESTIMATE.search(out) and "MAX_STEPS = 5: 5 steps" in out and "BUDGET_MINUTES" in out
    assert gan.step == 0 and len(gan.pool_A) == 0 and len(gan.pool_B) == 0
    assert all(np.array_equal(b, a) for b, a in zip(before, weights(gan)))   # every weight and Adam moment


def test_a_step_slowed_by_another_job_does_not_set_the_estimate(monkeypatch):
    gan = CycleGAN(**TINY)
    slow = iter([0.0, 0.3, 0.3, 0.02, 0.3, 0.3])   # the tracing step, then five timed: one undisturbed
    monkeypatch.setattr(gan, "train_step", lambda *images: time.sleep(next(slow)))
    assert 0.02 <= budget.seconds_per_step(gan, n_timed=5) < 0.2


def test_auto_on_a_cpu_fits_the_budget_and_ends_with_the_decay(monkeypatch, capsys):
    monkeypatch.setattr(budget, "seconds_per_step", lambda *args: 0.5)
    monkeypatch.setattr(budget.devices, "gpu", lambda: None)
    config = CycleGANConfig(**TINY)
    max_steps = budget.plan_steps(config, steps_per_epoch=10, max_steps="auto", budget_minutes=2)
    assert max_steps == 200                      # 120 s / (0.5 s x 1.15) = 208 steps, rounded down to 200
    assert (config.epochs, config.decay_epochs) == (10, 10)   # 20 epochs of 10 steps: half constant, half decay
    out = capsys.readouterr().out
    assert "200 steps (10 epochs at the full learning rate, then 10 decaying to 0)" in out
    assert ESTIMATE.search(out)


def test_auto_with_a_gpu_keeps_the_books_schedule(monkeypatch, capsys):
    monkeypatch.setattr(budget, "seconds_per_step", lambda *args: 0.05)
    monkeypatch.setattr(budget.devices, "gpu", lambda: {"name": "Tesla T4", "compute_capability": (7, 5)})
    config = CycleGANConfig(**TINY)
    assert budget.plan_steps(config, steps_per_epoch=1000, max_steps="auto") is None
    assert (config.epochs, config.decay_epochs) == (100, 100)
    out = capsys.readouterr().out
    assert "with a GPU: the book's schedule, about 192 minutes (3.2 hours) on this machine" in out


def test_auto_with_a_gpu_budget_fits_it_and_ends_with_the_decay(monkeypatch, capsys):
    monkeypatch.setattr(budget, "seconds_per_step", lambda *args: 0.2)   # about a T4's 256 px ResNet step
    monkeypatch.setattr(budget.devices, "gpu", lambda: {"name": "Tesla T4", "compute_capability": (7, 5)})
    config = CycleGANConfig(**TINY)
    max_steps = budget.plan_steps(config, steps_per_epoch=1072, max_steps="auto", budget_minutes=15,
                                  gpu_budget_minutes=40)
    # 2,400 s / (0.2 s x 1.15) = 10,434 steps: 9 whole epochs, 5 constant and 4 decaying, which end
    # the schedule at 9 x 1,072 = 9,648 steps: the steps said and trained are those, not 10,434
    assert max_steps == 9648
    assert (config.epochs, config.decay_epochs) == (5, 4)
    out = capsys.readouterr().out
    assert 'MAX_STEPS = "auto" with a GPU: 9,648 steps (5 epochs at the full learning rate' in out
    assert "GPU_BUDGET_MINUTES (now 40)" in out
    with pytest.raises(ValueError, match="GPU_BUDGET_MINUTES=0"):
        budget.plan_steps(config, 1072, "auto", gpu_budget_minutes=0)


def test_an_ablation_shares_the_budget_between_its_runs(monkeypatch):
    monkeypatch.setattr(budget, "seconds_per_step", lambda *args: 0.1)
    monkeypatch.setattr(budget.devices, "gpu", lambda: None)
    steps = budget.plan_steps(CycleGANConfig(**TINY), steps_per_epoch=300, max_steps="auto", budget_minutes=12,
                              n_runs=5)
    assert steps == 1200   # 720 s / (0.1 s x 1.15 x 5 runs) = 1252


@pytest.mark.parametrize("max_steps", ["lots", 0, -3, 2.5])
def test_a_bad_max_steps_names_the_value_and_what_is_allowed(max_steps):
    with pytest.raises(ValueError, match="MAX_STEPS"):
        budget.plan_steps(CycleGANConfig(**TINY), 10, max_steps)


@pytest.mark.parametrize("gpu", [None, {"name": "a GPU", "compute_capability": None}])
def test_auto_settings_come_from_the_recipe_of_the_machine_and_the_others_stay(monkeypatch, capsys, gpu):
    monkeypatch.setattr(budget.devices, "gpu", lambda: gpu)
    book, cpu = dict(IMG_SIZE=256, GENERATOR_TYPE="resnet"), dict(IMG_SIZE=128, GENERATOR_TYPE="unet")
    size, generator = budget.for_this_machine(dict(IMG_SIZE="auto", GENERATOR_TYPE="auto"), gpu=book, cpu=cpu)
    assert (size, generator) == ((256, "resnet") if gpu else (128, "unet"))
    assert f"IMG_SIZE = {size}" in capsys.readouterr().out
    assert budget.for_this_machine(dict(IMG_SIZE=32, GENERATOR_TYPE="auto"), gpu=book, cpu=cpu) == \
        (32, "resnet" if gpu else "unet")


@pytest.mark.parametrize("step_s, expected", [(0.2, (128, 32)), (5.0, (64, 32))])
def test_without_a_gpu_a_cpu_too_slow_for_the_recipe_gets_the_slow_cpu_recipe(monkeypatch, capsys, step_s, expected):
    """The CPU recipe is timed (here: forced to a figure, never the machine's speed); when fewer steps than
    min_steps fit in the budget, the "auto" settings come from the slow-CPU recipe; set ones stay."""
    monkeypatch.setattr(budget.devices, "gpu", lambda: None)
    timed = []
    monkeypatch.setattr(budget, "seconds_per_step", lambda config, n_timed=5: timed.append(config) or step_s)
    build = lambda IMG_SIZE, DISC_FILTERS: CycleGANConfig(**{**TINY, "input_dim": (IMG_SIZE, IMG_SIZE, 3)})  # noqa: E731
    chosen = budget.for_this_machine(dict(IMG_SIZE="auto", DISC_FILTERS="auto"), gpu=dict(IMG_SIZE=256, DISC_FILTERS=64),
                                     cpu=dict(IMG_SIZE=128, DISC_FILTERS=32), slow_cpu=dict(IMG_SIZE=64, DISC_FILTERS=32),
                                     build=build, budget_minutes=10, min_steps=600)
    assert chosen == expected and timed[0].input_dim == (128, 128, 3)   # the CPU recipe is what was timed
    out = capsys.readouterr().out
    assert ("slow-CPU recipe" in out) == (expected[0] == 64) and f"IMG_SIZE = {expected[0]}" in out
    assert budget.for_this_machine(dict(IMG_SIZE=96, DISC_FILTERS="auto"), gpu={}, cpu=dict(IMG_SIZE=128, DISC_FILTERS=32),
                                   slow_cpu=dict(IMG_SIZE=64, DISC_FILTERS=16), build=build, min_steps=600) == \
        (96, 32 if step_s < 1 else 16)
    monkeypatch.setattr(budget.devices, "gpu", lambda: {"name": "a GPU", "compute_capability": None})
    timed.clear()
    assert budget.for_this_machine(dict(IMG_SIZE="auto"), gpu=dict(IMG_SIZE=256), cpu=dict(IMG_SIZE=128),
                                   slow_cpu=dict(IMG_SIZE=64), build=build) == (256,) and not timed   # a GPU: no timing


@pytest.mark.parametrize("kind, generator, size, expected", [
    ("avx2", "resnet", 128, 16.0), ("avx512", "resnet", 128, 6.0), ("avx512", "resnet", 256, 6.0 * 1.24),
    ("avx512", "unet", 128, 2.7), ("avx2", "unet", 128, None)])
def test_the_first_step_estimate_is_a_measured_figure_for_this_cpu_kind_or_none(monkeypatch, kind, generator,
                                                                              size, expected):
    monkeypatch.setenv("CYCLEGAN_CPU_KIND", kind)   # forced: never the machine's own CPU
    monkeypatch.setattr(budget.devices, "gpu", lambda: None)
    config = CycleGANConfig(input_dim=(size, size, 3), generator_type=generator)
    estimate = budget.first_step_estimate(config)
    assert estimate == (pytest.approx(expected) if expected else None)
    assert budget.first_step_estimate(config, measured=3.2) == 3.2   # the run's own figure wins
    note = budget.first_step_note(config)
    assert note.startswith("Preparing the training graph")
    assert (f"about {expected:.0f} s here (measured on this kind of CPU)" in note) if expected else \
        ("a --resume of this run will say how long" in note)
