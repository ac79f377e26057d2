"""Loss-weight ablations: train several configurations alike, score them, tabulate and picture them.

The paper's Table 4 compares GAN alone, cycle alone and the full loss; the book's figure 5-9 shows
what the identity loss keeps (the shelf behind the oranges). `run_ablation` trains each variant of
one base config (`dataclasses.replace(base, **changes)`) with the same seed, data and step budget,
scores it on the paired synthetic test set (utils/evaluation/paired.py) beside three baselines, and writes

    <out_root>/<name>/
        ablation.json          the settings, checked when the ablation is resumed
        runs/<variant>/        each variant's training run folder (utils.training.trainer.train)
        results/<variant>.json that variant's scores: written last, it marks the variant finished
        results/<variant>.npz  its translations of the fixed example images (for the figure)
        results/baselines.json the baselines' scores
        results/examples.json  the indices of the test images in the figure, fixed at the start
        table.csv, table.md    rows = variants and baselines, columns = metric per direction
        translations.png       rows = input, each variant, ground truth; columns = example images
        metrics.png            bar chart of the key metrics

Calling it again resumes: finished variants are skipped, a variant killed mid-training continues
from its latest checkpoint (`train(..., resume=True)`).
"""

import csv
import dataclasses
import io
import json
import re
import shutil
import time
from pathlib import Path

import numpy as np

from models.config import CycleGANConfig
from models.directions import DIRECTIONS, domains
from utils.runtime.files import write_atomic, write_json
from utils import plots
from utils.datasets.synthetic import SYNTHETIC_DATASETS, ensure_size
from utils.evaluation import baselines, paired
from utils.inference.trained_model import load_generators
from utils.training import run_folder as layout
from utils.training import trainer
from utils.training.lock import RunLock

# The full loss with the official code's weights (lambda_id 5 = its 0.5 x lambda_reconstr), then one change each.
FULL_LOSS = {"lambda_validation": 1.0, "lambda_reconstr": 10.0, "lambda_id": 5.0}
DEFAULT_VARIANTS = {
    "full": {},
    "lambda_id=0": {"lambda_id": 0.0},
    "lambda_id=2": {"lambda_id": 2.0},
    "lambda_reconstr=0": {"lambda_reconstr": 0.0},      # GAN alone (+ identity): paper Table 4
    "lambda_validation=0": {"lambda_validation": 0.0},  # cycle alone (+ identity): paper Table 4
}
# What each row shows, for tables and the notebook.
DESCRIPTIONS = {
    "full": "full loss: adversarial 1, cycle 10, identity 5",
    "lambda_id=0": "no identity loss (book figure 5-9)",
    "lambda_id=2": "the book's apple2orange identity weight",
    "lambda_reconstr=0": "GAN alone + identity (paper Table 4)",
    "lambda_validation=0": "cycle alone + identity (paper Table 4)",
    "identity": "baseline: no change",
    "histogram matching": "baseline: match the target domain's histogram",
    "colour transfer": "baseline: Lab mean/std transfer",
}
KEY_METRICS = ("paired_l1", "background_change", "hue_error", "cycle_error")
SETTINGS_FILE = "ablation.json"   # the ablation folder's layout (module docstring): its settings,
RUNS = "runs"                     # each variant's run folder
RESULTS = "results"               # each variant's scores and pictures, the baselines', the examples


def full_config(**changes):
    """The base of the default ablation: CycleGANConfig with the full loss, plus `changes`."""
    return CycleGANConfig(**{**FULL_LOSS, **changes})


def variant_configs(base_config, variants=None):
    """{variant name: base_config with that variant's fields replaced}."""
    variants = DEFAULT_VARIANTS if variants is None else variants
    if not variants:
        raise ValueError("an ablation needs at least one variant, e.g. {'full': {}}")
    known = {f.name for f in dataclasses.fields(CycleGANConfig)}
    configs = {}
    for name, changes in variants.items():
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"variant {name!r} changes unknown setting(s) {unknown}; known: {sorted(known)}")
        try:
            configs[name] = dataclasses.replace(base_config, **changes)
        except (TypeError, ValueError) as error:
            raise ValueError(f"variant {name!r}: {error}") from None
    folders = {}
    for name in configs:   # 'a b' and 'a_b' would share runs/a_b and results/a_b.json
        if slug(name) in folders:
            raise ValueError(f"variants {folders[slug(name)]!r} and {name!r} would share the folder "
                             f"runs/{slug(name)}: rename one (--variant NAME:FIELD=VALUE)")
        folders[slug(name)] = name
    return configs


def parse_variant(spec):
    """A CLI variant: 'full', 'lambda_id=0', 'no_cycle:lambda_reconstr=0,lambda_id=0' -> (name, changes)."""
    name, _, changes = spec.partition(":") if ":" in spec else (spec, None, spec)
    if changes == "full" or not changes:
        return name, {}
    parsed = {}
    for item in changes.split(","):
        key, equals, value = item.partition("=")
        if not equals:
            raise ValueError(f"variant {spec!r}: expected NAME or [NAME:]field=value[,field=value], got {item!r}")
        try:
            parsed[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            parsed[key.strip()] = value.strip()
    return name, parsed


def slug(name):
    """A folder-safe name: 'lambda_id=0' -> 'lambda_id_0'."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "variant"


def example_indices(n_test, n_examples):
    """Evenly spaced, fixed test images for the figure."""
    return sorted({int(i) for i in np.linspace(0, n_test - 1, min(n_examples, n_test))})


# ----------------------------------------------------------------- the runner
def prepare_dataset(dataset, img_size, data_root="data"):
    """Generate a synthetic dataset at `img_size` if it is missing, as `train` does; others must exist."""
    if dataset in SYNTHETIC_DATASETS:
        ensure_size(dataset, data_root=data_root, size=img_size)
    return Path(data_root) / dataset


def run_ablation(base_config, dataset, name, variants=None, *, max_steps, data_root="data",
                 out_root="run/ablation", batch_size=1, n_examples=4, progress=True, **train_kwargs):
    """Train, score and compare every variant; resume a half-done ablation. Returns its folder.

    base_config: the CycleGANConfig every variant starts from (e.g. `full_config(input_dim=...)`).
    variants: {name: {field: value}} (default `DEFAULT_VARIANTS`); all share the base's seed.
    max_steps: the step budget of every variant; batch_size and train_kwargs go to `train`.
    n_examples: test images per direction in the figure, chosen when the ablation starts.
    progress: the ablation's lines and train's bar (True), neither (False), or 'auto': the bar only on a
        terminal or in a notebook, lines in a log file (utils.cli.wants_bar).
    """
    configs = variant_configs(base_config, variants)   # every value checked before a folder is made
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"max_steps={max_steps!r}: every variant needs a step budget, an integer >= 1")
    folder = Path(out_root) / name
    created = not folder.exists()
    lock = RunLock(folder, what="ablation")   # a second ablate.py on this folder stops here, naming the first
    lock.acquire()
    try:
        _run_variants(folder, base_config, configs, dataset, max_steps, data_root, batch_size, n_examples,
                      progress, train_kwargs)
    except BaseException:
        lock.release()
        if created and not any((folder / RUNS).glob("*/" + layout.CONFIG)):   # nothing trained: no orphan
            shutil.rmtree(folder, ignore_errors=True)
        raise
    lock.release()
    return folder


def _run_variants(folder, base_config, configs, dataset, max_steps, data_root, batch_size, n_examples, progress,
                  train_kwargs):
    """run_ablation's work, inside its lock: settings, test set, each variant, baselines, report."""
    (folder / RESULTS).mkdir(parents=True, exist_ok=True)
    settings = {"dataset": dataset, "max_steps": max_steps, "batch_size": batch_size,
                "base_config": base_config.to_dict(),
                "variants": {k: v.to_dict() for k, v in configs.items()}}
    _check_settings(folder, settings)

    img_res = base_config.input_dim[:2]
    prepare_dataset(dataset, img_res[0], data_root)
    test_set = paired.load_test_set(dataset, img_res, data_root)
    examples_file = folder / RESULTS / "examples.json"  # fixed at the start, like the grids' images
    if not examples_file.is_file():
        write_json(examples_file, example_indices(len(test_set["names"]), n_examples))
    examples = json.loads(examples_file.read_text())
    for variant, config in configs.items():
        marker = folder / RESULTS / f"{slug(variant)}.json"
        if marker.is_file():
            if progress:
                print(f"[ablation] {variant}: finished earlier, skipped", flush=True)
            continue
        run = folder / RUNS / slug(variant)
        resume = (run / layout.CONFIG).is_file()  # started before: go on from its latest checkpoint
        if progress:
            print(f"[ablation] {variant}: {'resuming' if resume else 'training'} to step {max_steps}", flush=True)
        start = time.perf_counter()
        trainer.train(config, dataset, run, data_root=data_root, batch_size=batch_size, max_steps=max_steps,
                      resume=resume, progress=progress, **train_kwargs)
        seconds = time.perf_counter() - start
        model = load_generators(run)   # its latest checkpoint, as translate.py and evaluate.py load it
        translate = baselines.model_translator(model)
        pictures = {d: translate(test_set[domains(d)[0]][examples], d) for d in DIRECTIONS}
        np.savez(folder / RESULTS / f"{slug(variant)}.npz", **pictures)
        write_json(marker, {"variant": variant, "config": config.to_dict(), "step": model.step,
                            "train_seconds": round(seconds, 1), "resumed": resume,
                            "metrics": paired.evaluate_translator(translate, test_set)})

    baselines_file = folder / RESULTS / "baselines.json"
    if not baselines_file.is_file():
        write_json(baselines_file, paired.evaluate_baselines(dataset, img_res, data_root, test_set))
    write_report(folder, test_set, examples)


def _check_settings(folder, settings):
    path = folder / SETTINGS_FILE
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved != json.loads(json.dumps(settings)):
            differ = sorted(k for k in settings if saved.get(k) != json.loads(json.dumps(settings[k])))
            raise ValueError(f"{folder} holds an ablation with other settings ({', '.join(differ)} differ): "
                             "resume it with the same settings or choose another name")
    else:
        write_json(path, settings)


# ----------------------------------------------------------------- reports
def load_results(folder):
    """{row name: {"kind": "variant" | "baseline", "metrics": {direction: {metric: value}}, ...}}."""
    folder = Path(folder)
    settings = json.loads((folder / SETTINGS_FILE).read_text())
    rows = {}
    for variant in settings["variants"]:
        marker = folder / RESULTS / f"{slug(variant)}.json"
        if marker.is_file():
            rows[variant] = {"kind": "variant", **json.loads(marker.read_text())}
    baselines = folder / RESULTS / "baselines.json"
    if baselines.is_file():
        for name, metrics in json.loads(baselines.read_text()).items():
            rows[name] = {"kind": "baseline", "metrics": metrics}
    return rows


def table_rows(rows):
    """Flat rows for the table: name, kind, then '<direction> <metric>' columns."""
    out = []
    for name, row in rows.items():
        flat = {"name": name, "kind": row["kind"]}
        for direction in DIRECTIONS:
            for metric in paired.METRICS:
                flat[f"{direction} {metric}"] = round(row["metrics"][direction][metric], 6)
        out.append(flat)
    return out


def _fmt(metric, value):
    return f"{value:.1f}" if metric in ("hue_error", "psnr") else f"{value:.3f}"


def markdown_table(rows, directions=DIRECTIONS, metrics=paired.METRICS):
    """A Markdown table: a row per variant and baseline, a column per metric and direction."""
    arrows = {m: "↓" if paired.LOWER_IS_BETTER[m] else "↑" for m in metrics}
    header = ["row"] + [f"{d} {m} {arrows[m]}" for d in directions for m in metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in rows.items():
        label = name if row["kind"] == "variant" else f"*{name}*"
        cells = [_fmt(m, row["metrics"][d][m]) for d in directions for m in metrics]
        lines.append("| " + " | ".join([label] + cells) + " |")
    return "\n".join(lines) + "\n"


def write_report(folder, test_set, examples):
    """(Re)write table.csv, table.md, translations.png and metrics.png from the saved results."""
    folder = Path(folder)
    rows = load_results(folder)
    flat = table_rows(rows)
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=list(flat[0]))
    writer.writeheader()
    writer.writerows(flat)
    write_atomic(folder / "table.csv", table.getvalue())
    settings = json.loads((folder / SETTINGS_FILE).read_text())
    note = (f"{settings['dataset']}, {settings['base_config']['input_dim'][0]} px, {settings['max_steps']} steps "
            f"of batch {settings['batch_size']}, seed {settings['base_config']['seed']}; "
            "↓ lower is better, ↑ higher; *italic* rows are baselines; L1 on [0, 1], hue error in degrees.\n\n")
    write_atomic(folder / "table.md", note + markdown_table(rows))
    pictures = {v: np.load(folder / RESULTS / f"{slug(v)}.npz") for v in rows if rows[v]["kind"] == "variant"}
    plots.save_ablation_translations(test_set, examples, pictures, folder / "translations.png", dpi=80)
    plots.save_ablation_metrics(rows, KEY_METRICS, paired.LOWER_IS_BETTER, folder / "metrics.png", dpi=80)


def export_results(folder, target, data_root="data", n_examples=2, dpi=80):
    """Copy an ablation's tables and bar chart to `target` (e.g. docs/ablation) with a smaller figure.

    The figure keeps the first `n_examples` example images of each direction, so it stays small
    enough for a README (about 200 KB for five variants at 64 px).
    """
    folder, target = Path(folder), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    settings = json.loads((folder / SETTINGS_FILE).read_text())
    test_set = paired.load_test_set(settings["dataset"], settings["base_config"]["input_dim"][:2], data_root)
    examples = json.loads((folder / RESULTS / "examples.json").read_text())[:n_examples]
    rows = load_results(folder)
    pictures = {}
    for variant in (v for v in rows if rows[v]["kind"] == "variant"):
        with np.load(folder / RESULTS / f"{slug(variant)}.npz") as saved:
            pictures[variant] = {d: saved[d][:n_examples] for d in DIRECTIONS}
    plots.save_ablation_translations(test_set, examples, pictures, target / "translations.png", dpi=dpi)
    for name in ("table.md", "table.csv", "metrics.png"):
        write_atomic(target / name, (folder / name).read_bytes())
    return target


def check_claims(rows):
    """What the ablation should show, where the rows to test it exist: the full loss beats every baseline on
    paired L1, no identity loss changes the background more (book figure 5-9), no cycle loss cycles back
    worse (paper Table 4). Returns [(claim, holds, measured)]."""
    claims = []
    full = rows.get("full")
    if full is None:
        return claims
    baselines = [n for n, r in rows.items() if r["kind"] == "baseline"]
    for direction in DIRECTIONS:
        if baselines:
            ours = full["metrics"][direction]["paired_l1"]
            best = min(baselines, key=lambda n: rows[n]["metrics"][direction]["paired_l1"])
            theirs = rows[best]["metrics"][direction]["paired_l1"]
            claims.append((f"full beats every baseline on {direction} paired L1", ours < theirs,
                           f"{ours:.3f} vs best baseline {best} {theirs:.3f}"))
    for variant, metric in (("lambda_id=0", "background_change"), ("lambda_reconstr=0", "cycle_error")):
        if variant in rows:
            for direction in DIRECTIONS:
                theirs, ours = rows[variant]["metrics"][direction][metric], full["metrics"][direction][metric]
                claims.append((f"{variant} has a larger {direction} {metric} than full", theirs > ours,
                               f"{theirs:.3f} vs {ours:.3f}"))
    return claims


def model_sources(paths):
    """[(label, source)] for serve.py: each path as it is (labelled by its name), an ablation folder as its
    trained variants in order, labelled by their descriptions."""
    models = []
    for path in map(Path, paths):
        settings = path / SETTINGS_FILE
        if not settings.is_file():
            models.append((path.name, path))
            continue
        variants = json.loads(settings.read_text())["variants"]
        trained = [(v, path / RUNS / slug(v)) for v in variants if (path / RUNS / slug(v) / layout.WEIGHTS).is_dir()]
        if not trained:
            raise FileNotFoundError(f"ablation {path} has no trained variant yet (runs/<variant>/weights)")
        models += [(f"{v}: {DESCRIPTIONS[v]}" if v in DESCRIPTIONS else v, run) for v, run in trained]
    return models
