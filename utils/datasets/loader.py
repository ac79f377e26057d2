"""The book's DataLoader (GDL chapter 5), rewritten: every image used, reproducible, decoded ahead.

A dataset is a folder of plain image files:

    data/<name>/trainA/   trainB/   testA/   testB/

`load_batch` yields one epoch of unpaired training batches (imgs_A, imgs_B), each float32
(batch, h, w, 3) in [-1, 1], with the paper's training jitter (section 7.1 of Zhu et al. 2017 and
the official code): resize to 286 x 286 for 256 x 256 crops (the same ratio, 286/256, at other
sizes), take a random crop of `img_res`, flip left-right with probability 1/2. Test images are only
resized. Differences from the book's loader, each on purpose:

- an epoch is max(n_A, n_B) images, and every batch is yielded (the book drops the last one and
  samples with replacement, so some images are never seen in an epoch);
- the order and the jitter of epoch e depend only on (seed, e): a run resumed at (epoch, batch)
  sees exactly the batches the uninterrupted run would have seen;
- a background thread decodes `prefetch` batches ahead, so the training step does not wait on the
  disk (Pillow releases the GIL while it decodes and resizes);
- a file that cannot be read is reported by name (a warning) and replaced by the next readable
  image of the same epoch order, and training goes on.

Only numpy and Pillow: no tf.data, so it serves every Keras backend.
"""

import math
import queue
import threading
import warnings
from pathlib import Path

import numpy as np

from models.directions import DOMAINS
from utils.datasets.download import KNOWN_DATASETS
from utils.datasets.synthetic import SYNTHETIC_DATASETS
from utils.images import ImageReadError, check_header, list_images, read_rgb, resize_rgb, to_model_range

JITTER_RATIO = 286 / 256  # paper: resize to 286, random crop 256


class DatasetError(ValueError):
    """A dataset folder that is missing, empty or has no readable image."""


def fix_command(dataset_name, data_root="data"):
    """The shell command that downloads or generates `dataset_name` into `data_root`."""
    root = "" if str(data_root) == "data" else f" --data-root {data_root}"
    if dataset_name in SYNTHETIC_DATASETS:
        return f"python -m utils.datasets.synthetic {dataset_name}{root}"
    if dataset_name in KNOWN_DATASETS:
        return f"python -m utils.datasets.download {dataset_name}{root}"
    return (f"python -m utils.datasets.synthetic <name>{root}  (built in: {', '.join(SYNTHETIC_DATASETS)}) or "
            f"python -m utils.datasets.download <name>{root}  (official: {', '.join(KNOWN_DATASETS)}), "
            f"or copy your own images into those four folders")


def _dataset_error(folder, problem, dataset_name, data_root):
    return DatasetError(
        f"{problem}: {folder}\n"
        f"  expected layout: {data_root}/{dataset_name}/{{trainA,trainB,testA,testB}}/ holding image files\n"
        f"  to fix it, run:  {fix_command(dataset_name, data_root)}")


# How a training image becomes an img_res crop (the official code's --preprocess):
#   resize_and_crop       resize to img_res * 286/256, random crop (the paper's jitter; default)
#   crop                  random crop of the image as it is: a model trained on 256 px crops of
#                         1024 px photos sees full-detail texture (images smaller than img_res are
#                         first scaled up just enough)
#   scale_width_and_crop  scale the width to img_res * 286/256, keeping the aspect ratio, random crop
#   none                  resize to img_res, no crop
PREPROCESS = ("resize_and_crop", "crop", "scale_width_and_crop", "none")


def check_preprocess(preprocess):
    if preprocess not in PREPROCESS:
        raise ValueError(f"preprocess={preprocess!r}: must be one of {', '.join(PREPROCESS)}")
    return preprocess


def _cover(image, size):
    """Scale (keeping the aspect ratio) so the image covers size = (height, width); unchanged if it does."""
    h, w = image.shape[:2]
    scale = max(size[0] / h, size[1] / w)
    if scale <= 1:
        return image
    return resize_rgb(image, (max(size[0], round(h * scale)), max(size[1], round(w * scale))))


def jitter(image, img_res, rng, preprocess="resize_and_crop"):
    """Training augmentation of one uint8 (h, w, 3) image -> uint8 (img_res[0], img_res[1], 3).

    The `preprocess` step (PREPROCESS; default: resize to img_res * 286/256 (286 for 256) and
    random crop to img_res), then a random horizontal flip.
    """
    height, width = img_res
    load_h, load_w = round(height * JITTER_RATIO), round(width * JITTER_RATIO)
    if check_preprocess(preprocess) == "resize_and_crop":
        image = resize_rgb(image, (load_h, load_w))
    elif preprocess == "scale_width_and_crop":
        h, w = image.shape[:2]
        image = _cover(resize_rgb(image, (max(1, round(h * load_w / w)), load_w)), img_res)
    elif preprocess == "crop":
        image = _cover(image, img_res)
    else:
        image = resize_rgb(image, img_res)
    top = rng.integers(0, image.shape[0] - height + 1)
    left = rng.integers(0, image.shape[1] - width + 1)
    image = image[top:top + height, left:left + width]
    if rng.random() < 0.5:
        image = image[:, ::-1]
    return image


class DataLoader:
    """Unpaired batches from data/<dataset_name>/{trainA,trainB,testA,testB} (book Example 5-4).

    Args:
        dataset_name: folder name under `data_root`, e.g. "synthetic_apple2orange" or "horse2zebra".
        img_res: (height, width) of the images the model sees (an int n means (n, n)).
        data_root: folder that holds the datasets.
        seed: the shuffles and jitter of every epoch derive from it.
        prefetch: how many batches the background thread decodes ahead.
        preprocess: how a training image becomes an img_res crop (PREPROCESS; default the paper's
            resize_and_crop; crop keeps full-resolution texture). Test images are only resized.

    Attributes: n_A, n_B (number of training images), paths_A, paths_B.
    Raises DatasetError when a training folder is missing or has no image file.
    """

    def __init__(self, dataset_name, img_res=(128, 128), data_root="data", seed=0, prefetch=2,
                 preprocess="resize_and_crop"):
        img_res = (img_res, img_res) if isinstance(img_res, int) else img_res
        self.dataset_name, self.img_res = dataset_name, (int(img_res[0]), int(img_res[1]))
        self.data_root, self.seed, self.prefetch = Path(data_root), int(seed), max(1, int(prefetch))
        self.preprocess = check_preprocess(preprocess)
        self.folder = self.data_root / dataset_name
        self.paths_A, self.paths_B = self._paths("trainA"), self._paths("trainB")
        self.n_A, self.n_B = len(self.paths_A), len(self.paths_B)
        self._unreadable = set()  # files already reported, so each warning is given once
        self._rng = np.random.default_rng([self.seed, 2**31])  # for the book-style load_data

    # ------------------------------------------------------------------ folders
    def _paths(self, split):
        folder = self.folder / split
        if not folder.is_dir():
            raise _dataset_error(folder, "missing dataset folder", self.dataset_name, self.data_root)
        paths = [p for p in list_images(folder) if _header_ok(p)]
        if not paths:
            raise _dataset_error(folder, "no readable image files in", self.dataset_name, self.data_root)
        return paths

    def test_paths(self, domain):
        """Sorted test image files of domain "A" or "B" (the plots pick fixed test images from these)."""
        return self._paths(f"test{_check_domain(domain)}")

    # ------------------------------------------------------------------ single images
    def _read(self, path):
        """uint8 RGB of `path`, or None (with a warning naming the file, once) if it is unreadable."""
        try:
            return read_rgb(path)
        except ImageReadError as error:
            if path not in self._unreadable:
                self._unreadable.add(path)
                warnings.warn(f"skipping {error}", stacklevel=2)
            return None

    def _read_first_readable(self, paths, order, start):
        """Read paths[order[start]], or the next readable file in `order` after it."""
        for step in range(len(order)):
            index = order[(start + step) % len(order)]
            image = self._read(paths[index])
            if image is not None:
                return image
        folder = paths[0].parent
        raise _dataset_error(folder, "none of the image files could be read in", self.dataset_name, self.data_root)

    def load_img(self, path):
        """One image file as a (1, h, w, 3) float32 batch in [-1, 1], resized to img_res, no jitter."""
        return to_model_range(read_rgb(path, size=self.img_res))[None]

    def load_data(self, domain, batch_size=1, is_testing=False):
        """Random images of one domain (book style): (batch_size, h, w, 3) float32 in [-1, 1].

        From the training split with jitter, or with is_testing=True from the test split, resized only.
        """
        domain = _check_domain(domain)
        paths = self.test_paths(domain) if is_testing else dict(zip(DOMAINS, (self.paths_A, self.paths_B)))[domain]
        order = self._rng.permutation(len(paths))
        images = []
        for index in self._rng.choice(len(paths), size=batch_size, replace=len(paths) < batch_size):
            image = self._read_first_readable(paths, order, int(np.flatnonzero(order == index)[0]))
            image = (resize_rgb(image, self.img_res) if is_testing
                     else jitter(image, self.img_res, self._rng, self.preprocess))
            images.append(image)
        return to_model_range(np.stack(images))

    # ------------------------------------------------------------------ epochs
    def n_batches(self, batch_size=1):
        """Batches in one epoch: ceil(max(n_A, n_B) / batch_size); the last one may be smaller."""
        return math.ceil(max(self.n_A, self.n_B) / _check_batch_size(batch_size))

    def epoch_order(self, epoch):
        """(indices into paths_A, indices into paths_B), each max(n_A, n_B) long, for one epoch.

        Both domains are shuffled independently from (seed, epoch); the smaller one is repeated
        (a fresh permutation each pass) so that every image of both is used.
        """
        length = max(self.n_A, self.n_B)
        orders = []
        for domain_id, count in enumerate((self.n_A, self.n_B)):
            rng = np.random.default_rng([self.seed, int(epoch), domain_id])
            passes = [rng.permutation(count) for _ in range(math.ceil(length / count))]
            orders.append(np.concatenate(passes)[:length])
        return orders[0], orders[1]

    def make_batch(self, epoch, batch_index, batch_size, orders):
        """The jittered batch number `batch_index` of `epoch` (orders: `epoch_order(epoch)`): (imgs_A, imgs_B).

        load_batch calls it in its background thread; benchmarks/bench_loader.py in the step, as the book does.
        """
        start = batch_index * batch_size
        stop = min(start + batch_size, len(orders[0]))
        batch = []
        for domain_id, (paths, order) in enumerate(zip((self.paths_A, self.paths_B), orders)):
            images = []
            for position in range(start, stop):
                # One generator per image, from (seed, epoch, domain, position): the jitter of an
                # image does not depend on which batches were produced before it (resume).
                rng = np.random.default_rng([self.seed, int(epoch), domain_id, position, 1])
                image = self._read_first_readable(paths, order, position)
                images.append(jitter(image, self.img_res, rng, self.preprocess))
            batch.append(to_model_range(np.stack(images)))
        return batch[0], batch[1]

    def load_batch(self, batch_size=1, epoch=0, start_batch=0):
        """Yield the batches (imgs_A, imgs_B) of one epoch, from batch `start_batch` on.

        imgs_A, imgs_B: float32 (batch_size, h, w, 3) in [-1, 1], jittered; the last batch may be
        smaller. Pass the epoch number: it selects the shuffle and the jitter. A background thread
        decodes `prefetch` batches ahead; it stops when the generator is exhausted or closed.
        """
        batch_size = _check_batch_size(batch_size)
        n_batches = self.n_batches(batch_size)
        if not 0 <= start_batch <= n_batches:
            raise ValueError(f"start_batch must be in [0, {n_batches}], got {start_batch}")
        orders = self.epoch_order(epoch)
        batches, stop = queue.Queue(maxsize=self.prefetch), threading.Event()

        def produce():
            try:
                for index in range(start_batch, n_batches):
                    if not _put(batches, ("batch", self.make_batch(epoch, index, batch_size, orders)), stop):
                        return  # the consumer closed the generator
            except BaseException as error:  # handed to the consumer, raised there with its traceback
                _put(batches, ("error", error), stop)
                return
            _put(batches, ("end", None), stop)

        worker = threading.Thread(target=produce, name=f"DataLoader-{self.dataset_name}", daemon=True)
        worker.start()
        try:
            while True:
                kind, item = batches.get()
                if kind == "end":
                    return
                if kind == "error":
                    raise item
                yield item
        finally:  # exhausted, closed, or garbage-collected: stop the thread and free its queue
            stop.set()
            while worker.is_alive():
                try:
                    batches.get_nowait()
                except queue.Empty:
                    pass
                worker.join(timeout=0.05)


def _header_ok(path):
    """Cheap check of a file's header (no decoding): False, with a warning naming it, if unusable.

    Catches empty files, non-images and decompression bombs before they count in n_A / n_B;
    truncated data only shows when the file is decoded, and is then skipped by `_read`.
    """
    try:
        check_header(path)
        return True
    except ImageReadError as error:
        warnings.warn(f"skipping {error}", stacklevel=4)
        return False


def _put(batches, item, stop):
    """Put `item` unless the consumer has stopped; True once it is in the queue."""
    while not stop.is_set():
        try:
            batches.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _check_domain(domain):
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS}, got {domain!r}")
    return domain


def _check_batch_size(batch_size):
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)
