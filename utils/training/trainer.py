"""Train a CycleGAN in a run folder: what `train.py`, the notebooks and the ablation runner call.

`train(config, dataset)` makes a run folder (layout in utils/training/run_folder.py) and trains for
config.epochs + config.decay_epochs epochs with the paper's schedule: the learning rate stays
constant for `epochs` epochs and decays linearly to 0 over `decay_epochs` more (paper section 4).
The steps, logs, pictures and checkpoints are utils/training/loop.py's; how the run trains (batch
size, intervals, step budget) is a `TrainingSettings` (utils/training/settings.py), saved with it.

`train(..., resume=True)` (the book's mode='load') goes on from the run's latest checkpoint: the
data loader replays the same stream from the checkpoint's (epoch, batch), the CSV is cut back to the
checkpoint's step, and the grids use the same test images. A run killed at any moment loses at most
the steps since its last checkpoint. Ctrl-C or SIGTERM saves a checkpoint first, then stops.

What else cannot go wrong silently: every setting is checked before a folder is made; the run
folder is locked while it trains (utils/training/lock.py), so a second trainer on it is refused; the
first NaN or inf loss stops the run before anything of that step is saved (utils/training/loop.py);
a full disk removes the temporary files and names the last good checkpoint (utils/runtime/disk_space.py).
"""

import contextlib
import dataclasses
import io
import shutil
import signal
import sys
import threading
from pathlib import Path

import numpy as np

from models import CycleGAN, CycleGANConfig
from models.directions import DOMAINS
from utils.datasets.loader import DataLoader
from utils.datasets.synthetic import SYNTHETIC_DATASETS, ensure_size
from utils.runtime import devices, executor
from utils.runtime.disk_space import DiskFullError, disk_full_error, is_disk_full
from utils.runtime.files import write_atomic, write_json
from utils.training import budget, run_folder as layout
from utils.training import checkpoint
from utils.training.checkpoint_checks import config_problem
from utils.training.lock import RunLock
from utils.training.loop import LOG_INTERVAL, TrainingLoop, match_channels, wants_bar
from utils.training.settings import TrainingSettings

# The synthetic stand-in of each real dataset, used when the real one is not downloaded.
SYNTHETIC_STAND_IN = {"apple2orange": "synthetic_apple2orange", "monet2photo": "synthetic_photo2painting"}


def train(model_config, dataset, run_folder=None, *, data_root="data", run_root="run/cyclegan", batch_size=None,
          sample_interval=None, checkpoint_interval=None, max_steps=None, resume=False, progress="auto",
          n_grid_images=None, callbacks=None, mode=None, preprocess=None, log_interval=None, learning_rate=None,
          fit_schedule=False, grid_files=None, time_budget_minutes=None):
    """Train a CycleGAN on `dataset` in a run folder; returns the run folder's Path.

    model_config: a `CycleGANConfig`, a dict of its fields, or a built `CycleGAN` (trained in place,
        e.g. the notebook's `gan` after its summaries). Ignored when resuming (None is fine): a
        resumed run uses the settings stored in its folder.
    dataset: a folder name under data_root (trainA, trainB, testA, testB). A synthetic dataset
        (utils.datasets.synthetic) is generated at the config's image size if missing.
    run_folder: None makes a new `<run_root>/<NNNN>_<dataset>/`; resuming needs the folder.
    batch_size, sample_interval, checkpoint_interval, n_grid_images, max_steps, preprocess: the
        `TrainingSettings` of the run (None: its defaults; when resuming, the run's stored values,
        of which the intervals, n_grid_images and max_steps may be changed).
    resume=True (or the book's mode='load') continues a run; False (mode='build') starts one.
    progress: one progress bar for the whole run, in steps, with the losses, the epoch and the time
        left (True); a line every `log_interval` steps instead (False); 'auto' (default): the bar
        on a terminal or in a notebook, lines when the output goes to a file.
    log_interval: steps between those lines (default LOG_INTERVAL, 100).
    fit_schedule: with max_steps, a new run shrinks the paper's schedule to that budget (half the epochs
        that fit at the full rate, half decaying to 0: utils/training/budget.fit_schedule, the notebooks'
        "auto"), so that it ends with the decay; without it (default) the paper's schedule is kept and
        the run stops at max_steps, still at the full learning rate. Recorded in config.json's epochs.
    time_budget_minutes: this session's minutes of training (the notebooks' BUDGET_MINUTES with MAX_STEPS "auto",
        budget.time_budget): once a few dozen steps are timed, the steps are planned again from their speed to
        fit what is left of it (TrainingLoop.keep_to_budget), said in one line and recorded in config.json.
        None (default): max_steps is kept as given.
    learning_rate: when resuming, a new Adam learning rate for the rest of the run (e.g. after it
        diverged), recorded in config.json (the model's and the session's "learning_rate").
    callbacks: functions called after every step as `callback(gan, row)`, row = the step's CSV row
        (step, epoch, learning_rate, losses by name); one that returns True stops the training.
    grid_files: (test A file, test B file), either None: drawn first in every grid of a new run (the
        book's test_A_file, test_B_file); the other grid images are chosen evenly from the test sets.
    """
    resume = _resumes(mode, resume, run_folder)
    if time_budget_minutes is not None and (isinstance(time_budget_minutes, bool)
                                            or not isinstance(time_budget_minutes, (int, float))
                                            or not 0 < time_budget_minutes < float("inf")):
        raise ValueError(f"time_budget_minutes={time_budget_minutes!r}: must be a number of minutes > 0, or None")
    gan, config = _model_and_config(model_config, resume)   # from here on one config, and the caller's model or None
    asked = {"sample_interval": sample_interval, "checkpoint_interval": checkpoint_interval,
             "max_steps": max_steps, "n_grid_images": n_grid_images}
    if resume:
        meta = layout.read_run_config(run_folder)
        if dataset not in (None, meta["dataset"]):
            raise ValueError(f"{run_folder} is a run on {meta['dataset']!r}, not {dataset!r}")
        problem = config_problem(meta.get("model"))
        if problem:
            raise ValueError(f"{Path(run_folder) / layout.CONFIG}: {problem}: the run's settings are damaged; "
                             "start a new run, or restore config.json from a copy")
        config, dataset = CycleGANConfig.from_dict(meta["model"]), meta["dataset"]
        if learning_rate is not None:   # only checked here, before anything is written; applied in _start_session
            dataclasses.replace(config, learning_rate=learning_rate)
        settings = TrainingSettings.from_dict(meta["training"]).changed(**asked)
    else:
        if learning_rate is not None:
            raise ValueError("learning_rate= changes the rate of a resumed run; a new run takes it in its config")
        meta = None
        asked.update(batch_size=batch_size, preprocess=preprocess)
        settings = TrainingSettings(**{name: value for name, value in asked.items() if value is not None})
    settings.check_devices(executor.device_count() if config.data_parallel else 1)
    settings.check_config(config)   # no epoch, or every loss weight 0: a run that would train nothing
    loader = open_dataset(dataset, data_root, config.input_dim, settings.preprocess)   # a missing dataset stops here
    settings.check_dataset(loader.n_A, loader.n_B, dataset)
    settings.steps_per_epoch = loader.n_batches(settings.batch_size)
    if fit_schedule:
        _fit_schedule(config, settings, resume)
    settings.data_root, settings.total_epochs = str(data_root), config.epochs + config.decay_epochs

    created = not resume and (run_folder is None or not Path(run_folder).exists())
    run = Path(run_folder) if run_folder is not None else layout.new_run_folder(run_root, dataset)
    lock, loop = RunLock(run), None
    try:
        with _sigterm_as_interrupt():   # until the loop's own handler: SIGTERM stops like Ctrl-C
            lock.acquire()   # one trainer per run folder: a second one stops here, naming the first
            meta = meta or _new_run(run, dataset, config)
            loop = _start_session(gan, config, run, meta, settings, loader, resume, progress, callbacks,
                                  log_interval, learning_rate if resume else None, grid_files, time_budget_minutes)
    except BaseException as error:
        if isinstance(error, KeyboardInterrupt):
            what = f"the new run folder {run} was removed" if created else f"nothing trained; resume {run} again"
            print(f"\nStopped before the first step: {what}.", file=sys.stderr, flush=True)
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


def _fit_schedule(config, settings, resume):
    """train(fit_schedule=True): the schedule shrunk to settings.max_steps, said in one line."""
    if resume:
        raise ValueError("fit_schedule=True shapes a new run's schedule; a resumed run keeps the one it started "
                         "with (its config.json)")
    if settings.max_steps is None:
        raise ValueError("fit_schedule=True needs max_steps (--max-steps N): the budget to fit the schedule to")
    schedule = (config.epochs + config.decay_epochs) * settings.steps_per_epoch
    if settings.max_steps >= schedule:
        print(f"The schedule ({schedule:,} steps) fits in max_steps={settings.max_steps:,} as it is.", flush=True)
        return
    settings.max_steps, shape = budget.fit_schedule(config, settings.steps_per_epoch, settings.max_steps)
    print(f"Schedule fitted to the budget: {settings.max_steps:,} steps ({shape}; "
          f"{settings.steps_per_epoch:,} steps an epoch).", flush=True)


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """Turn SIGTERM into KeyboardInterrupt while a run starts (lock taken, model built), so that it is
    cleaned up like Ctrl-C; the training loop then installs its own handler (utils/training/loop.py)."""
    if threading.current_thread() is not threading.main_thread():   # signals reach the main thread only
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt("SIGTERM")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _resumes(mode, resume, run_folder):
    """resume=True and the book's mode='load' mean the same; one answer, or an error naming the clash."""
    if mode not in (None, "build", "load"):
        raise ValueError(f"mode={mode!r}: must be 'build' (start a run) or 'load' (resume one)")
    if mode == "build" and resume:
        raise ValueError("mode='build' starts a run and resume=True continues one: give one of them")
    resume = bool(resume) or mode == "load"
    if resume and run_folder is None:
        raise ValueError("resuming needs the run folder, e.g. train(None, None, 'run/cyclegan/0001_apple2orange', "
                         "resume=True)")
    return resume


def _new_run(run, dataset, config):
    """The config.json of a new run (written by _start_session), its sub-folders made."""
    if (run / layout.CONFIG).exists():
        raise ValueError(f"{run} already holds a run: resume it with resume=True "
                         f"(python train.py --resume {run}) or choose another folder")
    for sub in (layout.IMAGES, layout.WEIGHTS, layout.LOGS):
        (run / sub).mkdir(parents=True, exist_ok=True)
    return {"dataset": dataset, "created": layout.now(), "model": config.to_dict(), "environment": layout.environment()}


def _start_session(gan, config, run, meta, settings, loader, resume, progress, callbacks, log_interval,
                   new_learning_rate=None, grid_files=None, time_budget_minutes=None):
    """Build or restore the model (`gan`: the caller's, or None), then record the session in config.json
    (a resume that fails to restore records nothing), pick the grid images: a loop to run."""
    started = layout.now()
    requested = config.mixed_precision   # before a restore replaces the model's config
    gan = _model_for(gan, config, run / layout.WEIGHTS, resume)
    session = {"started": started, "start_step": gan.step}
    if time_budget_minutes is not None:
        session["time_budget_minutes"] = time_budget_minutes
    if new_learning_rate is not None:   # the checkpoint's config has the old rate; set_learning_rate reads this
        gan.config = dataclasses.replace(gan.config, learning_rate=new_learning_rate)
        meta["model"]["learning_rate"] = session["learning_rate"] = new_learning_rate
    meta["training"] = settings.to_dict()
    meta.setdefault("sessions", []).append(session)
    write_json(run / layout.CONFIG, meta)
    print(devices.device_line(gan.n_devices, gan.compute_dtype), flush=True)   # Keras takes a GPU by itself
    warning = devices.precision_warning(requested, gan.compute_dtype)
    if warning:
        print(warning, flush=True)
    grids = _grid_images(loader, run, settings.n_grid_images, config.input_dim[-1], grid_files)
    return TrainingLoop(gan, loader, run, meta, settings, grids, wants_bar(progress), callbacks or [],
                        int(log_interval or LOG_INTERVAL), time_budget_minutes)


def _model_and_config(model_config, resume):
    """(the caller's CycleGAN or None, a CycleGANConfig or None): the one form of the model's settings
    that train() passes on. A dict is read once, here; a resumed run reads its config from its folder."""
    if isinstance(model_config, CycleGAN):
        return model_config, model_config.config
    if resume:   # the settings given are not used: the run's own are
        return None, None
    if isinstance(model_config, CycleGANConfig):
        return None, model_config
    if isinstance(model_config, dict):
        return None, CycleGANConfig.from_dict(model_config)
    raise TypeError(f"model_config must be a CycleGANConfig, a dict of its fields or a CycleGAN, "
                    f"got {type(model_config).__name__}")


def _model_for(gan, config, weights, resume):
    """The CycleGAN to train: the caller's or a new one; a resumed run restores its latest checkpoint
    (any saved one counts, even a damaged one: resume then uses the newest intact one or says none
    is, since starting over from step 0 would cut the run's losses.csv back to nothing)."""
    restore = resume and checkpoint.any_saved(weights)
    if gan is not None:
        if not resume and gan.step > 0:
            raise ValueError(f"this CycleGAN has trained {gan.step} steps already: continue its run with "
                             "mode='load' and its run folder, or build a new CycleGAN to start a new run")
        if restore:
            checkpoint.load(gan, weights)
        return gan
    return checkpoint.restore(weights) if restore else CycleGAN(config)   # new, or killed before a checkpoint


def open_dataset(dataset, data_root, input_dim, preprocess="resize_and_crop"):
    """A DataLoader on data_root/dataset at the model's image size; a synthetic dataset is made if missing."""
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
          f"python -m utils.datasets.download {name}")
    return stand_in


def load_run(run_folder):
    """The CycleGAN of a run folder at its latest checkpoint (or of a checkpoint folder itself)."""
    path = Path(run_folder)
    return checkpoint.restore(path / layout.WEIGHTS if (path / layout.WEIGHTS).is_dir() else path)


def _grid_images(loader, run, n, channels, first=None):
    """The fixed test images of the grids: chosen evenly from the sorted test set at the start of a
    run (first: a file per domain, or None, drawn before them) and stored in the run folder, so a
    resumed run draws the same ones."""
    path = run / layout.GRID_INPUTS
    if path.exists():
        with np.load(path, allow_pickle=False) as stored:
            return stored["A"], stored["B"]
    images = {}
    for domain in DOMAINS:
        paths = loader.test_paths(domain)
        if paths:
            picks = np.linspace(0, len(paths) - 1, min(n, len(paths))).round().astype(int)
            chosen = [paths[i] for i in picks]
            named = first[DOMAINS.index(domain)] if first else None
            if named:
                chosen = [named] + [p for p in chosen if p.name != Path(named).name][:max(n - 1, 0)]
            images[domain] = np.concatenate([loader.load_img(path) for path in chosen])
        else:  # a dataset without a test split: the first training batch instead
            images[domain] = next(iter(loader.load_data(domain, batch_size=n, is_testing=False)))
        images[domain] = match_channels(images[domain], channels)
    buffer = io.BytesIO()
    np.savez(buffer, **images)
    write_atomic(path, buffer.getvalue())
    return images["A"], images["B"]
