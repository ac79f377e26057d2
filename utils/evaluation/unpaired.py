"""Score a CycleGAN on a real, unpaired dataset, beside the baselines it must beat.

    python evaluate.py run/cyclegan/0001_apple2orange        # writes evaluation.json, a figure, a page section

For each direction (AtoB translates the real test A images, BtoA the test B images), every
translator (the CycleGAN and the baselines of utils/evaluation/paired.py: do nothing, histogram matching,
colour transfer) is scored by the same code:

    judged_target   fraction of translations the domain judge (utils/evaluation/judge.py) calls the target domain
    mean_p_target   the judge's mean probability of the target domain
    kid_judge       KID (mean, std) between the translations and the real target test images, on the
                    judge's features; kid_inception the same on InceptionV3 ImageNet features when
                    those weights are on this machine (None otherwise)
    cycle_error     mean |back(there(x)) - x| in [0, 1] (paper eq. 2 on test images)
    checkerboard    {median, p90, n} over the translations of the checkerboard score, the 2- and 4-pixel
                    grid of stride-2 upsampling (utils/evaluation/checkerboard.py); the real test images'
                    own, the level to compare with, are results["checkerboard_real"] (None below 32 px)

The judge's own accuracy on the real test images is reported with every figure; when it is below
utils.evaluation.judge.MIN_JUDGE_ACCURACY its rates are withheld (None).
"""

from pathlib import Path

import numpy as np

from models.directions import DIRECTIONS, DOMAINS, domains, reverse
from utils.runtime.files import write_json
from utils.evaluation import checkerboard
from utils.evaluation import judge as judges
from utils.evaluation.baselines import baseline_translators, model_translator
from utils.images import load_images
from utils.inference.trained_model import is_model_folder, load_generators
from utils.plots import image_table
from utils.training import run_folder as layout
from utils.training.page import checkerboard_note, results_table, write_index

TRAIN_LIMIT = 200          # training images per domain the histogram / colour baselines are fitted on
FIGURE_IMAGES = 3          # test images per direction in the figure


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
                              "cycle_error": float(np.mean(np.abs(cycled - test[source]))),
                              "checkerboard": checkerboard_summary(translated)}
    return results


def checkerboard_summary(images):
    """utils.evaluation.checkerboard.folder_summary of a batch, or None for images too small to score."""
    if min(np.shape(images)[1:3]) < checkerboard.MIN_SIDE:
        return None
    return checkerboard.folder_summary(images)


class Scorer:
    """The judge of a dataset with its accuracy on the real test images, and the KID feature extractors."""

    def __init__(self, judge, features, test, inception=None):
        self.judge, self.features, self.inception = judge, features, inception
        self.accuracy = judges.judge_accuracy(judge, test["A"], test["B"])
        self.real = {d: self._features(test[d]) for d in DOMAINS}

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


def evaluate_unpaired(gan, dataset, data_root="data", inception="auto", log=print, test_limit=None, image_size=None):
    """Score `gan` (anything utils/inference/trained_model.load_generators takes: a notebook's CycleGAN, the
    TrainedGenerators of a folder) and the baselines on `dataset`'s real test images at the model's size (or
    `image_size`, with the judge of that size). The model is scored as translate.py runs it: its generators
    in float32, for any size (a mixed-precision CycleGAN's too).

    Returns (results, test, translators, scorer): results = {"dataset", "image_size", "judge": {accuracy, cache info},
    "checkerboard_real": {"A", "B": the real test images' checkerboard summary}, "features",
    "methods": {name: score_translator(...)}}; test = the images scored; translators =
    {name: translate}; scorer = the `Scorer` (the judge and its accuracy).
    """
    model = load_generators(gan)
    size = int(image_size or model.config.input_dim[0])
    folder = Path(data_root) / dataset
    test = {d: load_images(folder / f"test{d}", size, limit=test_limit) for d in DOMAINS}
    judge, features, info = judges.load_or_train_judge(dataset, size, data_root, log=log)
    scorer = Scorer(judge, features, test, load_inception(inception, log))
    acc = scorer.accuracy
    log(f"judge accuracy on the real test images: A {acc['A']:.1%}, B {acc['B']:.1%} "
        f"({'usable' if acc['usable'] else 'UNUSABLE: its rates are withheld'})")
    train = {d: load_images(folder / f"train{d}", size, limit=TRAIN_LIMIT) for d in DOMAINS}
    translators = {"CycleGAN": model_translator(model), **baseline_translators(train["A"], train["B"])}
    methods = {name: score_translator(translate, test, scorer) for name, translate in translators.items()}
    results = {"dataset": dataset, "image_size": size, "n_test": {d: len(test[d]) for d in DOMAINS},
               "judge": {"accuracy_on_real_test": acc, "cache": info},
               "checkerboard_real": {d: checkerboard_summary(test[d]) for d in DOMAINS},
               "features": ["judge"] + (["inception"] if scorer.inception is not None else []),
               "methods": methods}
    return results, test, translators, scorer


def format_table(results):
    """The results as a Markdown table, with the judge's accuracy on the real test images above it."""
    acc = results["judge"]["accuracy_on_real_test"]
    header, rows = results_table(results)
    note = checkerboard_note(results)
    lines = [f"{results['dataset']} at {results['image_size']} px, {results['n_test']['A']} test A / "
             f"{results['n_test']['B']} test B images; the judge's accuracy on the real test images: "
             f"A {acc['A']:.1%}, B {acc['B']:.1%}" + ("" if acc["usable"] else " (UNUSABLE: rates withheld)"),
             *([note] if note else []), "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def save_figure(translators, test, path, n=FIGURE_IMAGES):
    """Rows: the first `n` test images of each direction; columns: input, each translator's output,
    the CycleGAN's cycle back. Saved as a PNG at `path`."""
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
    rows, labels = [], []
    for direction in DIRECTIONS:
        source, target = domains(direction)
        out = np.asarray(translate(test[source], direction))
        p_target = judges.p_target(judge, out, target)
        for i in np.argsort(p_target)[:n]:
            rows.append([test[source][i] * 2 - 1, out[i] * 2 - 1])
            labels.append(f"{direction} p={p_target[i]:.2f}")
    return image_table(rows, path, column_titles=["input", "CycleGAN"], row_labels=labels,
                       title="the judge's least convinced translations")


def load_scored_model(run_folder, dataset=None, data_root=None):
    """The model of a run folder (its latest intact checkpoint) or of a model folder such as
    pretrained/apple2orange_128, loaded as translate.py loads it (utils/inference/trained_model.load_generators:
    float32 generators for any size), with the dataset it is scored on: (model, checkpoint name or None,
    dataset, data_root). `dataset` and `data_root` default to what the folder's config.json records."""
    model = load_generators(Path(run_folder))
    training = model.meta.get("training")
    dataset = dataset or model.dataset
    data_root = data_root or (training.get("data_root") if isinstance(training, dict) else None) or "data"
    if not dataset:
        raise FileNotFoundError(f"{run_folder} does not say which dataset it was trained on: give --dataset NAME")
    return model, model.checkpoint, dataset, data_root


def judge_rates_by_split(translate, dataset, data_root, size, splits=("test", "train"), limit=None, log=print):
    """Is a translator's judged rate a property of the model or of the test photos? For each split,
    the judge's accuracy on the real photos and the rates of their translations, both directions:
    {split: {"n": {A, B}, "judge_accuracy": judge_accuracy(...), "AtoB": judge_rates(...), "BtoA": ...}}.
    `translate` as for `score_translator`; `limit` images per domain and split (seeded subset)."""
    judge, _, _ = judges.load_or_train_judge(dataset, size, data_root, log=log)
    out = {}
    for split in splits:
        images = {d: load_images(Path(data_root) / dataset / f"{split}{d}", size, limit=limit) for d in DOMAINS}
        accuracy = judges.judge_accuracy(judge, images["A"], images["B"])
        out[split] = {"n": {d: len(images[d]) for d in images}, "judge_accuracy": accuracy}
        for direction in DIRECTIONS:
            source, target = domains(direction)
            translated = np.clip(np.asarray(translate(images[source], direction), np.float32), 0, 1)
            out[split][direction] = judges.judge_rates(judge, translated, target, accuracy)
    return out


def evaluate_run(run_folder, dataset=None, data_root=None, inception="auto", log=print, test_limit=None,
                 image_size=None):
    """Evaluate a run folder's latest checkpoint (or a model folder such as pretrained/apple2orange_128);
    write evaluation.json and the figure into it and, for a run, rebuild its index.html (which shows
    them). Returns the results dict. image_size: score at another size than the model's (its generators
    are convolutional), with the judge of that size, into evaluation_<size>px.json and its figure
    (the page keeps showing the model's own size)."""
    run = Path(run_folder)
    model, checkpoint_name, dataset, data_root = load_scored_model(run, dataset, data_root)
    other_size = image_size is not None and int(image_size) != int(model.config.input_dim[0])
    size = int(image_size) if other_size else None   # the generators take any size: the same weights
    results, test, translators, scorer = evaluate_unpaired(model, dataset, data_root, inception, log, test_limit, size)
    results["checkpoint"] = checkpoint_name
    write_json(layout.evaluation_file(run, layout.EVALUATION_JSON, size), results)
    save_figure(translators, test, layout.evaluation_file(run, layout.EVALUATION_FIGURE, size))
    if scorer.accuracy["usable"]:
        save_failures(translators["CycleGAN"], test, scorer.judge, layout.evaluation_file(run, layout.FAILURES_FIGURE, size))
    if not other_size and not is_model_folder(run):   # a run folder's page shows them (a model folder has none)
        write_index(run)
    return results


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
