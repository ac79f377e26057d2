"""A run's logs: every loss of every step in `logs/losses.csv`, and TensorBoard event files.

The CSV is the record a student opens in a spreadsheet and the plots read; TensorBoard shows the
same numbers live (`tensorboard --logdir run/cyclegan`). Both are written by the training loop
(utils/training/trainer.py) and both survive a crash: a resumed run first cuts the CSV back to its
checkpoint's step, so no step is ever listed twice.

TensorBoard writer: `tensorboard.summary.writer.EventFileWriter`, the event-file writer of the
tensorboard package itself. It needs neither TensorFlow nor PyTorch, so the logs are the same on
every Keras backend; without tensorboard installed the run simply has no event files.
"""

import csv
import io
import os
import time
from pathlib import Path

import numpy as np

from utils.runtime.files import write_atomic

# Columns of losses.csv: where the step is, then the losses of `CycleGAN.train_step` by name.
POSITION_COLUMNS = ("step", "epoch", "batch", "learning_rate", "wall_time", "elapsed_s")
LOSS_COLUMNS = ("d_A", "d_B", "d_loss", "g_loss", "valid_A", "valid_B", "reconstr_A", "reconstr_B",
                "id_A", "id_B")
COLUMNS = POSITION_COLUMNS + LOSS_COLUMNS


class LossLog:
    """Appends one row per training step to a CSV file, flushed at once (a kill loses no row).

    `LossLog(path, keep_until_step=s)` opens an existing log for a resumed run: rows after step `s`
    (steps trained after the checkpoint, which will be trained again) and a torn last line are
    dropped first. `history` holds every kept and new row as floats, for the plots.
    """

    def __init__(self, path, keep_until_step=None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows = read_rows(self.path) if self.path.exists() else []
        if keep_until_step is not None:
            rows = [row for row in rows if row["step"] <= keep_until_step]
        # Rewrite (atomically) rather than append: the old file may end in half a line.
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(_formatted(row) for row in rows)
        write_atomic(self.path, text.getvalue())   # never through a link: the appends below go to this file
        self.history = {name: [row[name] for row in rows] for name in COLUMNS}
        # Appended to without following a link: one planted since the rewrite above is refused (ELOOP).
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0))
        self._file = os.fdopen(fd, "a", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=COLUMNS)

    @property
    def elapsed_s(self):
        """Training seconds logged so far (summed over every session of the run)."""
        return self.history["elapsed_s"][-1] if self.history["elapsed_s"] else 0.0

    def append(self, row):
        """Write one step: a dict with every name in COLUMNS."""
        self._writer.writerow(_formatted(row))
        self._file.flush()
        for name in COLUMNS:
            self.history[name].append(float(row[name]))

    def close(self):
        self._file.close()


def _formatted(row):
    """Integers as integers, times to the millisecond, losses and rates to 7 significant digits."""
    out = {}
    for name in COLUMNS:
        value = float(row[name])
        if value.is_integer() and name not in ("wall_time", "elapsed_s"):
            out[name] = str(int(value))
        else:
            out[name] = f"{value:.3f}" if name in ("wall_time", "elapsed_s") else f"{value:.7g}"
    return out


def read_rows(path):
    """The complete rows of a losses.csv as dicts of floats (a torn or malformed line is skipped)."""
    rows = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                rows.append({name: float(row[name]) for name in COLUMNS})
            except (TypeError, ValueError, KeyError):
                continue  # the last line of a killed run, cut mid-write
    return rows


def read_losses(path):
    """losses.csv as a dict of numpy arrays, one per column (empty arrays for an empty log)."""
    rows = read_rows(path)
    return {name: np.array([row[name] for row in rows], dtype=np.float64) for name in COLUMNS}


class TensorBoardLog:
    """Scalars and images for TensorBoard, written with tensorboard's own event-file writer.

    A resumed run opens a new event file that starts with a `SessionLog.START` event at the first
    step it will train: TensorBoard then discards the older files' events from that step on, so the
    curves continue without a doubled stretch (the steps trained after the last checkpoint).
    """

    def __init__(self, logdir, start_step=None):
        try:
            from tensorboard.compat.proto import event_pb2, summary_pb2
            from tensorboard.summary.writer.event_file_writer import EventFileWriter
        except ImportError:  # tensorboard is optional: the CSV holds the same numbers
            self._writer = None
            return
        self._event_pb2, self._summary_pb2 = event_pb2, summary_pb2
        self._writer = EventFileWriter(str(logdir), max_queue_size=100, flush_secs=10)
        if start_step is not None:
            session_log = event_pb2.SessionLog(status=event_pb2.SessionLog.START)
            self._writer.add_event(event_pb2.Event(wall_time=time.time(), step=int(start_step),
                                                   session_log=session_log))

    @property
    def enabled(self):
        return self._writer is not None

    def _add(self, step, values):
        summary = self._summary_pb2.Summary(value=values)
        self._writer.add_event(self._event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

    def scalars(self, step, scalars):
        """Log a dict of name -> number at `step` (names with a '/' are grouped by TensorBoard)."""
        if self.enabled:
            Value = self._summary_pb2.Summary.Value
            self._add(step, [Value(tag=tag, simple_value=float(v)) for tag, v in scalars.items()])

    def image(self, step, tag, png_path):
        """Log a PNG file as an image summary (the reconstruction grid)."""
        if not self.enabled:
            return
        from PIL import Image
        data = Path(png_path).read_bytes()
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            channels = len(img.getbands())
        image = self._summary_pb2.Summary.Image(height=height, width=width, colorspace=channels,
                                                encoded_image_string=data)
        self._add(step, [self._summary_pb2.Summary.Value(tag=tag, image=image)])

    def flush(self):
        if self.enabled:
            self._writer.flush()

    def close(self):
        if self.enabled:
            self._writer.close()
