"""`index.html` of a run folder: status, latest grid, loss curves, GIF, settings, every grid newest first.

In the spirit of the official implementation's results page (its `html.py`: header, images, save),
built only from the files in the run folder, with relative links and no scripts or CDNs, so it reads
offline and travels with the folder. The training loop rebuilds it every sample interval; to build
it for any run folder: `python -m utils.training.page run/cyclegan/0001_synthetic_apple2orange`.
"""

import html
import json
import math
import sys
from pathlib import Path

from utils.training.checkpoint import latest_name
from models.config import CycleGANConfig
from models.directions import DIRECTIONS
from utils.runtime.files import write_atomic
from utils.training import run_folder as layout
from utils.training.logs import COLUMNS, LOSS_COLUMNS
from utils.training.settings import TrainingSettings

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
img { max-width: 100%; border: 1px solid #eee; }
table { border-collapse: collapse; font-size: 0.9em; } td, th { padding: 2px 10px; text-align: left; }
tr:nth-child(even) { background: #f6f6f6; } .changed td { font-weight: bold; } .note { color: #666; }
.row { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }
figure { margin: 0 0 1em 0; } figcaption { color: #666; font-size: 0.85em; }
"""


def write_index(run_folder, status=None):
    """Write (atomically) and return `<run_folder>/index.html` from the files in the run folder."""
    run = Path(run_folder)
    meta = layout.read_run_config(run)
    grids = layout.grid_paths(run)
    version = grids[-1].stem if grids else "0"   # ?v=... makes a browser reload pictures that changed
    last = _last_losses(run / layout.LOSSES_CSV)
    if status is None and last:
        saved = latest_name(run / layout.WEIGHTS) or "none"
        status = f"step {last['step']} logged, latest checkpoint {saved}"
    parts = [f"<h1>CycleGAN run {html.escape(run.name)}</h1>",
             f"<p>Dataset <b>{html.escape(str(meta['dataset']))}</b>, started {html.escape(meta.get('created', '?'))}"
             + (f". Status: <b>{html.escape(status)}</b>" if status else "") + ".</p>",
             '<p class="note">Files: <a href="config.json">config.json</a> · <a href="logs/losses.csv">losses.csv</a>'
             f' · <a href="weights/">weights/</a> · TensorBoard: <code>tensorboard --logdir {html.escape(str(run))}'
             '/logs</code></p>']
    if grids:
        parts.append("<h2>Latest reconstruction grid</h2>")
        parts.append(_figure(grids[-1], run, version, "rows A → B → A and B → A → B; columns: original, "
                             "translated, reconstructed, identity (fixed test images)"))
    if last:
        parts.append("<h2>Latest losses</h2>")
        parts.append(_table(("step",) + LOSS_COLUMNS, [[last["step"]] + [last[name] for name in LOSS_COLUMNS]]))
    pictures = [(run / layout.LOSS_PLOT, "loss curves: faint = every step, solid = smoothed"),
                (run / layout.ANIMATION, "the grids over training")]
    present = [_figure(path, run, version, caption) for path, caption in pictures if path.exists()]
    if present:
        parts.append('<div class="row">' + "".join(present) + "</div>")
    parts.extend(evaluation_section(run))   # evaluate.py's results (utils/evaluation/unpaired.py), if any
    parts.append("<h2>Settings</h2>")
    parts.append('<p class="note">Bold rows differ from the defaults (book and paper).</p>')
    parts.append(_settings_table(meta))
    if grids:
        parts.append("<h2>All grids, newest first</h2>")
        parts.extend(_figure(path, run, version, path.stem, lazy=True) for path in reversed(grids))
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(run.name)}</title><style>{STYLE}</style></head>\n<body>\n"
            + "\n".join(parts) + "\n</body></html>\n")
    path = run / layout.INDEX
    write_atomic(path, page)
    return path


def kid_with_spread(mean, spread):
    """A KID and its spread at one precision: two significant digits of the larger, e.g. '0.0023 ± 0.0011',
    '3.2 ± 0.5'; a spread that rounds to 0 there (a tiny test set) is shown as '± <0.001'."""
    scale = max(abs(mean), abs(spread))
    if scale == 0:
        return "0 ± 0"
    decimals = max(0, 1 - math.floor(math.log10(scale)))
    spread_text = f"{spread:.{decimals}f}"
    if float(spread_text) == 0:
        spread_text = "<" + f"{10.0 ** -decimals:.{decimals}f}"
    return f"{mean:.{decimals}f} ± {spread_text}"


def results_table(results):
    """Rows (method, direction, judged target, mean p, KID judge, KID inception, cycle error, checkerboard
    median / p90) as text; '-' where a figure is absent (an evaluation.json written before it existed)."""
    def pct(value):
        return "withheld" if value is None else f"{value:.1%}"

    def kid_text(value):
        return "-" if value is None else kid_with_spread(*value)

    rows = []
    for name, scores in results["methods"].items():
        for direction in DIRECTIONS:
            s = scores[direction]
            rows.append((name, direction, pct(s["judged_target"]),
                         "withheld" if s["mean_p_target"] is None else f"{s['mean_p_target']:.2f}",
                         kid_text(s["kid_judge"]), kid_text(s["kid_inception"]), f"{s['cycle_error']:.3f}",
                         checkerboard_text(s.get("checkerboard"))))
    return ("method", "direction", "judged target", "mean p(target)", "KID (judge features)",
            "KID (Inception)", "cycle error", "checkerboard median / p90"), rows


def checkerboard_text(summary):
    """A checkerboard summary {"median", "p90"} as 'median / p90', '-' when there is none."""
    return "-" if not summary else f"{summary['median']:.2f} / {summary['p90']:.2f}"


def checkerboard_note(results):
    """The line that says what the checkerboard column means and the real test images' own level ('' if absent)."""
    real = results.get("checkerboard_real") or {}
    if not any(real.values()):
        return ""
    return ("Checkerboard: the 2- and 4-pixel grid of stride-2 upsampling (utils/evaluation/checkerboard.py), "
            "median / 90th percentile over the images; the real test images score A "
            f"{checkerboard_text(real.get('A'))}, B {checkerboard_text(real.get('B'))}.")


def evaluation_section(run):
    """The page section of a run's evaluation.json (written by evaluate.py), or [] when there is none."""
    path = Path(run) / layout.EVALUATION_JSON
    if not path.is_file():
        return []
    results = json.loads(path.read_text())
    header, rows = results_table(results)
    acc = results["judge"]["accuracy_on_real_test"]
    note = checkerboard_note(results)
    table = ["<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"]
    table += ["<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>" for row in rows]
    parts = ["<h2>Evaluation on the real test images</h2>",
             f"<p>{html.escape(results['dataset'])} at {results['image_size']} px (python evaluate.py). "
             f"The domain judge (a small CNN trained on the training images only) is right on "
             f"{acc['A']:.1%} of the real test A and {acc['B']:.1%} of the real test B images"
             + ("" if acc["usable"] else " and is <b>unusable</b>: its rates are withheld") + ". "
             "KID: lower is closer to the real target images.</p>",
             *([f'<p class="note">{html.escape(note)}</p>'] if note else []),
             "\n".join(table) + "</table>"]
    if (Path(run) / layout.EVALUATION_FIGURE).is_file():
        parts.append(f'<figure><img src="{layout.EVALUATION_FIGURE}" alt="test images by every method">'
                     "<figcaption>real test images translated by every method</figcaption></figure>")
    if (Path(run) / layout.FAILURES_FIGURE).is_file():
        parts.append(f'<figure><img src="{layout.FAILURES_FIGURE}" alt="the least convincing translations">'
                     "<figcaption>failures: the translations the judge finds least like the target domain"
                     "</figcaption></figure>")
    return parts


def _figure(path, run, version, caption, lazy=False):
    src = html.escape(path.relative_to(run).as_posix())
    loading = ' loading="lazy"' if lazy else ""
    return (f'<figure><img src="{src}?v={version}" alt="{html.escape(caption)}"{loading}>'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _table(header, rows, changed=()):
    out = ["<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"]
    for i, row in enumerate(rows):
        css = ' class="changed"' if i in changed else ""
        out.append(f"<tr{css}>" + "".join(f"<td>{html.escape(_show(v))}</td>" for v in row) + "</tr>")
    return "\n".join(out) + "</table>"


def _show(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return " x ".join(str(v) for v in value)
    return "-" if value is None else str(value)


def _settings_table(meta):
    """Model, training and environment settings; values that differ from their default are bold."""
    model = meta["model"]
    defaults = CycleGANConfig().to_dict()
    # n_resnet_blocks defaults to the paper's choice for the image size (6 below 256 px, else 9).
    defaults["n_resnet_blocks"] = CycleGANConfig(input_dim=model["input_dim"],
                                                 generator_type=model["generator_type"]).n_resnet_blocks
    rows, changed = [], []
    sections = [("model", model, defaults), ("training", meta["training"], TrainingSettings.defaults()),
                ("environment", meta.get("environment", {}), {})]
    for section, values, section_defaults in sections:
        for name, value in values.items():
            default = section_defaults.get(name, "")
            differs = name in section_defaults and _norm(value) != _norm(default)
            if differs:
                changed.append(len(rows))
            rows.append((section, name, value, default if name in section_defaults else ""))
    return _table(("section", "setting", "value", "default"), rows, changed)


def _norm(value):
    return list(value) if isinstance(value, tuple) else value


def _last_losses(csv_path):
    """The last complete row of losses.csv, read from the end of the file (it may be long)."""
    if not csv_path.exists():
        return None
    with open(csv_path, "rb") as f:
        f.seek(0, 2)
        f.seek(max(0, f.tell() - 4096))
        lines = f.read().decode("utf-8", "replace").splitlines()
    for line in reversed(lines):
        fields = line.split(",")
        if len(fields) == len(COLUMNS):
            try:
                values = [float(v) for v in fields]
            except ValueError:
                continue
            row = dict(zip(COLUMNS, values))
            row["step"] = int(row["step"])
            return row
    return None


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m utils.training.page RUN_FOLDER")
    print(write_index(sys.argv[1]))
