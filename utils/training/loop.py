"""One training session of a run: the book's loop of steps, with its logs, pictures and checkpoints.

`TrainingLoop(gan, loader, run, meta, settings, ...)` trains from the model's position (epoch,
batch, step) to the end of the schedule or `settings.max_steps`: every step it sets the paper's
learning rate, calls `CycleGAN.train_step`, stops at the first NaN or inf loss before anything of
that step is saved (the NaN guard, below) and logs the losses (CSV and TensorBoard); every sample
interval it draws the reconstruction grid of the fixed test images, the loss curves, the GIF and
the results page; every checkpoint interval it saves a checkpoint. Ctrl-C or SIGTERM finishes the
step, saves and stops (`StopRequest`). `utils.training.trainer.train` sets a session up and runs it.

The NaN guard: a run stops at its first non-finite loss or diverged weight, since a NaN run must
never report success or save its state. Once a loss is NaN or inf the weights are (or soon will be) too, and every later checkpoint would
rotate a good one away. `check_losses` runs on every step's losses (already Python floats, so it
costs nothing); the training loop stops before it logs the row or saves a checkpoint, so the
checkpoints on disk are the last good state. `check_weights` runs before each checkpoint: a weight
above models/checkpoint_checks.MAX_WEIGHT (a learning rate far too high) stops the run the same way, even
while the losses are still finite. The message names the cause it finds (`diagnose`): an image pool
holding NaN or inf, a network's weights, or only the losses.
"""

import contextlib
import dataclasses
import datetime
import math
import signal
import sys
import threading
import time

import numpy as np
from tqdm.auto import tqdm

from utils.training import checkpoint
from utils.training.checkpoint_checks import NETWORKS, weight_problem
from utils.runtime.disk_space import DiskFullError, disk_full_error, is_disk_full
from utils import plots
from utils.cli import UserError, wants_bar  # noqa: F401  (trainer.py and the tests ask loop.wants_bar)
from utils.images import to_model_channels
from utils.runtime.files import write_json
from utils.training import page, run_folder as layout
from utils.training.budget import OVERHEAD, first_step_note, fit_schedule
from utils.training.logs import LossLog, TensorBoardLog

LOG_INTERVAL = 100   # steps between progress lines when there is no progress bar (a log file)
# With a time budget the step budget is re-planned once, after this many timed steps (or a tenth of the
# session's, if more): from the steps of this run, not the few a notebook timed before it (keep_to_budget)
REPLAN_AFTER = 20


def match_channels(imgs, channels):
    """RGB batches from the loader -> grayscale when the model takes one channel (utils/images.py)."""
    return to_model_channels(np.asarray(imgs, np.float32), channels)


class StopRequest:
    """While active, Ctrl-C (SIGINT) and SIGTERM (sent by `timeout`, job schedulers, `docker stop` and
    notebook kernels) only set a flag: the loop finishes its step, saves and stops. The same signal
    again interrupts at once. Only the main thread can hold signal handlers."""

    NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}

    def __init__(self):
        self.requested = None   # the name of the signal that asked to stop
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = {signum: signal.signal(signum, self._handle) for signum in self.NAMES}
        return self

    def _handle(self, signum, frame):
        self.requested = name = self.NAMES[signum]
        fallback = signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
        signal.signal(signum, self._previous.get(signum) or fallback)
        print(f"\n{name}: finishing this step and saving a checkpoint ({name} again to abort without saving)",
              file=sys.stderr, flush=True)

    def __exit__(self, *exc):
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)


class TrainingLoop:
    """One session of a run: from the model's (epoch, batch, step) to the end or max_steps."""

    def __init__(self, gan, loader, run, meta, settings, grids, progress, callbacks, log_interval=LOG_INTERVAL,
                 time_budget_minutes=None):
        """meta: the run's config.json (dataset, sessions); settings: its TrainingSettings (with
        steps_per_epoch and total_epochs); grids: the fixed test images (A, B) of the grids;
        time_budget_minutes: this session's minutes, kept by re-planning its steps once (keep_to_budget)."""
        self.gan, self.loader, self.folder, self.meta, self.settings = gan, loader, run, meta, settings
        self.grid_A, self.grid_B = grids
        self.progress, self.callbacks, self.log_interval = progress, callbacks, log_interval
        self.bar = None
        self.total_epochs = settings.total_epochs
        self.steps_per_epoch = settings.steps_per_epoch
        total = self.total_epochs * self.steps_per_epoch
        max_steps = settings.max_steps
        self.last_step = min(total, max_steps) if max_steps is not None else total
        resumed = gan.step > 0
        self.log = LossLog(run / layout.LOSSES_CSV, keep_until_step=gan.step)
        self.tensorboard = TensorBoardLog(run / layout.LOGS, start_step=gan.step + 1 if resumed else None)
        self.session_start = time.time()
        self.elapsed_before = self.log.elapsed_s
        self.timed_since = None   # (time, step) the time left is measured from: after the graph is prepared
        self.time_budget_s = None if time_budget_minutes is None else 60.0 * time_budget_minutes
        self.replanned = False

    def run(self):
        gan = self.gan
        try:
            with StopRequest() as stop, self._progress_bar():
                if gan.step == 0 and not layout.grid_paths(self.folder):
                    checkpoint.save(gan, self.folder / layout.WEIGHTS)   # resumable from its first second
                    self.sample()                                     # the "before" picture
                finished = self._epochs(stop)
                self.finish(interrupted=None if finished else stop.requested)
        except NonFiniteLossError as error:
            self._write_status(f"stopped: {str(error).split('. ')[0]}")   # "training diverged at step N: cause"
            raise
        except OSError as error:
            layout.remove_temporary_files(self.folder)   # a full disk must not stay full of half files
            if is_disk_full(error) and not isinstance(error, DiskFullError):
                raise disk_full_error(error, error.filename or self.folder, self.last_checkpoint()) from None
            raise
        finally:
            self._close_logs()

    def _close_logs(self):
        """Close the CSV and TensorBoard files; a failure here (a full disk) is a warning, so it cannot
        hide the error that stopped the run."""
        for log in (self.log, self.tensorboard):
            try:
                log.close()
            except Exception as error:  # noqa: BLE001  (TensorBoard raises TensorFlow's own error class on a full disk)
                print(f"warning: could not close {type(log).__name__}: {error}", file=sys.stderr, flush=True)

    def last_checkpoint(self):
        """The newest good checkpoint of this run (verified; None before the first)."""
        return checkpoint.newest_saved(self.folder / layout.WEIGHTS)

    def _write_status(self, state):
        try:
            page.write_index(self.folder, status=self._status(state))
        except OSError:
            pass   # the page is a convenience; the error being raised matters more

    def _epochs(self, stop):
        """Train until the end of the schedule or max_steps (True), or a stop request (False)."""
        gan = self.gan
        while gan.epoch < self.total_epochs and gan.step < self.last_step:
            epoch, start = gan.epoch, gan.batch
            n_steps = min(self.steps_per_epoch - start, self.last_step - gan.step)
            batches = self.loader.load_batch(self.settings.batch_size, epoch=epoch, start_batch=start)
            try:
                for batch_index, (imgs_A, imgs_B) in zip(range(start, start + n_steps), batches):
                    row = self.step(epoch, batch_index, imgs_A, imgs_B)
                    self._report(row)
                    if any(callback(gan, row) for callback in self.callbacks):
                        return True
                    if stop.requested:
                        return False
                    if gan.step >= self.last_step:   # re-planned shorter within this epoch (keep_to_budget)
                        break
            finally:
                batches.close()   # stops the loader's background thread
        return True

    def step(self, epoch, batch_index, imgs_A, imgs_B):
        """One training step at (epoch, batch_index): learning rate, train_step, logs, pictures, checkpoint."""
        gan = self.gan
        lr = gan.set_learning_rate(epoch + batch_index / self.steps_per_epoch)
        channels = gan.config.input_dim[-1]
        # The session's first step prepares the training graph, unless a notebook's timing did (budget.py)
        first = self.timed_since is None and gan.combined.trace_count == 0
        if self.timed_since is None and not first:
            self.timed_since = (time.time(), gan.step)
        if first:
            self._say(first_step_note(gan.config, self._measured_first_step()))
        started = time.time()
        losses = gan.train_step(match_channels(imgs_A, channels), match_channels(imgs_B, channels))
        if first:   # recorded in config.json: the next --resume of this run says how long it took
            self.meta["sessions"][-1]["first_step_s"] = round(time.time() - started, 1)
            self.timed_since = (time.time(), gan.step)
            write_json(self.folder / layout.CONFIG, self.meta)
        # NaN or inf: stop before this step is logged or checkpointed (the saved ones stay the good ones)
        check_losses(gan.step, losses, self.last_checkpoint, gan)
        # The model's position is the next batch to train: what a checkpoint resumes from.
        gan.epoch, gan.batch = (epoch + 1, 0) if batch_index + 1 == self.steps_per_epoch else (epoch, batch_index + 1)
        now = time.time()
        row = {"step": gan.step, "epoch": epoch, "batch": batch_index, "learning_rate": lr, "wall_time": now,
               "elapsed_s": self.elapsed_before + now - self.session_start, **losses}
        self.log.append(row)
        self.tensorboard.scalars(gan.step, {**{f"loss/{k}": v for k, v in losses.items()}, "learning_rate": lr})
        self.keep_to_budget()
        if gan.step % self.settings.sample_interval == 0:
            self.sample()
        if gan.step % self.settings.checkpoint_interval == 0:
            check_weights(gan, self.last_checkpoint)   # finite losses, yet weights of 1e30: not a good checkpoint
            checkpoint.save(gan, self.folder / layout.WEIGHTS)
        return row

    def keep_to_budget(self):
        """With a time budget: once REPLAN_AFTER steps (or a tenth of the session's) are timed, plan the steps
        that fit in what is left of it from their speed (x budget.OVERHEAD, the pictures and checkpoints),
        so that a plan timed on a few steps, on a machine busier or idler than it looked, still keeps to
        the budget. A run at a constant learning rate gets the steps that fit (up to where the decay would
        begin); a fitted schedule (budget.fit_schedule) is fitted again while its decay has not begun.
        Recorded in config.json (max_steps; epochs and decay_epochs when refitted) and said in one line."""
        if self.time_budget_s is None or self.replanned or self.timed_since is None:
            return
        since, from_step = self.timed_since
        timed = self.gan.step - from_step
        if timed < max(REPLAN_AFTER, (self.last_step - from_step) // 10):
            return
        self.replanned = True
        now = time.time()
        step_s = (now - since) / timed
        fits = self.gan.step + max(0, int((self.time_budget_s - (now - self.session_start)) / (step_s * OVERHEAD)))
        config, per_epoch = self.gan.config, self.steps_per_epoch
        decay_from = config.epochs * per_epoch
        if self.last_step <= decay_from:   # the plan never reaches the decay: keep it that way
            last, refit = max(self.gan.step, min(fits, decay_from, self.total_epochs * per_epoch)), None
        else:   # the run ends with its decay: fit it again, if its decay has not begun and stays ahead
            if fits < per_epoch:
                return
            refit = dataclasses.replace(config)
            last, shape = fit_schedule(refit, per_epoch, fits)
            if refit.epochs <= self.gan.epoch or (refit.epochs, refit.decay_epochs) == (config.epochs, config.decay_epochs):
                return
        if refit is None and abs(last - self.last_step) <= 0.1 * self.last_step:
            return   # within a tenth of the plan: keep it
        before, self.last_step = self.last_step, last
        if refit is not None:
            self.gan.config = refit
            self.meta["model"].update(epochs=refit.epochs, decay_epochs=refit.decay_epochs)
            self.total_epochs = self.settings.total_epochs = refit.epochs + refit.decay_epochs
        shape = "" if refit is None else f"; the schedule fitted again: {shape}"
        self.settings.max_steps = last
        self.meta["training"] = self.settings.to_dict()
        self.meta["sessions"][-1]["replanned"] = {"at_step": self.gan.step, "s_per_step": round(step_s, 4),
                                                  "max_steps_before": before, "max_steps": last}
        write_json(self.folder / layout.CONFIG, self.meta)
        if self.bar is not None:
            self.bar.total = last
            self.bar.refresh()
        self._say(f"Re-planned to keep to the {self.time_budget_s / 60:g}-minute budget: {step_s:.3g} s a step in "
                  f"this run, so {last:,} steps instead of {before:,}{shape}.")

    @contextlib.contextmanager
    def _progress_bar(self):
        """One bar for the whole session, in steps (tqdm's own time left), or None in line mode."""
        if not self.progress:   # already wants_bar's answer (trainer.py)
            yield None
            return
        self.bar = tqdm(total=self.last_step, initial=self.gan.step, desc=self.meta["dataset"], unit="step",
                        dynamic_ncols=True, leave=True, disable=not wants_bar(self.progress))
        try:
            yield self.bar
        finally:
            self.bar.close()
            self.bar = None

    def _report(self, row):
        """After a step: the bar's losses and epoch, or in line mode one line every log_interval steps."""
        losses = (f"D {row['d_loss']:.3f}, G {row['g_loss']:.3f}, "
                  f"cycle {row['reconstr_A'] + row['reconstr_B']:.3f}")
        epoch = f"{row['epoch'] + 1}/{self.total_epochs}"
        if self.bar is not None:
            self.bar.set_postfix_str(f"epoch {epoch}, {losses}", refresh=False)
            self.bar.update(1)
        elif self.gan.step % self.log_interval == 0 or self.gan.step == self.last_step:
            print(f"step {self.gan.step}/{self.last_step} (epoch {epoch}): {losses}, left {self._time_left()}",
                  flush=True)

    def _time_left(self):
        """From the steps after the first (which also prepares the graph), so the first does not inflate it."""
        if self.timed_since is None or self.gan.step - self.timed_since[1] < 2:
            return "?"
        since, step = self.timed_since
        seconds = (time.time() - since) / (self.gan.step - step) * (self.last_step - self.gan.step)
        return str(datetime.timedelta(seconds=int(seconds)))

    def _measured_first_step(self):
        """This run's first step in an earlier session (config.json), or None."""
        earlier = [s.get("first_step_s") for s in self.meta.get("sessions", [])[:-1]]
        return next((seconds for seconds in reversed(earlier) if isinstance(seconds, (int, float))), None)

    def _say(self, line):
        """A line that does not break the progress bar."""
        if self.bar is not None:
            self.bar.write(line)
        else:
            print(line, flush=True)

    def sample(self):
        """Grid of the fixed test images, loss curves, GIF, TensorBoard image, results page."""
        gan, run = self.gan, self.folder
        progress = gan.epoch + gan.batch / self.steps_per_epoch
        title = f"{self.meta['dataset']}: step {gan.step}, epoch {progress:.2f}"
        grid = plots.save_reconstruction_grid(gan, self.grid_A, self.grid_B, layout.grid_path(run, gan.step), title)
        self.tensorboard.image(gan.step, "reconstruction_grid", grid)
        self.tensorboard.flush()
        if self.log.history["step"]:
            plots.save_loss_curves(self.log.history, run / layout.LOSS_PLOT, title=f"{self.meta['dataset']}: losses")
        plots.save_grid_animation(layout.grid_paths(run), run / layout.ANIMATION)
        page.write_index(run, status=self._status())

    def _status(self, final=None):
        gan = self.gan
        state = final or f"training: step {gan.step} of {self.last_step}"
        epochs_done = gan.epoch + gan.batch / self.steps_per_epoch
        return f"{state}, {epochs_done:.2f} of {self.total_epochs} epochs, learning rate {gan.learning_rate:.3g}"

    def finish(self, interrupted):
        """Last checkpoint and pictures; say where they are (and how to resume after Ctrl-C or SIGTERM).

        interrupted: None when the run ended, else the name of the signal that stopped it."""
        gan, run = self.gan, self.folder
        check_weights(gan, self.last_checkpoint)
        checkpoint.save(gan, run / layout.WEIGHTS)
        if layout.latest_grid(run) != layout.grid_path(run, gan.step):
            self.sample()
        state = f"stopped by {interrupted} at step {gan.step}" if interrupted else f"finished: {gan.step} steps"
        page.write_index(run, status=self._status(state))
        minutes = (time.time() - self.session_start) / 60
        print(f"\n{state[0].upper() + state[1:]} ({minutes:.1f} min this session). Results: {run / layout.INDEX}",
              flush=True)
        if interrupted:
            print(f"Checkpoint saved. Resume with:  python train.py --resume {run}", flush=True)
            raise KeyboardInterrupt(f"training stopped at step {gan.step}; resume with train(None, None, "
                                    f"{str(run)!r}, resume=True)")


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
