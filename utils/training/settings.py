"""How a run trains, beside what it trains (`models.CycleGANConfig`): one typed, validated object.

`TrainingSettings` is stored in the run folder's config.json under "training" and read back when
the run is resumed, so a resumed run trains as it started (the caller may change the intervals and
the step budget). The book keeps these as arguments of `gan.train(...)`; the defaults are its.
It also refuses a run that would train nothing or not what it records (`check_config`, `check_dataset`):
no epoch, 10**20 epochs, every loss weight 0, a batch larger than the training set.
"""

import dataclasses
from pathlib import Path
from typing import Optional

PREPROCESS_DEFAULT = "resize_and_crop"   # the paper's jitter (utils/datasets/loader.PREPROCESS)
# What a resumed run may change; the rest (batch size, preprocessing) is how the run was started.
CHANGEABLE_ON_RESUME = ("sample_interval", "checkpoint_interval", "max_steps", "n_grid_images")
# Epochs of each phase (constant, then decay): the paper trains 100 + 100; a bound keeps a typo such as
# 10**20 a message instead of a run that never ends and a schedule that never decays.
MAX_EPOCHS = 100_000
LOSS_WEIGHTS = ("lambda_validation", "lambda_reconstr", "lambda_id")


@dataclasses.dataclass
class TrainingSettings:
    batch_size: int = 1                    # the book's and the paper's
    sample_interval: int = 500             # steps between grids (and loss plot, GIF, page)
    checkpoint_interval: int = 1000        # steps between checkpoints: the most a crash can lose
    max_steps: Optional[int] = None        # stop after this many steps in all; None: every epoch
    n_grid_images: int = 2                 # test images per domain in each grid
    preprocess: str = PREPROCESS_DEFAULT   # how a photo becomes a crop (utils/datasets/loader.PREPROCESS)
    # Filled in when a session starts, for the loop and the results page:
    data_root: str = "data"
    steps_per_epoch: Optional[int] = None
    total_epochs: Optional[int] = None

    def __post_init__(self):
        self.validate()

    def validate(self):
        """Raise ValueError naming the first setting that is not a positive integer (max_steps may be None)."""
        for name in ("batch_size", "sample_interval", "checkpoint_interval", "n_grid_images", "max_steps"):
            value = getattr(self, name)
            if name == "max_steps" and value is None:
                continue
            if isinstance(value, bool) or not _is_integer(value) or value < 1:
                raise ValueError(f"{name}={value!r}: must be an integer >= 1" +
                                 (" (or None: all epochs)" if name == "max_steps" else ""))
            setattr(self, name, int(value))
        if not isinstance(self.preprocess, str) or not self.preprocess:
            raise ValueError(f"preprocess={self.preprocess!r}: must name a preprocessing, e.g. {PREPROCESS_DEFAULT!r}")

    def check_devices(self, n_devices):
        """Data parallel splits each batch across the devices: the batch size must be a multiple of them."""
        if self.batch_size % n_devices:
            raise ValueError(f"batch_size={self.batch_size}: data_parallel splits each batch across {n_devices} "
                             f"devices, so the batch size must be a multiple of {n_devices} "
                             f"(e.g. --batch-size {n_devices})")

    def check_config(self, config):
        """Refuse a model config that would train nothing: no epoch at all, absurdly many, or every loss off.

        config: a `models.CycleGANConfig` (its own rules are checked when it is made; these are the run's).
        """
        for name in ("epochs", "decay_epochs"):
            if getattr(config, name) > MAX_EPOCHS:
                raise ValueError(f"{name}={getattr(config, name)}: at most {MAX_EPOCHS} epochs (the paper trains "
                                 "100 + 100); to stop a run early, give a step budget (max_steps, --max-steps)")
        if config.epochs + config.decay_epochs == 0:
            raise ValueError(f"epochs={config.epochs}, decay_epochs={config.decay_epochs}: a run of 0 epochs "
                             "trains nothing; give at least one epoch (the paper: 100 + 100)")
        if all(getattr(config, name) == 0 for name in LOSS_WEIGHTS):
            raise ValueError(", ".join(f"{name}={getattr(config, name)}" for name in LOSS_WEIGHTS) +
                             ": with every loss weight 0 the generators' loss is 0 and they learn nothing; give at "
                             "least one weight > 0 (the book: 1 / 10 / 2)")

    def check_dataset(self, n_A, n_B, dataset="the dataset"):
        """Refuse a batch larger than the training set: an epoch is max(n_A, n_B) images, so each step would
        see fewer images than the batch size recorded for the run."""
        if self.batch_size > max(n_A, n_B):
            raise ValueError(f"batch_size={self.batch_size}: larger than the training set of {dataset} "
                             f"({n_A} images in trainA, {n_B} in trainB); at most {max(n_A, n_B)}")

    def changed(self, **changes):
        """A copy with the given values (None: keep), for a resumed run; only CHANGEABLE_ON_RESUME."""
        given = {name: value for name, value in changes.items() if value is not None}
        fixed = sorted(set(given) - set(CHANGEABLE_ON_RESUME))
        if fixed:
            raise ValueError(f"{', '.join(fixed)} cannot change when a run is resumed (it was started with "
                             f"{', '.join(f'{n}={getattr(self, n)!r}' for n in fixed)})")
        return dataclasses.replace(self, **given)

    @classmethod
    def defaults(cls):
        """The default of each setting a user chooses (not the ones filled in at the start), by name."""
        filled_in = ("data_root", "steps_per_epoch", "total_epochs")
        return {name: value for name, value in dataclasses.asdict(cls()).items() if name not in filled_in}

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, stored):
        """From config.json's "training"; keys this version does not know are left out."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{name: value for name, value in stored.items() if name in known})


def training_set_size(data_root, dataset):
    """(n_A, n_B): the image files in data_root/dataset/trainA and trainB, or None while either folder is missing
    (a synthetic dataset is made when training starts). Counted without decoding, for the command lines'
    early check; the trainer checks again with the readable ones (`check_dataset`)."""
    from utils.images import list_images
    folder = Path(data_root) / dataset
    if not ((folder / "trainA").is_dir() and (folder / "trainB").is_dir()):
        return None
    return len(list_images(folder / "trainA")), len(list_images(folder / "trainB"))


def _is_integer(value):
    return isinstance(value, int) or (hasattr(value, "dtype") and getattr(value.dtype, "kind", None) in ("i", "u"))
