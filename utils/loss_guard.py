"""Stop a run at its first non-finite loss or diverged weight: a NaN run must never report success
or save its state.

Once a loss is NaN or inf the weights are (or soon will be) too, and every later checkpoint would
rotate a good one away. `check_losses` runs on every step's losses (already Python floats, so it
costs nothing); the training loop stops before it logs the row or saves a checkpoint, so the
checkpoints on disk are the last good state. `check_weights` runs before each checkpoint: a weight
above models/checkpoint_checks.MAX_WEIGHT (a learning rate far too high) stops the run the same way, even
while the losses are still finite. The message names the cause it finds (`diagnose`): an image pool
holding NaN or inf, a network's weights, or only the losses.
"""

import math

import numpy as np

from models.checkpoint_checks import NETWORKS, weight_problem
from utils.cli import UserError


class NonFiniteLossError(UserError, FloatingPointError):
    """A loss became NaN or inf, or the weights diverged; the message names the step and the cause."""


def diagnose(gan):
    """Where the NaN or inf is: an image pool, a network's weights (or a weight above MAX_WEIGHT), or None."""
    for pool in ("pool_A", "pool_B"):
        images, _ = getattr(gan, pool).get_state()
        if images.size and not np.all(np.isfinite(images)):
            return f"the image pool {pool} holds NaN or inf"
    for net in NETWORKS:
        problem = weight_problem(getattr(gan, net))
        if problem:
            return f"{net} {problem}"
    return None


def _advice(gan, last_checkpoint):
    safe = f"; the last good checkpoint is {last_checkpoint()}" if last_checkpoint else ""
    rate = gan.config.learning_rate if gan is not None else None
    smaller = f" (this run's is {rate:g}: resume with --resume RUN_FOLDER --learning-rate {rate / 10:g})" if rate else ""
    return f"Nothing of this step was saved{safe}. Try a smaller --learning-rate{smaller} or smaller loss weights"


def check_losses(step, losses, last_checkpoint=None, gan=None):
    """Raise NonFiniteLossError naming `step`, every loss in `losses` that is NaN or inf, and the cause.

    last_checkpoint: a function returning the newest good checkpoint, called only to word the error.
    gan: the model, looked into (`diagnose`) only when a loss is bad.
    """
    bad = {name: value for name, value in losses.items() if not math.isfinite(float(value))}
    if bad:
        names = ", ".join(f"{name} = {value}" for name, value in bad.items())
        cause = diagnose(gan) if gan is not None else None
        cause = f"; cause: {cause}" if cause else "; the weights and pools are finite: the losses overflowed"
        raise NonFiniteLossError(f"training diverged at step {step}: {names}{cause}. "
                                 f"{_advice(gan, last_checkpoint)} (--lambda-*)")


def check_weights(gan, last_checkpoint=None):
    """Raise NonFiniteLossError if a weight of `gan` is NaN, inf or above MAX_WEIGHT (called before a checkpoint)."""
    cause = diagnose(gan)
    if cause:
        raise NonFiniteLossError(f"training diverged at step {gan.step}: {cause}. {_advice(gan, last_checkpoint)}")
