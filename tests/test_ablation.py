"""The ablation runner on a tiny configuration: it writes its table and figures, and it resumes.

One tiny ablation (32 px, 4 filters, 3 steps, two variants) is killed inside its second variant,
resumed, then called again; the tests read what each call left behind. The dataset is a hand-made
paired set (red discs in A, orange in B, same shelf), so these tests do not depend on the generator.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import ablate
from utils.evaluation import ablation
from utils.training import trainer

SIZE = 32
STEPS = 3
VARIANTS = ["full", "lambda_id=0"]
DATASET = "tiny_pairs"
# The same tiny base that the CLI and the notebook test rebuild from their arguments.
CLI_ARGS = ["--dataset", DATASET, "--img-size", str(SIZE), "--steps", str(STEPS), "--gen-filters", "4",
            "--disc-filters", "4", "--name", "tiny", "--examples", "2", "--quiet"]


def write_tiny_dataset(root, n_train=3, n_test=3):
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:SIZE, :SIZE]
    folder = Path(root) / DATASET
    for split in ("trainA", "trainB", "testA", "testB", "testMask"):
        (folder / split).mkdir(parents=True)
    for split, n in (("train", n_train), ("test", n_test)):
        for i in range(n):
            cy, cx = rng.uniform(10, 22, 2)
            mask = (y - cy) ** 2 + (x - cx) ** 2 <= rng.uniform(5, 9) ** 2
            shelf = np.array([115, 90, 64]) * (0.7 + 0.3 * y[..., None] / SIZE)
            for domain, fruit in (("A", (200, 30, 30)), ("B", (240, 140, 25))):
                image = shelf.copy()
                image[mask] = fruit
                Image.fromarray(image.astype(np.uint8)).save(folder / f"{split}{domain}" / f"{i}.png")
            if split == "test":
                Image.fromarray((mask * 255).astype(np.uint8)).save(folder / "testMask" / f"{i}.png")


def base_config():
    return ablate_args_config(ablate.parse_args(CLI_ARGS))


def ablate_args_config(args):
    return ablation.full_config(input_dim=(args.img_size, args.img_size, 3), gen_n_filters=args.gen_filters,
                                disc_n_filters=args.disc_filters)


class TrainSpy:
    """Wraps utils.training.trainer.train: records each call; optionally kills one variant mid-run."""

    def __init__(self, monkeypatch, kill_variant_at=None):
        self.calls, self.kill_at = [], kill_variant_at
        real = trainer.train

        def spy(config, dataset, run, **kwargs):
            self.calls.append((Path(run).name, kwargs["resume"]))
            if self.kill_at and Path(run).name == ablation.slug(self.kill_at[0]):
                kwargs["callbacks"] = [self.kill]
            return real(config, dataset, run, **kwargs)

        monkeypatch.setattr(trainer, "train", spy)

    def kill(self, gan, row):
        if row["step"] == self.kill_at[1]:
            raise KeyboardInterrupt("killed by the test")  # like a kill: no final checkpoint


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Run the tiny ablation the hard way: killed at step 2 of its second variant, then resumed."""
    root = tmp_path_factory.mktemp("ablation")
    write_tiny_dataset(root / "data")
    kwargs = dict(max_steps=STEPS, data_root=root / "data", out_root=root / "run", n_examples=2, progress=False,
                  checkpoint_interval=1)
    variants = dict(ablation.parse_variant(v) for v in VARIANTS)
    with pytest.MonkeyPatch.context() as mp:
        killed = TrainSpy(mp, kill_variant_at=("lambda_id=0", 2))
        with pytest.raises(KeyboardInterrupt):
            ablation.run_ablation(base_config(), DATASET, "tiny", variants, **kwargs)
    folder = root / "run" / "tiny"
    markers = [p.name for p in (folder / "results").glob("*.json") if p.stem in ("full", "lambda_id_0")]
    after_kill = {"calls": killed.calls, "markers": sorted(markers),
                  "steps": sorted(p.name for p in (folder / "runs" / "lambda_id_0" / "weights").glob("ckpt-*"))}
    with pytest.MonkeyPatch.context() as mp:
        resumed = TrainSpy(mp)
        ablation.run_ablation(base_config(), DATASET, "tiny", variants, **kwargs)
    return {"root": root, "folder": folder, "kwargs": kwargs, "variants": variants,
            "after_kill": after_kill, "resumed_calls": resumed.calls}


@pytest.mark.long
def test_kill_leaves_the_first_variant_finished_and_the_second_checkpointed(tiny):
    after = tiny["after_kill"]
    assert after["calls"] == [("full", False), ("lambda_id_0", False)]
    assert after["markers"] == ["full.json"]
    assert after["steps"][-1] == "ckpt-00000002"


def test_resume_skips_finished_and_continues_the_killed_variant(tiny):
    assert tiny["resumed_calls"] == [("lambda_id_0", True)]  # 'full' was not trained again
    run = tiny["folder"] / "runs" / "lambda_id_0"
    sessions = json.loads((run / "config.json").read_text())["sessions"]
    assert [s["start_step"] for s in sessions] == [0, 2]  # went on from step 2, not from scratch
    result = json.loads((tiny["folder"] / "results" / "lambda_id_0.json").read_text())
    assert result["step"] == STEPS and result["resumed"] is True
    assert result["config"]["lambda_id"] == 0 and result["config"]["lambda_reconstr"] == 10
    full = json.loads((tiny["folder"] / "results" / "full.json").read_text())
    assert full["config"]["lambda_id"] == 5 and full["config"]["seed"] == result["config"]["seed"]


def test_writes_table_and_figures(tiny):
    folder = tiny["folder"]
    lines = (folder / "table.csv").read_text().splitlines()
    header = lines[0].split(",")
    assert header[:2] == ["name", "kind"] and "AtoB paired_l1" in header and "BtoA cycle_error" in header
    names = [line.split(",")[0] for line in lines[1:]]
    assert names == VARIANTS + ["identity", "histogram matching", "colour transfer"]
    markdown = (folder / "table.md").read_text()
    assert "| full |" in markdown and "| *colour transfer* |" in markdown
    for picture in ("translations.png", "metrics.png"):
        with Image.open(folder / picture) as image:
            assert image.width > 200 and image.height > 200
    with np.load(folder / "results" / "full.npz") as pictures:
        assert pictures["AtoB"].shape == (2, SIZE, SIZE, 3) and pictures["BtoA"].shape == (2, SIZE, SIZE, 3)


def test_identity_baseline_row_is_exact(tiny):
    rows = ablation.load_results(tiny["folder"])
    identity = rows["identity"]["metrics"]
    for direction in ("AtoB", "BtoA"):
        assert identity[direction]["background_change"] == 0 and identity[direction]["cycle_error"] == 0
        assert identity[direction]["paired_l1"] > 0


def test_a_finished_ablation_trains_nothing(tiny, monkeypatch):
    spy = TrainSpy(monkeypatch)
    (tiny["folder"] / "table.md").unlink()
    ablation.run_ablation(base_config(), DATASET, "tiny", tiny["variants"], **tiny["kwargs"])
    assert spy.calls == []
    assert (tiny["folder"] / "table.md").is_file()  # the report is rebuilt from the saved results


def test_resuming_with_other_settings_is_refused(tiny):
    kwargs = {**tiny["kwargs"], "max_steps": STEPS + 1}
    with pytest.raises(ValueError, match="max_steps"):
        ablation.run_ablation(base_config(), DATASET, "tiny", tiny["variants"], **kwargs)


def test_cli_reports_the_finished_ablation(tiny, monkeypatch, capsys):
    spy = TrainSpy(monkeypatch)
    args = CLI_ARGS + ["--data-root", str(tiny["root"] / "data"), "--out-root", str(tiny["root"] / "run")]
    for variant in VARIANTS:
        args += ["--variant", variant]
    ablate.main(args + ["--checkpoint-interval", "1"])
    out = capsys.readouterr().out
    assert spy.calls == [] and "| full |" in out
    assert "lambda_id=0 has a larger AtoB background_change than full" in out


def test_parse_variant():
    assert ablation.parse_variant("full") == ("full", {})
    assert ablation.parse_variant("lambda_id=0") == ("lambda_id=0", {"lambda_id": 0})
    assert ablation.parse_variant("cycle_alone:lambda_validation=0,lambda_id=0") == \
        ("cycle_alone", {"lambda_validation": 0, "lambda_id": 0})
    with pytest.raises(ValueError, match="field=value"):
        ablation.parse_variant("x:lambda_id")
    with pytest.raises(ValueError, match="unknown setting"):
        ablation.variant_configs(ablation.full_config(), {"typo": {"lambda_idd": 0}})


def test_default_variants_are_the_issues_ablation():
    configs = ablation.variant_configs(ablation.full_config(input_dim=(64, 64, 3)))
    weights = {name: (c.lambda_validation, c.lambda_reconstr, c.lambda_id) for name, c in configs.items()}
    assert weights == {"full": (1, 10, 5), "lambda_id=0": (1, 10, 0), "lambda_id=2": (1, 10, 2),
                       "lambda_reconstr=0": (1, 0, 5), "lambda_validation=0": (0, 10, 5)}
    assert len({c.seed for c in configs.values()}) == 1


def test_check_claims_reads_the_right_rows():
    def row(kind, l1, background=0.1, cycle=0.1):
        metrics = {"paired_l1": l1, "background_change": background, "cycle_error": cycle}
        return {"kind": kind, "metrics": {"AtoB": metrics, "BtoA": metrics}}

    rows = {"full": row("variant", 0.05), "lambda_id=0": row("variant", 0.06, background=0.2),
            "lambda_reconstr=0": row("variant", 0.07, cycle=0.05),
            "identity": row("baseline", 0.08), "colour transfer": row("baseline", 0.04)}
    verdicts = {claim: holds for claim, holds, _ in ablation.check_claims(rows)}
    assert verdicts == {"full beats every baseline on AtoB paired L1": False,
                        "full beats every baseline on BtoA paired L1": False,
                        "lambda_id=0 has a larger AtoB background_change than full": True,
                        "lambda_id=0 has a larger BtoA background_change than full": True,
                        "lambda_reconstr=0 has a larger AtoB cycle_error than full": False,
                        "lambda_reconstr=0 has a larger BtoA cycle_error than full": False}


@pytest.mark.long
def test_notebook_runs_on_the_tiny_ablation(tiny, monkeypatch):
    """The instructor's notebook, top to bottom, with the tiny settings injected after its parameters cell.

    It points at the finished tiny ablation, so it trains nothing (a resumed, finished ablation)."""
    import nbclient
    import nbformat

    notebooks = Path(__file__).resolve().parents[1] / "notebooks"
    nb = nbformat.read(notebooks / "05_03_cyclegan_ablation.ipynb", as_version=4)
    index = next(i for i, cell in enumerate(nb.cells) if "parameters" in cell.metadata.get("tags", []))
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code")  # no committed outputs
    injected = (f"DATASET, IMG_SIZE, FILTERS, STEPS, BATCH_SIZE = {DATASET!r}, {SIZE}, 4, {STEPS}, 1\n"
                f"EPOCHS, DECAY_EPOCHS = 100, 100\n"
                f"VARIANTS, NAME = {VARIANTS!r}, 'tiny'\n"
                f"DATA_ROOT, OUT_ROOT = {str(tiny['root'] / 'data')!r}, {str(tiny['root'] / 'run')!r}")
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(injected))   # after the parameters cell
    monkeypatch.setenv("PYTHONPATH", "")  # the notebook finds the repository itself (sys.path.insert)
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(notebooks)}}).execute()
    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    text = "".join(out.get("text", "") + str(out.get("data", {}).get("text/markdown", "")) for out in outputs)
    assert "| *identity* |" in text and ("[holds]" in text or "[FAILS]" in text)
    assert sum("image/png" in out.get("data", {}) for out in outputs) == 2
    assert not (tiny["root"] / "run" / "tiny" / "runs" / "full" / "weights" / "ckpt-00000004").exists()


def test_export_copies_tables_and_a_smaller_figure(tiny, tmp_path):
    target = ablation.export_results(tiny["folder"], tmp_path / "docs", data_root=tiny["root"] / "data", n_examples=1)
    assert sorted(p.name for p in target.iterdir()) == ["metrics.png", "table.csv", "table.md", "translations.png"]
    assert (target / "table.md").read_text() == (tiny["folder"] / "table.md").read_text()
    with Image.open(target / "translations.png") as small, Image.open(tiny["folder"] / "translations.png") as full:
        assert small.width < full.width and small.height == full.height  # 1 of 2 example columns per direction
