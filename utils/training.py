"""The training loop used by `train.py`, the notebooks and the ablation runner.

`train(config, dataset)` makes a run folder (layout in utils/run_folder.py) and trains a CycleGAN
for config.epochs + config.decay_epochs epochs with the paper's schedule: the learning rate stays
constant for `epochs` epochs and decays linearly to 0 over `decay_epochs` more (paper section 4).
Around every `CycleGAN.train_step` it logs the losses (CSV and TensorBoard), and every sample
interval it draws the reconstruction grid of fixed test images, the loss curves, the GIF and the
results page; every checkpoint interval it saves a checkpoint.

`train(..., resume=True)` (or mode='load') goes on from the run's latest checkpoint: the data
loader replays the same stream from the checkpoint's (epoch, batch), the CSV is cut back to the
checkpoint's step, and the grids use the same test images. A run killed at any moment loses at most
the steps since its last checkpoint. Ctrl-C or SIGTERM saves a checkpoint first, then stops.

What else cannot go wrong silently: every setting is checked before a folder is made; the run
folder is locked while it trains (utils/run_lock.py), so a second trainer on it is refused; the
first NaN or inf loss stops the run before anything of that step is saved (utils/loss_guard.py);
a full disk removes the temporary files and names the last good checkpoint (utils/disk_space.py).
"""

import contextlib
import datetime
import importlib
import platform
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import keras
import numpy as np
from tqdm.auto import tqdm

from models import CycleGAN, CycleGANConfig
from utils import devices, distribution, plots, report, run_folder as layout
from models.disk_space import DiskFullError, disk_full_error, is_disk_full
from utils.loss_guard import NonFiniteLossError, check_losses
from utils.run_lock import RunLock
from utils.run_folder import new_run_folder  # noqa: F401  (part of this module's API)
from utils.run_logs import LossLog, TensorBoardLog

DEFAULTS = layout.TRAINING_DEFAULTS   # sample_interval 500, checkpoint_interval 1000, n_grid_images 2
# The synthetic stand-in of each real dataset, used when the real one is not downloaded.
SYNTHETIC_STAND_IN = {"apple2orange": "synthetic_apple2orange", "monet2photo": "synthetic_photo2painting"}
LOG_INTERVAL = 100   # steps between progress lines when there is no progress bar (a log file)


def train(model_config, dataset, run_folder=None, *, data_root="data", run_root="run/cyclegan", batch_size=1,
          sample_interval=None, checkpoint_interval=None, max_steps=None, resume=False, progress="auto",
          n_grid_images=None, callbacks=None, mode=None, preprocess=None, log_interval=None):
    """Train a CycleGAN on `dataset` in a run folder; returns the run folder's Path.

    model_config: a `CycleGANConfig`, a dict of its fields, or a built `CycleGAN` (trained in place,
        e.g. the notebook's `gan` after its summaries). Ignored when resuming (None is fine): a
        resumed run uses the settings stored in its folder.
    dataset: a folder name under data_root (trainA, trainB, testA, testB). A synthetic dataset
        (utils.synthetic) is generated at the config's image size if missing.
    run_folder: None makes a new `<run_root>/<NNNN>_<dataset>/`; resuming needs the folder.
    batch_size, sample_interval, checkpoint_interval, n_grid_images: None takes DEFAULTS (the
        run's stored values when resuming).
    max_steps: stop after this many steps in total (an ablation's step budget); None: all epochs.
    preprocess: how a training image becomes a crop (utils/data_loader.PREPROCESS; default
        resize_and_crop, the paper's jitter; 'crop' for high-resolution photos). Kept in the run.
    resume / mode: mode='build' (default) starts a run, mode='load' or resume=True continues one.
    progress: one progress bar for the whole run, in steps, with the losses, the epoch and the time
        left (True); a line every `log_interval` steps instead (False); 'auto' (default): the bar
        on a terminal or in a notebook, lines when the output goes to a file.
    log_interval: steps between those lines (default LOG_INTERVAL, 100).
    callbacks: functions called after every step as `callback(gan, row)`, row = the step's CSV row
        (step, epoch, learning_rate, losses by name); one that returns True stops the training.
    """
    if mode not in (None, "build", "load"):
        raise ValueError(f"mode={mode!r}: must be 'build' (start a run) or 'load' (resume one)")
    resume = resume or mode == "load"
    if resume:
        if run_folder is None:
            raise ValueError("resuming needs the run folder, e.g. train(None, None, 'run/cyclegan/0001_apple2orange', "
                             "resume=True)")
        meta = layout.read_run_config(run_folder)
        if dataset not in (None, meta["dataset"]):
            raise ValueError(f"{run_folder} is a run on {meta['dataset']!r}, not {dataset!r}")
        config, dataset, settings = CycleGANConfig.from_dict(meta["model"]), meta["dataset"], meta["training"]
        given = {"sample_interval": sample_interval, "checkpoint_interval": checkpoint_interval,
                 "max_steps": max_steps, "n_grid_images": n_grid_images}
        settings.update({k: v for k, v in given.items() if v is not None})  # the caller may change these
    else:
        config = _as_config(model_config)
        given = {"batch_size": batch_size, "sample_interval": sample_interval,
                 "checkpoint_interval": checkpoint_interval, "max_steps": max_steps, "n_grid_images": n_grid_images}
        settings = {k: DEFAULTS[k] if v is None else v for k, v in given.items()}
        settings["preprocess"] = preprocess or DEFAULTS["preprocess"]
    check_settings(settings)
    n_devices = distribution.device_count() if config.data_parallel else 1
    if settings["batch_size"] % n_devices:
        raise ValueError(f"batch_size={settings['batch_size']}: data_parallel splits each batch across {n_devices} "
                         f"devices, so the batch size must be a multiple of {n_devices} (e.g. --batch-size {n_devices})")
    loader = open_dataset(dataset, data_root, config.input_dim,    # before any folder: a missing dataset stops here
                          settings.get("preprocess", DEFAULTS["preprocess"]))

    created = not resume and (run_folder is None or not Path(run_folder).exists())
    if resume:
        run = Path(run_folder)
    else:
        run = Path(run_folder) if run_folder is not None else new_run_folder(run_root, dataset)
    lock, loop = RunLock(run), None
    try:
        lock.acquire()   # one trainer per run folder: a second one stops here, naming the first
        loop = _start_session(model_config, config, dataset, run, resume, loader, settings, progress, callbacks,
                              data_root, meta if resume else None, log_interval)
    except BaseException as error:
        if created:   # a folder this call made and that never trained: leave no orphan behind
            lock.release()
            shutil.rmtree(run, ignore_errors=True)
            raise
        if lock.held:
            layout.remove_temporary_files(run)
        lock.release()
        if is_disk_full(error) and not isinstance(error, DiskFullError):
            raise disk_full_error(error, error.filename or run) from None
        raise
    try:
        loop.run()
    finally:
        lock.release()
    return run


def check_settings(settings):
    """Raise ValueError naming the first training setting that is not a positive integer."""
    for name in ("batch_size", "sample_interval", "checkpoint_interval", "n_grid_images", "max_steps"):
        value = settings.get(name)
        if name == "max_steps" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name}={value!r}: must be an integer >= 1" +
                             (" (or None: all epochs)" if name == "max_steps" else ""))
        settings[name] = int(value)


def _start_session(model_config, config, dataset, run, resume, loader, settings, progress, callbacks, data_root,
                   meta, log_interval=None):
    """Write the run's config.json, build or restore the model and pick the grid images: a loop to run."""
    if not resume:
        if (run / layout.CONFIG).exists():
            raise ValueError(f"{run} already holds a run: resume it with resume=True "
                             f"(python train.py --resume {run}) or choose another folder")
        for sub in (layout.IMAGES, layout.WEIGHTS, layout.LOGS):
            (run / sub).mkdir(parents=True, exist_ok=True)
        meta = {"dataset": dataset, "created": _now(), "model": config.to_dict(), "training": settings,
                "environment": environment()}
    settings["data_root"] = str(data_root)
    settings["steps_per_epoch"] = loader.n_batches(settings["batch_size"])
    settings["total_epochs"] = config.epochs + config.decay_epochs
    meta.setdefault("sessions", []).append({"started": _now()})
    layout.write_json(run / layout.CONFIG, meta)

    gan = _model_for(model_config, config, run, resume)
    print(devices.device_line(gan.n_devices, gan.compute_dtype), flush=True)   # Keras takes a GPU by itself
    meta["sessions"][-1]["start_step"] = gan.step
    layout.write_json(run / layout.CONFIG, meta)
    grid_A, grid_B = _grid_images(loader, run, settings["n_grid_images"], config.input_dim[-1])
    return _TrainingLoop(gan, loader, run, meta, grid_A, grid_B, _wants_bar(progress), callbacks or [],
                         int(log_interval or LOG_INTERVAL))


def _as_config(model_config):
    if isinstance(model_config, CycleGAN):
        return model_config.config
    if isinstance(model_config, CycleGANConfig):
        return model_config
    if isinstance(model_config, dict):
        return CycleGANConfig.from_dict(model_config)
    raise TypeError(f"model_config must be a CycleGANConfig, a dict of its fields or a CycleGAN, "
                    f"got {type(model_config).__name__}")


def _model_for(model_config, config, run, resume):
    """The CycleGAN to train: the caller's or a new one; a resumed run restores its latest checkpoint."""
    weights = run / layout.WEIGHTS
    # any ckpt-* folder, even a damaged one: resume then uses the newest intact one or says none is
    # (starting over from step 0 would cut the run's losses.csv back to nothing)
    has_checkpoint = (weights / "latest").is_file() or any(weights.glob("ckpt-*"))
    if isinstance(model_config, CycleGAN):
        gan = model_config
        if not resume and gan.step > 0:
            raise ValueError(f"this CycleGAN has trained {gan.step} steps already: continue its run with "
                             "mode='load' and its run folder, or build a new CycleGAN to start a new run")
        if resume and has_checkpoint:
            gan.load_checkpoint(weights)
        return gan
    if resume and has_checkpoint:
        return CycleGAN.from_checkpoint(weights)
    return CycleGAN(config)   # a new run, or one killed before its first checkpoint


def open_dataset(dataset, data_root, input_dim, preprocess="resize_and_crop"):
    """A DataLoader on data_root/dataset at the model's image size; a synthetic dataset is made if missing."""
    from utils.data_loader import DataLoader
    from utils.synthetic import SYNTHETIC_DATASETS, ensure_size
    if dataset in SYNTHETIC_DATASETS:   # at the model's size: a copy of another size is made again, saying so
        ensure_size(dataset, data_root=data_root, size=input_dim[0])
    return DataLoader(dataset, img_res=tuple(input_dim[:2]), data_root=data_root, seed=0, preprocess=preprocess)


def pick_dataset(name, data_root="data"):
    """`name` if data_root/name exists, else its synthetic stand-in (saying so and how to download)."""
    if (Path(data_root) / name).is_dir():
        print(f"Using the real dataset {name} from {Path(data_root) / name}.")
        return name
    stand_in = SYNTHETIC_STAND_IN.get(name, name)
    print(f"{Path(data_root) / name} is not there, so this uses the synthetic stand-in {stand_in} "
          f"(generated on the fly).\nFor the real data run, from the repository root: "
          f"python -m utils.download {name}")
    return stand_in


def load_run(run_folder):
    """The CycleGAN of a run folder at its latest checkpoint (or of a checkpoint folder itself)."""
    path = Path(run_folder)
    return CycleGAN.from_checkpoint(path / layout.WEIGHTS if (path / layout.WEIGHTS).is_dir() else path)


def save_checkpoint(gan, weights_dir):
    """`gan.save_checkpoint(weights_dir)`, also before the first step.

    Works around models/checkpoint.py: an optimizer is built (its moment variables made) at the
    first training step, and a checkpoint saved before that cannot be loaded, because `load` builds
    the optimizers first and then finds 2 saved variables for 22. Building them here, as `load`
    does, makes a step-0 checkpoint load like any other.
    """
    trainables = {"d_A": gan.d_A.trainable_variables, "d_B": gan.d_B.trainable_variables,
                  "combined": gan.combined.trainable_variables}
    for name, optimizer in gan.optimizers.items():
        if not optimizer.built:
            optimizer.build(trainables[name])
    return gan.save_checkpoint(weights_dir)


def environment():
    """Backend, library and Python versions, for config.json."""
    backend = keras.backend.backend()
    try:
        backend_version = importlib.import_module({"torch": "torch"}.get(backend, backend)).__version__
    except (ImportError, AttributeError):
        backend_version = None
    return {"backend": backend, "backend_version": backend_version, "keras": keras.__version__,
            "numpy": np.__version__, "python": platform.python_version(), "platform": platform.platform()}


def _now():
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def _grid_images(loader, run, n, channels):
    """The fixed test images of the grids: chosen evenly from the sorted test set at the start of a
    run and stored in the run folder, so a resumed run draws the same ones."""
    path = run / layout.GRID_INPUTS
    if path.exists():
        with np.load(path, allow_pickle=False) as stored:
            return stored["A"], stored["B"]
    images = {}
    for domain in ("A", "B"):
        paths = loader.test_paths(domain)
        if paths:
            picks = np.linspace(0, len(paths) - 1, min(n, len(paths))).round().astype(int)
            images[domain] = np.concatenate([loader.load_img(paths[i]) for i in picks])
        else:  # a dataset without a test split: the first training batch instead
            images[domain] = next(iter(loader.load_data(domain, batch_size=n, is_testing=False)))
        images[domain] = _match_channels(images[domain], channels)
    np.savez(path.with_suffix(".tmp.npz"), **images)
    path.with_suffix(".tmp.npz").replace(path)
    return images["A"], images["B"]


def _wants_bar(progress):
    """progress=True/False as given; 'auto': a bar on a terminal or in a Jupyter kernel, not in a log file."""
    if progress != "auto":
        return bool(progress)
    return "ipykernel" in sys.modules or bool(getattr(sys.stderr, "isatty", lambda: False)())


def _match_channels(imgs, channels):
    """RGB batches from the loader -> grayscale when the model takes one channel."""
    imgs = np.asarray(imgs, np.float32)
    return imgs.mean(axis=-1, keepdims=True) if channels == 1 and imgs.shape[-1] == 3 else imgs


class _StopRequest:
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


class _TrainingLoop:
    """One session of a run: from the model's (epoch, batch, step) to the end or max_steps."""

    def __init__(self, gan, loader, run, meta, grid_A, grid_B, progress, callbacks, log_interval=LOG_INTERVAL):
        self.gan, self.loader, self.folder, self.meta = gan, loader, run, meta
        self.grid_A, self.grid_B = grid_A, grid_B
        self.progress, self.callbacks, self.log_interval = progress, callbacks, log_interval
        self.bar = None
        self.settings = meta["training"]
        cfg = gan.config
        self.total_epochs = cfg.epochs + cfg.decay_epochs
        self.steps_per_epoch = self.settings["steps_per_epoch"]
        total = self.total_epochs * self.steps_per_epoch
        max_steps = self.settings["max_steps"]
        self.last_step = min(total, max_steps) if max_steps is not None else total
        resumed = gan.step > 0
        self.log = LossLog(run / layout.LOSSES_CSV, keep_until_step=gan.step)
        self.tensorboard = TensorBoardLog(run / layout.LOGS, start_step=gan.step + 1 if resumed else None)
        self.session_start = time.time()
        self.elapsed_before = self.log.elapsed_s

    def run(self):
        gan = self.gan
        try:
            with _StopRequest() as stop, self._progress_bar():
                if gan.step == 0 and not layout.grid_paths(self.folder):
                    save_checkpoint(gan, self.folder / layout.WEIGHTS)   # resumable from its first second
                    self.sample()                                     # the "before" picture
                finished = self._epochs(stop)
                self.finish(interrupted=None if finished else stop.requested)
        except NonFiniteLossError:
            self._write_status(f"stopped: a loss became NaN or inf at step {gan.step}")
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
        """The newest checkpoint folder of this run (None before the first)."""
        found = sorted((self.folder / layout.WEIGHTS).glob("ckpt-*/state.json"))
        return found[-1].parent if found else None

    def _write_status(self, state):
        try:
            report.write_index(self.folder, status=self._status(state))
        except OSError:
            pass   # the page is a convenience; the error being raised matters more

    def _epochs(self, stop):
        """Train until the end of the schedule or max_steps (True), or a stop request (False)."""
        gan = self.gan
        while gan.epoch < self.total_epochs and gan.step < self.last_step:
            epoch, start = gan.epoch, gan.batch
            n_steps = min(self.steps_per_epoch - start, self.last_step - gan.step)
            batches = self.loader.load_batch(self.settings["batch_size"], epoch=epoch, start_batch=start)
            try:
                for batch_index, (imgs_A, imgs_B) in zip(range(start, start + n_steps), batches):
                    row = self.step(epoch, batch_index, imgs_A, imgs_B)
                    self._report(row)
                    if any(callback(gan, row) for callback in self.callbacks):
                        return True
                    if stop.requested:
                        return False
            finally:
                batches.close()   # stops the loader's background thread
        return True

    def step(self, epoch, batch_index, imgs_A, imgs_B):
        """One training step at (epoch, batch_index): learning rate, train_step, logs, pictures, checkpoint."""
        gan = self.gan
        lr = gan.set_learning_rate(epoch + batch_index / self.steps_per_epoch)
        channels = gan.config.input_dim[-1]
        # data_parallel: an epoch's smaller last batch is topped up to split across the devices
        imgs_A, imgs_B = (distribution.fill_to_multiple(_match_channels(imgs, channels), gan.n_devices)
                          for imgs in (imgs_A, imgs_B))
        losses = gan.train_step(imgs_A, imgs_B)
        # NaN or inf: stop before this step is logged or checkpointed (the saved ones stay the good ones)
        check_losses(gan.step, losses, self.last_checkpoint)
        # The model's position is the next batch to train: what a checkpoint resumes from.
        gan.epoch, gan.batch = (epoch + 1, 0) if batch_index + 1 == self.steps_per_epoch else (epoch, batch_index + 1)
        now = time.time()
        row = {"step": gan.step, "epoch": epoch, "batch": batch_index, "learning_rate": lr, "wall_time": now,
               "elapsed_s": self.elapsed_before + now - self.session_start, **losses}
        self.log.append(row)
        self.tensorboard.scalars(gan.step, {**{f"loss/{k}": v for k, v in losses.items()}, "learning_rate": lr})
        if gan.step % self.settings["sample_interval"] == 0:
            self.sample()
        if gan.step % self.settings["checkpoint_interval"] == 0:
            save_checkpoint(gan, self.folder / layout.WEIGHTS)
        return row

    @contextlib.contextmanager
    def _progress_bar(self):
        """One bar for the whole session, in steps (tqdm's own time left), or None in line mode."""
        if not self.progress:
            yield None
            return
        self.bar = tqdm(total=self.last_step, initial=self.gan.step, desc=self.meta["dataset"], unit="step",
                        dynamic_ncols=True, leave=True)
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
        done = self.gan.step - self.meta["sessions"][-1]["start_step"]
        if done < 2:
            return "?"
        seconds = (time.time() - self.session_start) / done * (self.last_step - self.gan.step)
        return str(datetime.timedelta(seconds=int(seconds)))

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
        report.write_index(run, status=self._status())

    def _status(self, final=None):
        gan = self.gan
        state = final or f"training: step {gan.step} of {self.last_step}"
        epochs_done = gan.epoch + gan.batch / self.steps_per_epoch
        return f"{state}, {epochs_done:.2f} of {self.total_epochs} epochs, learning rate {gan.learning_rate:.3g}"

    def finish(self, interrupted):
        """Last checkpoint and pictures; say where they are (and how to resume after Ctrl-C or SIGTERM).

        interrupted: None when the run ended, else the name of the signal that stopped it."""
        gan, run = self.gan, self.folder
        save_checkpoint(gan, run / layout.WEIGHTS)
        if layout.latest_grid(run) != layout.grid_path(run, gan.step):
            self.sample()
        state = f"stopped by {interrupted} at step {gan.step}" if interrupted else f"finished: {gan.step} steps"
        report.write_index(run, status=self._status(state))
        minutes = (time.time() - self.session_start) / 60
        print(f"\n{state[0].upper() + state[1:]} ({minutes:.1f} min this session). Results: {run / layout.INDEX}",
              flush=True)
        if interrupted:
            print(f"Checkpoint saved. Resume with:  python train.py --resume {run}", flush=True)
            raise KeyboardInterrupt(f"training stopped at step {gan.step}; resume with train(None, None, "
                                    f"{str(run)!r}, resume=True)")
