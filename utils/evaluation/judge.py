"""A domain judge and the kernel inception distance: quality measures that need no paired test set.

Real datasets (apple2orange, monet2photo) are unpaired: there is no "true orange" for a test apple,
so a translation cannot be compared with the truth. Two measures that need only the two domains:

- The **domain judge**, a small CNN trained once per dataset and image size on the dataset's own
  *training* images to tell A from B (it never sees a CycleGAN's output). For translated *test*
  images it reports the fraction it judges to be the target domain and the mean probability. Its
  own accuracy on the real test images is always reported beside: a judge that cannot tell real
  test A from real test B is useless, and `judge_rates` then withholds its rates.
- **KID** (kernel inception distance, Binkowski et al. 2018, section 3): the unbiased squared MMD
  with the polynomial kernel k(x, y) = (x.y / d + 1)^3 between feature vectors of two image sets,
  averaged over random subsets (mean and std). 0 means the two sets are indistinguishable in that
  feature space. Features come from the judge's last hidden layer, or from InceptionV3's ImageNet
  features (the standard KID) when their weights are on this machine.

A colour-sensitive judge can be fooled by a plain recolouring: that is why KID and the pictures are
reported beside it (utils/evaluation/unpaired.py scores the baselines with the same code).
"""

import hashlib
import json
from pathlib import Path

import numpy as np

from models.directions import DOMAINS
from utils.runtime.files import write_json
from utils.images import list_images, load_images

# Bump when the judge's architecture or training changes: cached judges of another version are retrained.
JUDGE_VERSION = 1
# A judge is usable when its balanced accuracy on the real test images reaches this.
MIN_JUDGE_ACCURACY = 0.75
INCEPTION_SIZE = 299
INCEPTION_WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"


# ----------------------------------------------------------------- KID
def kid(features_x, features_y, n_subsets=100, subset_size=100, seed=0):
    """Kernel inception distance between two feature sets (n, d): returns (mean, std) over subsets.

    Each subset draws min(subset_size, n_x, n_y) rows of each set without replacement and computes
    the unbiased MMD^2 estimate with k(x, y) = (x.y / d + 1)^3 (the diagonal terms left out). When that
    is the whole of both sets (a notebook's 100 test images with subsets of 100), every subset would be
    the same and the spread 0, which says nothing: the subsets then take half of the smaller set.
    """
    x, y = np.asarray(features_x, np.float64), np.asarray(features_y, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"KID needs two feature arrays (n, d) with the same d, got {x.shape} and {y.shape}")
    m = min(subset_size, len(x), len(y))
    if m < 2:
        raise ValueError(f"KID needs at least 2 images in each set, got {len(x)} and {len(y)}")
    if m == len(x) and m == len(y):
        m = max(2, m // 2)   # subsets that differ, so the spread is the estimate's spread
    d = x.shape[1]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_subsets):
        a = x[rng.choice(len(x), m, replace=False)]
        b = y[rng.choice(len(y), m, replace=False)]
        k_aa, k_bb, k_ab = ((a @ a.T) / d + 1) ** 3, ((b @ b.T) / d + 1) ** 3, ((a @ b.T) / d + 1) ** 3
        mmd = ((k_aa.sum() - np.trace(k_aa)) + (k_bb.sum() - np.trace(k_bb))) / (m * (m - 1)) - 2 * k_ab.mean()
        values.append(mmd)
    return float(np.mean(values)), float(np.std(values))


# ----------------------------------------------------------------- the judge network
def build_judge(size, seed=0):
    """(judge, features): a small CNN, images (size, size, 3) in [0, 1] -> P(domain B), and its feature model.

    Four strided 3x3 convolutions (16-32-64-128 filters, ReLU), global average pooling (the 128
    features KID uses), dropout and one sigmoid unit. Small on purpose: it must learn what tells
    the domains apart, on the training images alone, in about a minute on a CPU.
    """
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3), name="image")
    x = layers.Rescaling(2.0, offset=-1.0)(inputs)
    for filters in (16, 32, 64, 128):
        x = layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu")(x)
    features = layers.GlobalAveragePooling2D(name="features")(x)
    x = layers.Dropout(0.3)(features)
    outputs = layers.Dense(1, activation="sigmoid", name="p_B")(x)
    judge = keras.Model(inputs, outputs, name="domain_judge")
    return judge, keras.Model(inputs, features, name="judge_features")


def train_judge(images_A, images_B, size, epochs=8, batch_size=32, seed=0, verbose=0):
    """Train a judge on images (n, size, size, 3) in [0, 1] of each domain; returns (judge, features)."""
    import keras

    judge, features = build_judge(size, seed)
    judge.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["accuracy"])
    x = np.concatenate([images_A, images_B]).astype(np.float32)
    y = np.concatenate([np.zeros(len(images_A)), np.ones(len(images_B))]).astype(np.float32)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(x))
        flipped = x[order].copy()
        flip = rng.random(len(x)) < 0.5   # the jitter the CycleGAN itself trains with
        flipped[flip] = flipped[flip, :, ::-1]
        judge.fit(flipped, y[order], batch_size=batch_size, epochs=1, shuffle=False, verbose=verbose)
    return judge, features


def predict_p_B(judge, images, batch_size=64):
    """P(domain B) for images (n, h, w, 3) in [0, 1], as a float64 array (n,)."""
    return np.asarray(judge.predict(np.asarray(images, np.float32), batch_size=batch_size, verbose=0),
                      np.float64).reshape(-1)


def judge_accuracy(judge, test_A, test_B):
    """The judge's accuracy on real test images: {"A": ..., "B": ..., "balanced": mean of the two, "usable": bool}."""
    acc_A = float(np.mean(predict_p_B(judge, test_A) < 0.5))
    acc_B = float(np.mean(predict_p_B(judge, test_B) >= 0.5))
    balanced = (acc_A + acc_B) / 2
    return {"A": acc_A, "B": acc_B, "balanced": balanced, "usable": balanced >= MIN_JUDGE_ACCURACY}


def p_target(judge, images, target):
    """The judge's probability that each image (n, h, w, 3) in [0, 1] is of domain `target` ("A" or "B"), (n,):
    its output is P(B), so P(A) = 1 - P(B)."""
    if target not in DOMAINS:
        raise ValueError(f"target={target!r}: must be one of {DOMAINS}")
    p_B = predict_p_B(judge, images)
    return p_B if target == DOMAINS[1] else 1 - p_B


def judge_rates(judge, translations, target, accuracy):
    """How a judge rates translations into `target` ("A" or "B").

    Returns {"judged_target": fraction judged as the target domain, "mean_p_target": mean probability
    of the target}; both None when `accuracy` (from `judge_accuracy`) says the judge is unusable.
    """
    if not accuracy["usable"]:
        return {"judged_target": None, "mean_p_target": None}
    p = p_target(judge, translations, target)
    return {"judged_target": float(np.mean(p >= 0.5)), "mean_p_target": float(np.mean(p))}


def judge_features(features_model, images, batch_size=64):
    return np.asarray(features_model.predict(np.asarray(images, np.float32), batch_size=batch_size, verbose=0),
                      np.float64)


# ----------------------------------------------------------------- the cached judge of a dataset
def dataset_fingerprint(folder):
    """SHA-256 over the names and sizes of trainA/ and trainB/'s images: changes when the data does."""
    digest = hashlib.sha256(f"judge v{JUDGE_VERSION}".encode())
    for split in (f"train{domain}" for domain in DOMAINS):
        for path in list_images(Path(folder) / split):
            digest.update(f"{split}/{path.name}:{path.stat().st_size}\n".encode())
    return digest.hexdigest()


def judge_cache_folder(dataset, size, data_root="data"):
    """Where a dataset's judge is cached: `<data_root>/.judges/<dataset>/<size>px/` (beside the datasets)."""
    return Path(data_root) / ".judges" / dataset / f"{size}px"


def load_or_train_judge(dataset, size, data_root="data", train_images=None, seed=0, log=print):
    """The judge of `dataset` at `size` px: loaded from its cache, or trained and cached (seeded).

    train_images: {"A": ..., "B": ...} in [0, 1] at `size`, loaded from the dataset when None.
    The cache is keyed by `dataset_fingerprint`, so a changed dataset gets a new judge.
    Returns (judge, features_model, info) with info = the cache's JSON (fingerprint, seed, sizes).
    """
    import keras

    folder = judge_cache_folder(dataset, size, data_root)
    fingerprint = dataset_fingerprint(Path(data_root) / dataset)
    weights, info_path = folder / "judge.weights.h5", folder / "judge.json"
    judge, features = build_judge(size, seed)
    if info_path.is_file() and weights.is_file():
        info = json.loads(info_path.read_text())
        if info.get("fingerprint") == fingerprint and info.get("seed") == seed:
            judge.load_weights(weights)
            return judge, features, info
        log(f"judge cache {folder} is for other data or settings: retraining")
    if train_images is None:
        train_images = {d: load_images(Path(data_root) / dataset / f"train{d}", size) for d in DOMAINS}
    log(f"training the domain judge of {dataset} at {size} px on {len(train_images['A'])} + "
        f"{len(train_images['B'])} training images (once; cached in {folder})")
    judge, features = train_judge(train_images["A"], train_images["B"], size, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / ".judge.tmp.weights.h5"
    temporary.unlink(missing_ok=True)   # a link planted there is removed, never written through
    judge.save_weights(temporary)
    temporary.replace(weights)
    info = {"dataset": dataset, "size": size, "seed": seed, "version": JUDGE_VERSION, "fingerprint": fingerprint,
            "n_train": {d: len(train_images[d]) for d in DOMAINS},
            "keras": keras.__version__}
    write_json(info_path, info)
    return judge, features, info


# ----------------------------------------------------------------- InceptionV3 features
def inception_weights_cached():
    """Whether Keras' InceptionV3 ImageNet weights (no top) are already in ~/.keras/models."""
    import keras

    return (Path(keras.config.keras_home() if hasattr(keras.config, "keras_home") else Path.home() / ".keras")
            / "models" / INCEPTION_WEIGHTS_FILE).is_file()


def inception_features_model(weights="imagenet"):
    """InceptionV3 up to its 2048 pooled features (the standard KID features); weights=None is random."""
    import keras

    return keras.applications.InceptionV3(include_top=False, weights=weights, pooling="avg",
                                          input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3))


def inception_features(model, images, batch_size=32):
    """Features (n, 2048) of images (n, h, w, 3) in [0, 1], resized to 299 px (bilinear)."""
    import keras

    out = []
    for start in range(0, len(images), batch_size):
        batch = np.asarray(images[start:start + batch_size], np.float32)
        batch = keras.ops.convert_to_numpy(keras.ops.image.resize(batch, (INCEPTION_SIZE, INCEPTION_SIZE)))
        out.append(np.asarray(model.predict(batch * 2 - 1, verbose=0), np.float64))  # InceptionV3 expects [-1, 1]
    return np.concatenate(out)
