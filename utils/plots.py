"""Pictures of a run: the book's reconstruction grid, loss curves, an animation of the grids, and the
loss-weight ablation's figures (utils/evaluation/ablation.py).

Every function draws on a `matplotlib.figure.Figure` made directly, not through `pyplot`: such a
figure is never registered with pyplot's figure manager, so a training run that saves thousands of
grids holds no open figures (nothing to close) and does not depend on a GUI backend. Notebooks
show the saved PNGs with `IPython.display.Image`.
"""

import io
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from PIL import Image

from models.directions import DIRECTIONS, domains
from utils.runtime.files import write_atomic
from utils.images import read_rgb, resize_rgb, to_model_range

GRID_COLUMNS = ("Original", "Translated", "Reconstructed", "Identity")
# Panels of the loss plot: title -> the two losses of `CycleGAN.train_step` it shows.
LOSS_PANELS = {
    "Discriminators (LSGAN, real=1 fake=0)": ("d_A", "d_B"),
    "Adversarial (generators fool D)": ("valid_A", "valid_B"),
    "Cycle consistency (L1)": ("reconstr_A", "reconstr_B"),
    "Identity (L1)": ("id_A", "id_B"),
}
# The unit of each panel's losses (its y axis).
LOSS_UNITS = {"Discriminators (LSGAN, real=1 fake=0)": "mean squared error",
              "Adversarial (generators fool D)": "mean squared error",
              "Cycle consistency (L1)": "mean absolute error", "Identity (L1)": "mean absolute error"}


def to_display(images):
    """Images in [-1, 1] (..., h, w, c) -> floats in [0, 1] for imshow; one channel is squeezed."""
    images = np.clip((np.asarray(images, np.float32) + 1.0) / 2.0, 0.0, 1.0)
    return images[..., 0] if images.shape[-1] == 1 else images


def reconstruction_rows(gan, imgs_A, imgs_B):
    """The book's figure 5-8 as arrays: for each image a row of original, translated, reconstructed, identity.

    imgs_A, imgs_B: (n, h, w, c) in [-1, 1]. Returns (rows, labels): rows is (2n, 4, h, w, c) in
    [-1, 1], first the n rows A -> B -> A (A, g_AB(A), g_BA(g_AB(A)), g_BA(A)), then the n rows
    B -> A -> B (B, g_BA(B), g_AB(g_BA(B)), g_AB(B)).
    """
    A2B = gan.translate(imgs_A, "AtoB")
    A2B2A = gan.translate(A2B, "BtoA")
    A2A = gan.translate(imgs_A, "BtoA")   # identity: g_BA should leave an A image alone
    B2A = gan.translate(imgs_B, "BtoA")
    B2A2B = gan.translate(B2A, "AtoB")
    B2B = gan.translate(imgs_B, "AtoB")
    rows_A = np.stack([imgs_A, A2B, A2B2A, A2A], axis=1)   # (n, 4, h, w, c)
    rows_B = np.stack([imgs_B, B2A, B2A2B, B2B], axis=1)
    labels = ["A → B → A"] * len(imgs_A) + ["B → A → B"] * len(imgs_B)
    return np.concatenate([rows_A, rows_B]), labels


def image_table(rows, path, column_titles=None, row_labels=None, title=None, cell_inches=1.5, dpi=100):
    """Save a table of images as a PNG; returns the path (or, for path None, the PNG's bytes).

    rows: an array (n_rows, n_cols, h, w, c) or a list of rows of (h, w, c) images of any sizes,
    in [-1, 1]; c is 1 (drawn in gray) or 3.
    """
    n_rows, n_cols = len(rows), len(rows[0])
    # Margins in inches: room for the title, the column titles and the row labels only when present.
    top = 0.1 + (0.4 if title else 0) + (0.25 if column_titles else 0)
    left = 0.35 if row_labels else 0.1
    fig = Figure(figsize=(cell_inches * n_cols + left + 0.1, cell_inches * n_rows + top + 0.1), dpi=dpi)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for r in range(n_rows):
        for c in range(n_cols):
            ax = axes[r, c]
            image = np.asarray(rows[r][c])
            ax.imshow(to_display(image), cmap="gray" if image.shape[-1] == 1 else None, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0 and column_titles:
                ax.set_title(column_titles[c], fontsize=10)
            if c == 0 and row_labels:
                ax.set_ylabel(row_labels[r], fontsize=10)
    if title:
        fig.suptitle(title, fontsize=11, parse_math=False)   # a '$' in a dataset name is text, not TeX
    # Fixed margins (no bbox_inches="tight"): every grid of a run has the same pixel size, for the GIF.
    width, height = fig.get_size_inches()
    fig.subplots_adjust(left=left / width, right=1 - 0.1 / width, bottom=0.1 / height, top=1 - top / height,
                        wspace=0.04, hspace=0.04)
    return _save(fig, path, dpi=dpi)


def save_reconstruction_grid(gan, imgs_A, imgs_B, path, title=None):
    """Book figure 5-8 for fixed test images: rows A->B->A and B->A->B, columns original, translated,
    reconstructed, identity; saved as a PNG at `path` (returned)."""
    rows, labels = reconstruction_rows(gan, imgs_A, imgs_B)
    return image_table(rows, path, column_titles=GRID_COLUMNS, row_labels=labels, title=title)


def _save(fig, path, dpi=None):
    """Save as PNG, atomically (utils/runtime/files.py), so a killed run never leaves half a picture.

    path None returns the PNG's bytes instead (for `IPython.display.Image` in a notebook).
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, format="png")
    if path is None:
        return buffer.getvalue()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, buffer.getvalue())


def smooth(values, weight=None):
    """Exponential moving average as TensorBoard draws it, debiased so the start is not pulled to 0.

    weight None picks one from the length: about 1/30 of the curve, at most 200 steps, is averaged.
    """
    values = np.asarray(values, np.float64)
    if weight is None:
        weight = 1.0 - 1.0 / np.clip(len(values) / 30.0, 1.0, 200.0)
    out, average = np.empty_like(values), 0.0
    for i, v in enumerate(values):
        average = weight * average + (1 - weight) * v
        out[i] = average / (1 - weight ** (i + 1)) if weight < 1 else v
    return out


def save_loss_curves(history, path, title=None):
    """Plot the losses of a run (a dict of arrays with 'step' and the loss names, e.g.
    `utils.training.logs.read_losses`) in four panels: discriminators, adversarial, cycle, identity.

    Faint lines are the raw values of every step, solid lines their smoothed average. Returns the path.
    """
    steps = np.asarray(history["step"])
    fig = Figure(figsize=(10, 6.5), dpi=100, layout="constrained")
    axes = fig.subplots(2, 2, sharex=True)
    for ax, (panel, names) in zip(axes.flat, LOSS_PANELS.items()):
        for name, color in zip(names, ("tab:red", "tab:blue")):
            values = np.asarray(history[name])
            if len(values):
                ax.plot(steps, values, color=color, alpha=0.2, linewidth=0.8)
                ax.plot(steps, smooth(values), color=color, linewidth=1.8, label=name)
            if len(values) > 20:   # the first steps' spike would flatten the rest: clip the axis to 99.5%
                ax.set_ylim(0, max(ax.get_ylim()[0] + 1e-6, 1.05 * float(np.quantile(
                    np.concatenate([np.asarray(history[n]) for n in names]), 0.995))))
        ax.set_title(panel, fontsize=10)
        ax.set_ylabel(LOSS_UNITS[panel], fontsize=9)
        ax.grid(alpha=0.3)
        if len(steps):
            ax.legend(loc="upper right", fontsize=9)
    for ax in axes[1]:
        ax.set_xlabel("training step")
    fig.legend(handles=[Line2D([], [], color="grey", alpha=0.45, linewidth=0.8, label="every step"),
                        Line2D([], [], color="grey", linewidth=1.8, label="smoothed (moving average)")],
               loc="outside lower center", ncols=2, fontsize=9, frameon=False)
    if title:
        fig.suptitle(title, parse_math=False)
    return _save(fig, path)


def save_grid_animation(grid_paths, path, max_frames=40, frame_ms=400, last_frame_ms=2000, scale=0.6):
    """An animated GIF of the grids over training (oldest first); at most `max_frames`, evenly
    spaced, always with the first and last grid, scaled by `scale` to keep the file small (about
    100 KB a frame). Returns the path, or None without grids."""
    grid_paths = sorted(grid_paths)
    if not grid_paths:
        return None
    picks = np.unique(np.linspace(0, len(grid_paths) - 1, min(max_frames, len(grid_paths))).round().astype(int))
    frames = [read_rgb(grid_paths[i]) for i in picks]   # the RGBA PNGs, opaque, as RGB (utils/images.py)
    height, width = frames[0].shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    frames = [resize_rgb(_fit(frame, height, width), (size[1], size[0]), Image.LANCZOS) for frame in frames]
    durations = [frame_ms] * (len(frames) - 1) + [last_frame_ms] if len(frames) > 1 else last_frame_ms
    # encoded in memory, then written in one go: a failed write (a full disk) is one clean OSError,
    # where imageio's file writer retries its flush at garbage collection and prints a traceback
    gif = iio.imwrite("<bytes>", np.stack(frames), extension=".gif", duration=durations, loop=0)
    return write_atomic(path, gif)   # a page reloading mid-write never sees half a GIF


def _fit(frame, height, width):
    """Crop or pad (white) a frame to height x width, so frames of slightly different sizes animate."""
    out = np.full((height, width, 3), 255, np.uint8)
    h, w = min(height, frame.shape[0]), min(width, frame.shape[1])
    out[:h, :w] = frame[:h, :w]
    return out


def save_pool_picture(gan, imgs_B, path, n=6):
    """What d_A is shown as "fake" (paper section 4): g_BA's translation of this step, or an older one from the pool.

    One row: g_BA(imgs_B[:1]), then up to n of the (at most 50) earlier fakes stored in gan.pool_A,
    evenly chosen. Once the pool is full, each fake handed to d_A is, with probability 1/2, one of
    these older ones (models/image_pool.py). Returns the path (or the PNG's bytes with path None).
    """
    fake = gan.translate(np.asarray(imgs_B[:1], np.float32), "BtoA")[0]
    stored = gan.pool_A.images
    picks = np.unique(np.linspace(0, len(stored) - 1, min(n, len(stored))).round().astype(int)) if stored else []
    row = [fake] + [stored[i] for i in picks]
    titles = ["this step's fake"] + [f"pool image {i + 1}" for i in picks]
    return image_table([row], path, column_titles=titles, cell_inches=1.6,
                       title=f"What d_A may be shown as fake: {len(stored)} of up to {gan.pool_A.max_size} "
                             "earlier fakes are kept")


def save_image_pairs(inputs, outputs, path, titles=("input", "translated"), title=None):
    """Side by side: each input image (uint8 or [-1, 1]) beside its translation, one pair per row."""
    rows = [[_in_model_range(a), _in_model_range(b)] for a, b in zip(inputs, outputs)]
    return image_table(rows, path, column_titles=titles, title=title, cell_inches=2.0)


def _in_model_range(image):
    """uint8 pixels scaled to [-1, 1] (utils/images.py), floats as they are; a (h, w) image gets its channel."""
    image = np.asarray(image)
    image = to_model_range(image) if image.dtype == np.uint8 else image
    return image[..., None] if image.ndim == 2 else image


# ----------------------------------------------------------------- the ablation's figures (utils/evaluation/ablation.py)
def save_ablation_translations(test_set, examples, pictures, path, dpi=80):
    """Rows: input, one per variant, ground truth; columns: the example images A -> B, then B -> A.

    test_set: the paired test set (utils/evaluation.load_test_set), images in [0, 1]; examples: the
    indices of its images shown; pictures: {variant: {direction: its translations of those images}}.
    Saved as a PNG at `path` (returned; path None returns the PNG's bytes).
    """
    labels = ["input", *pictures, "ground truth"]
    columns = [(d, i) for d in DIRECTIONS for i in range(len(examples))]
    fig = Figure(figsize=(1.2 * len(columns) + 1.6, 1.2 * len(labels) + 0.4))  # 1.6 in: the row labels
    axes = fig.subplots(len(labels), len(columns), squeeze=False)
    for c, (direction, i) in enumerate(columns):
        source, target = domains(direction)
        images = [test_set[source][examples[i]], *(p[direction][i] for p in pictures.values()),
                  test_set[target][examples[i]]]
        for r, image in enumerate(images):
            ax = axes[r, c]
            ax.imshow(np.clip(image, 0, 1), interpolation="nearest")  # crisp pixels, small PNG
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(labels[r], rotation=0, ha="right", va="center", fontsize=8)
        axes[0, c].set_title(f"{source} → {target}", fontsize=8)
    fig.subplots_adjust(left=1.6 / fig.get_figwidth(), right=0.99, top=0.95, bottom=0.01, wspace=0.05, hspace=0.05)
    return _save(fig, path, dpi=dpi)


def save_ablation_metrics(rows, metrics, lower_is_better, path, dpi=80):
    """Bar chart: one panel per metric, a pair of bars (A -> B, B -> A) per variant and baseline.

    rows: utils/ablation.load_results; lower_is_better: {metric: bool} (utils/evaluation.LOWER_IS_BETTER).
    Saved as a PNG at `path` (returned; path None returns the PNG's bytes).
    """
    names = list(rows)
    fig = Figure(figsize=(3.2 * len(metrics), 3.6))
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    x = np.arange(len(names))
    for ax, metric in zip(axes, metrics):
        for offset, direction in zip((-0.2, 0.2), DIRECTIONS):
            ax.bar(x + offset, [rows[n]["metrics"][direction][metric] for n in names], width=0.4,
                   label=" → ".join(domains(direction)))
        ax.set_xticks(x, names, rotation=60, ha="right", fontsize=7)
        ax.set_title(f"{metric} ({'lower' if lower_is_better[metric] else 'higher'} is better)", fontsize=9)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path, dpi=dpi)
