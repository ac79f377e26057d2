"""The unpaired measures on data with known answers: KID, the domain judge, the baselines, evaluate.py.

Two separable synthetic domains: A = reddish noisy blobs, B = bluish ones (32 px). A judge must tell
them apart; KID of a set against itself or a second sample of the same domain is near 0 and against
the other domain clearly above; recolouring A towards B's colours must beat doing nothing.
"""

import json

import numpy as np
import pytest
from PIL import Image

import evaluate as evaluate_script
from models import CycleGAN
from utils.evaluation import judge as judges
from utils.evaluation.baselines import baseline_translators
from utils.evaluation.unpaired import Scorer, judge_rates_by_split, score_translator
from utils.images import load_images
from utils.training import checkpoint

SIZE = 32


def domain_images(n, domain, seed, size=SIZE):
    """n images in [0, 1]: a textured blob on a noisy background, red-dominant (A) or blue-dominant (B)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] / size
    images = []
    for _ in range(n):
        cy, cx, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.15, 0.3)
        blob = ((y - cy) ** 2 + (x - cx) ** 2 < r ** 2)[..., None]
        colour = np.array([0.85, 0.25, 0.2]) if domain == "A" else np.array([0.2, 0.3, 0.85])
        colour = colour + rng.normal(0, 0.05, 3)
        background = rng.uniform(0.3, 0.6) + rng.normal(0, 0.05, (size, size, 3))
        images.append(np.clip(np.where(blob, colour + rng.normal(0, 0.08, (size, size, 3)), background), 0, 1))
    return np.stack(images).astype(np.float32)


def write_dataset(root, name="blobs", n_train=48, n_test=16):
    for split, n, seed in (("train", n_train, 1), ("test", n_test, 2)):
        for domain in ("A", "B"):
            folder = root / name / f"{split}{domain}"
            folder.mkdir(parents=True)
            for i, image in enumerate(domain_images(n, domain, seed + (domain == "B") * 100)):
                Image.fromarray((image * 255).round().astype(np.uint8)).save(folder / f"{i:03d}.png")
    return root / name


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_dataset(root)
    return root


@pytest.fixture(scope="module")
def trained_judge(dataset):
    judge, features, info = judges.load_or_train_judge("blobs", SIZE, dataset, log=lambda *a: None)
    return judge, features, info


def test_kid_of_a_set_against_itself_and_a_second_sample_is_near_zero_and_against_a_shift_clearly_above():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 16)), rng.normal(size=(200, 16))
    same, _ = judges.kid(x, x, n_subsets=20, subset_size=50)
    sample, spread = judges.kid(x, y, n_subsets=20, subset_size=50)
    shifted, _ = judges.kid(x, y + 1.0, n_subsets=20, subset_size=50)
    # The unbiased estimate scatters around 0 for equal distributions; a shift of 1 std is ~100x that.
    assert abs(same) < 0.02 * shifted and abs(sample) < 0.02 * shifted
    assert shifted > 10 * (abs(sample) + spread)


def test_kid_refuses_mismatched_or_too_small_sets():
    with pytest.raises(ValueError, match="same d"):
        judges.kid(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="at least 2"):
        judges.kid(np.zeros((1, 3)), np.zeros((5, 3)))


def test_kid_of_sets_no_larger_than_a_subset_still_has_a_spread():
    """Subsets of 100 from 100 test images are all the whole set: the spread would be 0 and say nothing."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(100, 8)), rng.normal(0.3, 1.0, size=(100, 8))
    mean, spread = judges.kid(x, y, n_subsets=30, subset_size=100)
    assert spread > 0.01 * abs(mean) and spread > 0
    whole = judges.kid(x[:60], y, n_subsets=30, subset_size=100)   # subsets of y differ: size kept at 60
    assert whole[1] > 0


def test_the_judge_tells_separable_domains_apart_and_is_cached(dataset, trained_judge):
    judge, _, info = trained_judge
    test = {d: load_images(dataset / "blobs" / f"test{d}", SIZE) for d in ("A", "B")}
    accuracy = judges.judge_accuracy(judge, test["A"], test["B"])
    assert accuracy["balanced"] >= 0.95 and accuracy["usable"]
    assert info["n_train"] == {"A": 48, "B": 48}
    # Second call: loaded from the cache (no training message), same predictions.
    messages = []
    cached, _, _ = judges.load_or_train_judge("blobs", SIZE, dataset, log=messages.append)
    assert messages == []
    np.testing.assert_allclose(judges.predict_p_B(cached, test["A"]), judges.predict_p_B(judge, test["A"]),
                               atol=1e-6)


def test_a_changed_dataset_gets_a_new_judge(tmp_path):
    write_dataset(tmp_path, n_train=8, n_test=4)
    folder = tmp_path / "blobs" / "trainA"
    before = judges.dataset_fingerprint(tmp_path / "blobs")
    Image.fromarray(np.zeros((SIZE, SIZE, 3), np.uint8)).save(folder / "new.png")
    assert judges.dataset_fingerprint(tmp_path / "blobs") != before
    messages = []
    judges.load_or_train_judge("blobs", SIZE, tmp_path, log=messages.append)
    assert any("training the domain judge" in m for m in messages)


def test_baselines_are_ordered_as_expected(dataset, trained_judge):
    judge, features, _ = trained_judge
    test = {d: load_images(dataset / "blobs" / f"test{d}", SIZE) for d in ("A", "B")}
    train = {d: load_images(dataset / "blobs" / f"train{d}", SIZE) for d in ("A", "B")}
    scorer = Scorer(judge, features, test)
    baselines = baseline_translators(train["A"], train["B"])
    identity = score_translator(baselines["identity"], test, scorer)
    recolour = score_translator(baselines["colour transfer"], test, scorer)
    for direction in ("AtoB", "BtoA"):
        # Doing nothing leaves every image in its own domain: the judge calls (almost) none the target.
        assert identity[direction]["judged_target"] <= 0.1
        assert identity[direction]["cycle_error"] == 0
        # A recolouring towards the target's colours fools a colour-sensitive judge and comes closer in KID.
        assert recolour[direction]["judged_target"] > identity[direction]["judged_target"] + 0.5
        assert recolour[direction]["kid_judge"][0] < identity[direction]["kid_judge"][0]
        assert recolour[direction]["kid_inception"] is None


def test_a_judge_that_cannot_tell_the_domains_apart_has_its_rates_withheld(tmp_path):
    same = domain_images(24, "A", seed=5)
    judge, features = judges.train_judge(same[:12], same[12:], SIZE, epochs=1)
    test = {"A": domain_images(16, "A", 6), "B": domain_images(16, "A", 7)}
    scorer = Scorer(judge, features, test)
    assert not scorer.accuracy["usable"]
    scores = score_translator(lambda images, direction: images, test, scorer)
    assert scores["AtoB"]["judged_target"] is None and scores["AtoB"]["mean_p_target"] is None
    assert scores["AtoB"]["kid_judge"] is not None


@pytest.mark.long
def test_inception_features_plumbing_with_random_weights():
    """Only the plumbing: random weights (the ImageNet ones are never downloaded in tests)."""
    model = judges.inception_features_model(weights=None)
    x = domain_images(3, "A", 0)
    features = judges.inception_features(model, x, batch_size=2)
    assert features.shape == (3, 2048) and np.isfinite(features).all()
    test = {"A": x, "B": domain_images(3, "B", 1)}
    scorer = Scorer(*judges.build_judge(SIZE), test, inception=model)
    mean, std = scorer.kids(test["A"], "B")["kid_inception"]
    assert np.isfinite(mean) and std >= 0


def write_run(folder, dataset):
    """A run folder with an untrained tiny CycleGAN that records `dataset` (blobs) as its data."""
    checkpoint.save(CycleGAN(input_dim=(SIZE, SIZE, 3), gen_n_filters=4, disc_n_filters=4, seed=0), folder / "weights")
    (folder / "config.json").write_text(json.dumps({
        "dataset": "blobs", "created": "test", "model": CycleGAN(input_dim=(SIZE, SIZE, 3), gen_n_filters=4,
                                                                 disc_n_filters=4).config.to_dict(),
        "training": {"data_root": str(dataset)}}))
    return folder


def test_evaluate_py_writes_the_json_the_figure_and_the_page_section(dataset, trained_judge, tmp_path, capsys):
    run = write_run(tmp_path / "0001_blobs", dataset)
    evaluate_script.main([str(run), "--inception", "off"])
    out = capsys.readouterr().out
    assert "judge's accuracy on the real test images" in out and "colour transfer" in out
    results = json.loads((run / "evaluation.json").read_text())
    assert set(results["methods"]) == {"CycleGAN", "identity", "histogram matching", "colour transfer"}
    assert results["judge"]["accuracy_on_real_test"]["usable"]
    assert results["features"] == ["judge"]
    assert (run / "images" / "evaluation.png").stat().st_size > 1000
    page = (run / "index.html").read_text()
    assert "Evaluation on the real test images" in page and "images/evaluation.png" in page


def test_evaluate_py_scores_a_model_at_another_size_into_its_own_files(dataset, tmp_path, capsys):
    """Issue #33: a 32 px model scored on 48 px test images with a 48 px judge; the 32 px files stay as they are."""
    run = write_run(tmp_path / "0001_blobs", dataset)
    evaluate_script.main([str(run), "--inception", "off", "--image-size", "48"])
    assert "blobs at 48 px" in capsys.readouterr().out
    results = json.loads((run / "evaluation_48px.json").read_text())
    assert results["image_size"] == 48 and not (run / "evaluation.json").exists()
    assert results["methods"]["CycleGAN"]["BtoA"]["checkerboard"]["n"] == 16
    assert (run / "images" / "evaluation_48px.png").is_file()
    with pytest.raises(SystemExit):
        evaluate_script.main([str(run), "--image-size", "50"])
    assert "--image-size 50: must be a multiple of 16" in capsys.readouterr().err


def test_evaluate_py_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate_script.main([str(tmp_path)])
    assert exit_info.value.code == 2
    assert "not a run folder" in capsys.readouterr().err


def swap_red_and_blue(images, direction):
    return np.asarray(images)[..., ::-1]   # a red blob (A) becomes a blue one (B), and back


def test_judge_rates_by_split_scores_training_and_test_photos_with_known_answers(dataset, trained_judge):
    scores = judge_rates_by_split(swap_red_and_blue, "blobs", dataset, SIZE, log=lambda *a: None)
    assert list(scores) == ["test", "train"] and scores["train"]["n"] == {"A": 48, "B": 48}
    judge = trained_judge[0]
    for split, row in scores.items():
        real = {d: load_images(dataset / "blobs" / f"{split}{d}", SIZE) for d in ("A", "B")}
        assert row["judge_accuracy"] == judges.judge_accuracy(judge, real["A"], real["B"])
        assert row["AtoB"]["judged_target"] >= 0.9 and row["BtoA"]["judged_target"] >= 0.9
    do_nothing = judge_rates_by_split(lambda images, direction: images, "blobs", dataset, SIZE,
                                      splits=("train",), limit=10, log=lambda *a: None)
    assert do_nothing["train"]["n"] == {"A": 10, "B": 10}
    assert do_nothing["train"]["AtoB"]["judged_target"] <= 0.1 and do_nothing["train"]["BtoA"]["judged_target"] <= 0.1


def test_judge_by_split_benchmark_prints_both_splits_and_writes_its_json(dataset, trained_judge, tmp_path, capsys):
    from benchmarks import judge_by_split

    run = write_run(tmp_path / "0001_blobs", dataset)
    judge_by_split.main([str(run), "--limit", "8", "--json-out", str(tmp_path / "scores.json")])
    printed = capsys.readouterr().out
    assert "| test | 8 / 8 |" in printed and "| train | 8 / 8 |" in printed
    record = json.loads((tmp_path / "scores.json").read_text())
    assert record["dataset"] == "blobs" and record["image_size"] == SIZE and record["checkpoint"]
    assert set(record["splits"]["train"]) == {"n", "judge_accuracy", "AtoB", "BtoA"}
