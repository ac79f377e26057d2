"""Stop a run at its first non-finite loss: a NaN run must never report success or save its state.

Once a loss is NaN or inf the weights are (or soon will be) too, and every later checkpoint would
rotate a good one away. `check_losses` runs on every step's losses (already Python floats, so it
costs nothing); the training loop stops before it logs the row or saves a checkpoint, so the
checkpoints on disk are the last good state.
"""

import math

from utils.cli import UserError


class NonFiniteLossError(UserError, FloatingPointError):
    """A loss became NaN or inf; the message names the step and the loss."""


def check_losses(step, losses, last_checkpoint=None):
    """Raise NonFiniteLossError naming `step` and every loss in `losses` that is NaN or inf.

    last_checkpoint: a function returning the newest checkpoint, called only to word the error.
    """
    bad = {name: value for name, value in losses.items() if not math.isfinite(float(value))}
    if bad:
        names = ", ".join(f"{name} = {value}" for name, value in bad.items())
        safe = f"; the last good checkpoint is {last_checkpoint()}" if last_checkpoint else ""
        raise NonFiniteLossError(
            f"training diverged at step {step}: {names}. Nothing of this step was saved{safe}. "
            "Try a smaller --learning-rate or smaller loss weights (--lambda-*)")
