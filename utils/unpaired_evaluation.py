"""Score a CycleGAN on a real, unpaired dataset, beside the baselines it must beat.

    python evaluate.py run/cyclegan/0001_apple2orange        # writes evaluation.json, a figure, a page section

For each direction (AtoB translates the real test A images, BtoA the test B images), every
translator (the CycleGAN and the baselines of utils/evaluation.py: do nothing, histogram matching,
colour transfer) is scored by the same code:

    judged_target   fraction of translations the domain judge (utils/judge.py) calls the target domain
    mean_p_target   the judge's mean probability of the target domain
    kid_judge       KID (mean, std) between the translations and the real target test images, on the
                    judge's features; kid_inception the same on InceptionV3 ImageNet features when
                    those weights are on this machine (None otherwise)
    cycle_error     mean |back(there(x)) - x| in [0, 1] (paper eq. 2 on test images)

The judge's own accuracy on the real test images is reported with every figure; when it is below
utils.judge.MIN_JUDGE_ACCURACY its rates are withheld (None).
"""

import json
import warnings
from pathlib import Path

import numpy as np

from models.files import write_json
from utils import judge as judges
from models.directions import DIRECTIONS, domains, reverse

# utils/evaluation.py (scikit-image) is imported only where a baseline is needed, so that a results
# page (utils/report.py) can show an evaluation without scikit-image.

EVALUATION_JSON = "evaluation.json"
EVALUATION_FIGURE = "images/evaluation.png"
FAILURES_FIGURE = "images/evaluation_failures.png"
TRAIN_LIMIT = 200          # training images per domain the histogram / colour baselines are fitted on
FIGURE_IMAGES = 3          # test images per direction in the figure


def load_images(folder, size, limit=None, seed=0):
    """Images of a folder as (n, size, size, 3) float32 in [0, 1] (whole image resized, bicubic).

    Unreadable files are skipped with a warning naming them; `limit` picks a seeded random subset.
    """
    from utils.images import ImageReadError, list_images, read_rgb, resize_rgb

    paths = list_images(folder)
    if limit is not None and len(paths) > limit:
        rng = np.random.default_rng(seed)
        paths = [paths[i] for i in sorted(rng.choice(len(paths), limit, replace=False))]
    images = []
    for path in paths:
        try:
            images.append(resize_rgb(read_rgb(path), (size, size)))
        except ImageReadError as error:
            warnings.warn(f"skipped: {error}")
    if not images:
        raise FileNotFoundError(f"no readable images in {folder}")
    return np.stack(images).astype(np.float32) / 255.0


def score_translator(translate, test, scorer):
    """Every measure of one translator in both directions: {"AtoB": {...}, "BtoA": {...}}.

    translate(images, direction) -> images, (n, h, w, 3) in [0, 1]; test: {"A": ..., "B": ...};
    scorer: a `Scorer` (the judge, its accuracy and the KID features).
    """
    results = {}
    for direction in DIRECTIONS:
        source, target = domains(direction)
        translated = np.clip(np.asarray(translate(test[source], direction), np.float32), 0, 1)
        cycled = np.clip(np.asarray(translate(translated, reverse(direction)), np.float32), 0, 1)
        results[direction] = {**judges.judge_rates(scorer.judge, translated, target, scorer.accuracy),
                              **scorer.kids(translated, target),
                              "cycle_error": float(np.mean(np.abs(cycled - test[source])))}
    return results


class Scorer:
    """The judge of a dataset with its accuracy on the real test images, and the KID feature extractors."""

    def __init__(self, judge, features, test, inception=None):
        self.judge, self.features, self.inception = judge, features, inception
        self.accuracy = judges.judge_accuracy(judge, test["A"], test["B"])
        self.real = {d: self._features(test[d]) for d in ("A", "B")}

    def _features(self, images):
        out = {"judge": judges.judge_features(self.features, images)}
        if self.inception is not None:
            out["inception"] = judges.inception_features(self.inception, images)
        return out

    def kids(self, translated, target):
        feats = self._features(translated)
        out = {"kid_judge": judges.kid(feats["judge"], self.real[target]["judge"]), "kid_inception": None}
        if self.inception is not None:
            out["kid_inception"] = judges.kid(feats["inception"], self.real[target]["inception"])
        return out


def load_inception(mode="auto", log=print):
    """InceptionV3 for KID: mode 'auto' uses it only when its ImageNet weights are already on this
    machine, 'download' lets Keras fetch them (about 90 MB), 'off' never uses it. None when unused."""
    if mode == "off":
        return None
    if mode == "auto" and not judges.inception_weights_cached():
        log("InceptionV3 ImageNet weights not on this machine: KID on the judge's features only "
            "(python evaluate.py RUN --inception download fetches them, about 90 MB)")
        return None
    return judges.inception_features_model("imagenet")


def evaluate_unpaired(gan, dataset, data_root="data", inception="auto", log=print, test_limit=None):
    """Score `gan` (a CycleGAN) and the baselines on `dataset`'s real test images at the model's size.

    Returns (results, test, translators, scorer): results = {"dataset", "image_size", "judge": {accuracy, cache info},
    "features", "methods": {name: score_translator(...)}}; test = the images scored; translators =
    {name: translate}; scorer = the `Scorer` (the judge and its accuracy).
    """
    size = int(gan.config.input_dim[0])
    folder = Path(data_root) / dataset
    test = {d: load_images(folder / f"test{d}", size, limit=test_limit) for d in ("A", "B")}
    judge, features, info = judges.load_or_train_judge(dataset, size, data_root, log=log)
    scorer = Scorer(judge, features, test, load_inception(inception, log))
    acc = scorer.accuracy
    log(f"judge accuracy on the real test images: A {acc['A']:.1%}, B {acc['B']:.1%} "
        f"({'usable' if acc['usable'] else 'UNUSABLE: its rates are withheld'})")
    train = {d: load_images(folder / f"train{d}", size, limit=TRAIN_LIMIT) for d in ("A", "B")}
    from utils.evaluation import baseline_translators
    translators = {"CycleGAN": model_translator(gan), **baseline_translators(train["A"], train["B"])}
    methods = {name: score_translator(translate, test, scorer) for name, translate in translators.items()}
    results = {"dataset": dataset, "image_size": size, "n_test": {d: len(test[d]) for d in ("A", "B")},
               "judge": {"accuracy_on_real_test": acc, "cache": info},
               "features": ["judge"] + (["inception"] if scorer.inception is not None else []),
               "methods": methods}
    return results, test, translators, scorer


def results_table(results):
    """Rows (method, direction, judged target, mean p, KID judge, KID inception, cycle error) as text."""
    def pct(value):
        return "withheld" if value is None else f"{value:.1%}"

    def kid_text(value):
        return "-" if value is None else f"{value[0]:.3g} ± {value[1]:.2g}"

    rows = []
    for name, scores in results["methods"].items():
        for direction in DIRECTIONS:
            s = scores[direction]
            rows.append((name, direction, pct(s["judged_target"]),
                         "withheld" if s["mean_p_target"] is None else f"{s['mean_p_target']:.2f}",
                         kid_text(s["kid_judge"]), kid_text(s["kid_inception"]), f"{s['cycle_error']:.3f}"))
    return ("method", "direction", "judged target", "mean p(target)", "KID (judge features)",
            "KID (Inception)", "cycle error"), rows


def format_table(results):
    """The results as a Markdown table, with the judge's accuracy on the real test images above it."""
    acc = results["judge"]["accuracy_on_real_test"]
    header, rows = results_table(results)
    lines = [f"{results['dataset']} at {results['image_size']} px, {results['n_test']['A']} test A / "
             f"{results['n_test']['B']} test B images; the judge's accuracy on the real test images: "
             f"A {acc['A']:.1%}, B {acc['B']:.1%}" + ("" if acc["usable"] else " (UNUSABLE: rates withheld)"),
             "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def save_figure(translators, test, path, n=FIGURE_IMAGES):
    """Rows: the first `n` test images of each direction; columns: input, each translator's output,
    the CycleGAN's cycle back. Saved as a PNG at `path`."""
    from utils.plots import image_table

    names = list(translators)
    rows, labels = [], []
    for direction in DIRECTIONS:
        images = test[domains(direction)[0]][:n]
        outputs = {name: np.clip(np.asarray(translators[name](images, direction)), 0, 1) for name in names}
        cycled = np.clip(np.asarray(translators["CycleGAN"](outputs["CycleGAN"], reverse(direction))), 0, 1)
        for i in range(len(images)):
            rows.append([images[i] * 2 - 1] + [outputs[name][i] * 2 - 1 for name in names] + [cycled[i] * 2 - 1])
            labels.append(direction)
    return image_table(rows, path, column_titles=["input"] + names + ["CycleGAN cycled back"], row_labels=labels)


def save_failures(translate, test, judge, path, n=4):
    """The `n` test images of each direction whose translation the judge finds least like the target
    (lowest p(target)): input, translation, p(target). Saved as a PNG at `path`."""
    from utils.plots import image_table

    rows, labels = [], []
    for direction in DIRECTIONS:
        source, target = domains(direction)
        out = np.asarray(translate(test[source], direction))
        p_B = judges.predict_p_B(judge, out)
        p_target = p_B if target == "B" else 1 - p_B
        for i in np.argsort(p_target)[:n]:
            rows.append([test[source][i] * 2 - 1, out[i] * 2 - 1])
            labels.append(f"{direction} p={p_target[i]:.2f}")
    return image_table(rows, path, column_titles=["input", "CycleGAN"], row_labels=labels,
                       title="the judge's least convinced translations")


def load_scored_model(run_folder, dataset=None, data_root=None):
    """The model of a run folder (its latest checkpoint) or of a model folder such as
    pretrained/apple2orange_128, with the dataset it is scored on: (model, checkpoint name or None,
    dataset, data_root). `dataset` and `data_root` default to what the folder records."""
    from utils import run_folder as layout

    run = Path(run_folder)
    meta = json.loads((run / layout.CONFIG).read_text())
    if "format" in meta:                      # a model folder (utils/trained_model.py): generators only
        from utils.trained_model import load_generators
        model, checkpoint_name = load_generators(run), None
        dataset = dataset or meta.get("dataset")
        data_root = data_root or "data"
    else:
        from utils.training import load_run
        model = load_run(run)
        latest = run / layout.WEIGHTS / "latest"
        checkpoint_name = latest.read_text().strip() if latest.is_file() else None
        dataset = dataset or meta["dataset"]
        data_root = data_root or meta["training"].get("data_root", "data")
    if not dataset:
        raise FileNotFoundError(f"{run} does not say which dataset it was trained on: give --dataset NAME")
    return model, checkpoint_name, dataset, data_root


def judge_rates_by_split(translate, dataset, data_root, size, splits=("test", "train"), limit=None, log=print):
    """Is a translator's judged rate a property of the model or of the test photos? For each split,
    the judge's accuracy on the real photos and the rates of their translations, both directions:
    {split: {"n": {A, B}, "judge_accuracy": judge_accuracy(...), "AtoB": judge_rates(...), "BtoA": ...}}.
    `translate` as for `score_translator`; `limit` images per domain and split (seeded subset)."""
    judge, _, _ = judges.load_or_train_judge(dataset, size, data_root, log=log)
    out = {}
    for split in splits:
        images = {d: load_images(Path(data_root) / dataset / f"{split}{d}", size, limit=limit) for d in ("A", "B")}
        accuracy = judges.judge_accuracy(judge, images["A"], images["B"])
        out[split] = {"n": {d: len(images[d]) for d in images}, "judge_accuracy": accuracy}
        for direction in DIRECTIONS:
            source, target = domains(direction)
            translated = np.clip(np.asarray(translate(images[source], direction), np.float32), 0, 1)
            out[split][direction] = judges.judge_rates(judge, translated, target, accuracy)
    return out


def evaluate_run(run_folder, dataset=None, data_root=None, inception="auto", log=print, test_limit=None):
    """Evaluate a run folder's latest checkpoint (or a model folder such as pretrained/apple2orange_128);
    write evaluation.json and the figure into it and, for a run, rebuild its index.html (which shows
    them). Returns the results dict."""
    from utils import run_folder as layout

    run = Path(run_folder)
    model, checkpoint_name, dataset, data_root = load_scored_model(run, dataset, data_root)
    meta = json.loads((run / layout.CONFIG).read_text())
    results, test, translators, scorer = evaluate_unpaired(model, dataset, data_root, inception, log, test_limit)
    results["checkpoint"] = checkpoint_name
    write_json(run / EVALUATION_JSON, results)
    save_figure(translators, test, run / EVALUATION_FIGURE)
    if scorer.accuracy["usable"]:
        save_failures(translators["CycleGAN"], test, scorer.judge, run / FAILURES_FIGURE)
    if "format" not in meta:
        from utils.report import write_index
        write_index(run)
    return results


def html_section(run):
    """The page section of a run's evaluation.json (utils/report.py), or [] when there is none."""
    import html

    path = Path(run) / EVALUATION_JSON
    if not path.is_file():
        return []
    results = json.loads(path.read_text())
    header, rows = results_table(results)
    acc = results["judge"]["accuracy_on_real_test"]
    table = ["<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"]
    table += ["<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>" for row in rows]
    parts = ["<h2>Evaluation on the real test images</h2>",
             f"<p>{html.escape(results['dataset'])} at {results['image_size']} px (python evaluate.py). "
             f"The domain judge (a small CNN trained on the training images only) is right on "
             f"{acc['A']:.1%} of the real test A and {acc['B']:.1%} of the real test B images"
             + ("" if acc["usable"] else " and is <b>unusable</b>: its rates are withheld") + ". "
             "KID: lower is closer to the real target images.</p>",
             "\n".join(table) + "</table>"]
    if (Path(run) / EVALUATION_FIGURE).is_file():
        parts.append(f'<figure><img src="{EVALUATION_FIGURE}" alt="test images by every method">'
                     "<figcaption>real test images translated by every method</figcaption></figure>")
    if (Path(run) / FAILURES_FIGURE).is_file():
        parts.append(f'<figure><img src="{FAILURES_FIGURE}" alt="the least convincing translations">'
                     "<figcaption>failures: the translations the judge finds least like the target domain"
                     "</figcaption></figure>")
    return parts


def model_translator(model):
    """A translator on [0, 1] images for a CycleGAN or a utils.trained_model.TrainedGenerators."""
    if hasattr(model, "generator"):      # TrainedGenerators: g_AB / g_BA for any size
        def translate(images, direction):
            x = np.asarray(images, np.float32) * 2 - 1
            out = model.generator(direction).predict(x, batch_size=16, verbose=0)
            return np.clip((np.asarray(out, np.float64) + 1) / 2, 0, 1)
        return translate
    from utils.evaluation import gan_translator
    return gan_translator(model)


def real_sample_figures(model, folder):
    """Figures of a model on a small real test set (testA/, testB/), at the model's training size:
    {"AtoB_change": mean |G(x) - x|, "AtoB_cycle": mean |F(G(x)) - x|, "AtoB_mean_rgb_*": the translations'
    mean colour, and the same for BtoA}, all in [0, 1]. Used to catch a silent change in preprocessing."""
    size = int(model.config.input_dim[0])
    translate = model_translator(model)
    figures = {}
    for direction in DIRECTIONS:
        images = load_images(Path(folder) / f"test{domains(direction)[0]}", size)
        out = translate(images, direction)
        back = translate(out, reverse(direction))
        figures[f"{direction}_change"] = float(np.mean(np.abs(out - images)))
        figures[f"{direction}_cycle"] = float(np.mean(np.abs(back - images)))
        for channel, value in zip("rgb", out.mean(axis=(0, 1, 2))):
            figures[f"{direction}_mean_rgb_{channel}"] = float(value)
    return figures
