"""Save and resume: exact continuation, atomic writes, clear errors for a checkpoint of another config."""

import json

import numpy as np
import pytest

from models import CycleGAN
from utils.training import checkpoint as ckpt

TINY = dict(input_dim=(32, 32, 3), gen_n_filters=4, disc_n_filters=4, buffer_max_length=2, seed=3)


def batches(n):
    rng = np.random.default_rng(7)
    return [(rng.uniform(-1, 1, (1, 32, 32, 3)).astype("float32"),
             rng.uniform(-1, 1, (1, 32, 32, 3)).astype("float32")) for _ in range(n)]


@pytest.mark.long
def test_resumed_run_gives_the_same_losses_as_an_uninterrupted_one(tmp_path):
    data = batches(8)
    straight = CycleGAN(**TINY)
    expected = [straight.train_step(a, b) for a, b in data]

    first = CycleGAN(**TINY)
    for a, b in data[:4]:
        first.train_step(a, b)
    first.epoch, first.batch = 0, 4
    ckpt.save(first, tmp_path)
    del first

    resumed = ckpt.restore(tmp_path)
    assert (resumed.epoch, resumed.batch, resumed.step) == (0, 4, 4)
    got = [resumed.train_step(a, b) for a, b in data[4:]]
    for want, have in zip(expected[4:], got):
        for name in want:
            assert have[name] == pytest.approx(want[name], abs=1e-4), name


def test_checkpoint_holds_config_state_and_no_pickles(tmp_path):
    gan = CycleGAN(**TINY)
    gan.train_step(*batches(1)[0])
    path = ckpt.save(gan, tmp_path)
    assert path.name == "ckpt-00000001"
    assert sorted(p.name for p in path.iterdir()) == sorted(
        ["g_AB.weights.h5", "g_BA.weights.h5", "d_A.weights.h5", "d_B.weights.h5", "optimizers.npz",
         "pools.npz", "state.json"])
    state = json.loads((path / "state.json").read_text())
    assert state["config"]["gen_n_filters"] == 4 and state["step"] == 1
    for name in ("optimizers.npz", "pools.npz"):
        with np.load(path / name, allow_pickle=False) as arrays:
            assert all(arrays[key].dtype != object for key in arrays.files)
    assert (tmp_path / "latest").read_text() == "ckpt-00000001"


def test_loading_into_another_architecture_names_the_mismatch(tmp_path):
    ckpt.save(CycleGAN(**TINY), tmp_path)
    other = CycleGAN(**{**TINY, "gen_n_filters": 8})
    with pytest.raises(ValueError, match=r"gen_n_filters: 4 != 8.*checkpoint.restore"):
        ckpt.load(other, tmp_path)


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint in"):
        ckpt.restore(tmp_path)


@pytest.mark.long
def test_a_save_killed_midway_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    gan = CycleGAN(**TINY)
    data = batches(2)
    gan.train_step(*data[0])
    ckpt.save(gan, tmp_path)
    gan.train_step(*data[1])

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed while writing")
    monkeypatch.setattr(ckpt.np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save(gan, tmp_path)
    monkeypatch.undo()

    assert ckpt.resolve(tmp_path).name == "ckpt-00000001"
    assert ckpt.restore(tmp_path).step == 1
    ckpt.save(gan, tmp_path)              # the next save cleans the half-written folder
    assert not list(tmp_path.glob(".tmp-*"))
    assert ckpt.resolve(tmp_path).name == "ckpt-00000002"


@pytest.mark.long
def test_only_the_newest_checkpoints_are_kept(tmp_path):
    gan = CycleGAN(**TINY)
    for a, b in batches(4):
        gan.train_step(a, b)
        ckpt.save(gan, tmp_path, keep=2)
    assert sorted(p.name for p in tmp_path.glob("ckpt-*")) == ["ckpt-00000003", "ckpt-00000004"]


@pytest.mark.long
def test_checkpoint_before_the_first_step_loads_and_trains(tmp_path):
    ckpt.save(CycleGAN(**TINY), tmp_path)
    gan = ckpt.restore(tmp_path)
    assert gan.step == 0
    assert set(gan.train_step(*batches(1)[0])) >= {"d_A", "g_loss"}
