"""Round 3 of attacks (issue #35), bad values: every value check of train.py, ablate.py, export.py, evaluate.py
and translate.py comes before TensorFlow is imported and names the flag; absurd values (a batch larger than the
training set, 10**20 epochs, an empty run, every loss off, a huge --max-side or export --size) are refused."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models.config import CycleGANConfig
from utils.cli import UsageExit, name_the_flags
from utils.training.settings import MAX_EPOCHS, TrainingSettings

REPO = Path(__file__).resolve().parents[1]
TINY = dict(input_dim=(32, 32, 3), gen_n_filters=4, disc_n_filters=4, buffer_max_length=2, epochs=1,
            decay_epochs=1, seed=0)

# Runs each script's main() in one process in which importing TensorFlow, Keras, JAX or PyTorch fails: a check
# that comes after the import shows as that ImportError instead of its exit code. Prints each case's exit code
# and stderr, and the blocked modules that got loaded all the same (none).
RUNNER = r"""
import contextlib, importlib, importlib.abc, io, json, sys
BLOCKED = ("tensorflow", "keras", "jax", "torch")

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} was imported before the value check")

sys.meta_path.insert(0, Block())
from utils.cli import run_main
results = []
for script, argv in json.loads(sys.argv[1]):
    module, err = importlib.import_module(script), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            module.main(argv) if script == "export" else run_main(module.main, argv)   # export.py has no run_main
            code = 0
        except SystemExit as exit:
            code = exit.code
        except BaseException as error:
            code = f"{type(error).__name__}: {error}"
    results.append({"code": code, "stderr": err.getvalue()})
print(json.dumps({"results": results, "loaded": sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)}))
"""

TRAIN = ["--dataset", "four", "--data-root", "{data}", "--run-root", "{runs}", "--max-steps", "1"]
ABLATE = ["--dataset", "four", "--data-root", "{data}", "--out-root", "{runs}", "--steps", "2"]
CASES = [
    ("train", TRAIN + ["--img-size", "33"], "--img-size 33: the unet generator downsamples by 16"),
    ("train", TRAIN + ["--learning-rate", "0"], "--learning-rate 0: must be > 0"),
    ("train", TRAIN + ["--epochs", "-1"], "--epochs -1: must be an integer >= 0"),
    ("train", TRAIN + ["--lambda-id", "-1"], "--lambda-id -1: loss weights must be >= 0"),
    ("train", TRAIN + ["--gen-filters", "5000"], "--gen-filters 5000: must be a positive integer, at most 1024"),
    ("train", TRAIN + ["--disc-n-layers", "6", "--img-size", "32"], "--disc-n-layers 6: a 32 px side is too small"),
    ("train", TRAIN + ["--epochs", str(10**20)], f"--epochs {10**20}: at most {MAX_EPOCHS} epochs"),
    ("train", TRAIN + ["--epochs", "1e20"], "--epochs: invalid int value: '1e20'"),
    ("train", TRAIN + ["--epochs", "0", "--decay-epochs", "0"],
     "--epochs 0 --decay-epochs 0: a run of 0 epochs trains nothing"),
    ("train", TRAIN + ["--lambda-validation", "0", "--lambda-reconstr", "0", "--lambda-id", "0"],
     "--lambda-validation 0 --lambda-reconstr 0 --lambda-id 0: with every loss weight 0 the generators"),
    ("train", TRAIN + ["--batch-size", "1000000000"],
     "--batch-size 1000000000: larger than the training set of four (4 images in trainA, 4 in trainB); at most 4"),
    ("train", ["--resume", "{runs}/0001_four", "--learning-rate", "0"], "--learning-rate 0: must be > 0"),
    ("ablate", ABLATE + ["--img-size", "33"], "--img-size 33: the unet generator downsamples by 16"),
    ("ablate", ABLATE + ["--epochs", "0", "--decay-epochs", "0"], "--epochs 0 --decay-epochs 0: a run of 0 epochs"),
    ("ablate", ABLATE + ["--lambda-validation", "0", "--lambda-reconstr", "0", "--lambda-id", "0"],
     "--lambda-validation 0 --lambda-reconstr 0 --lambda-id 0: with every loss weight 0"),
    ("ablate", ABLATE + ["--batch-size", "5"], "--batch-size 5: larger than the training set of four"),
    ("export", ["{unet}", "--direction", "AtoB", "--format", "tflite", "--size", "17", "16"],
     "--size 17 16: height and width must be multiples of 16 for the unet generator"),
    ("export", ["{empty}", "--direction", "AtoB", "--format", "tflite", "--size", "17", "16"],
     "--size 17 16: height and width must be multiples of 16 (U-Net) or 4 (ResNet)"),
    ("export", ["{unet}", "--direction", "AtoB", "--format", "tflite", "--size", "1600000", "1600000"],
     "--size 1600000 1600000: at most 4096 px a side"),
    ("export", ["{unet}", "--direction", "AtoB", "--format", "keras", "--size", "32", "32"],
     "--size 32 32: a .keras file keeps the generator for any size"),
    ("evaluate", ["{empty}", "--test-limit", "0"], "--test-limit 0: KID needs at least 2 images per domain"),
    ("translate", ["{unet}", "--direction", "AtoB", "--input", "{empty}", "--max-side", str(10**20)],
     f"--max-side {10**20}: at most 8192 px"),
]


@pytest.fixture(scope="module")
def refusals(tmp_path_factory):
    """Every case of CASES run in one process that cannot import TensorFlow, then a control that passes the
    checks (it must reach the blocked import); the folders it was given."""
    root = tmp_path_factory.mktemp("values")
    names = {"data": root / "data", "runs": root / "runs", "unet": root / "unet_model", "empty": root / "empty"}
    for domain in "AB":   # a training set of 4 + 4 images
        (names["data"] / "four" / f"train{domain}").mkdir(parents=True)
        for i in range(4):
            Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(names["data"] / "four" / f"train{domain}" / f"{i}.png")
    names["unet"].mkdir()
    (names["unet"] / "config.json").write_text(json.dumps({"model": {"generator_type": "unet"}}))
    names["empty"].mkdir()
    cases = [(script, [a.format(**names) for a in argv]) for script, argv, _ in CASES]
    cases.append(("train", [a.format(**names) for a in TRAIN + ["--batch-size", "4", "--img-size", "32"]]))
    env = {**os.environ, "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(cases)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return report, names


@pytest.mark.parametrize("index", range(len(CASES)),
                         ids=[f"{script} {' '.join(argv[-2:])}" for script, argv, _ in CASES])
def test_a_bad_value_is_refused_before_tensorflow_is_imported_and_names_the_flag(refusals, index):
    report, names = refusals
    script, _, says = CASES[index]
    result = report["results"][index]
    assert result["code"] == 2, result
    lines = [line for line in result["stderr"].splitlines() if "error:" in line]
    assert len(lines) == 1 and "Traceback" not in result["stderr"], result["stderr"]
    assert says in lines[0], lines[0]
    assert not names["runs"].exists()   # no run or ablation folder made
    assert report["loaded"] == []


def test_the_control_that_passes_every_check_reaches_the_blocked_import(refusals):
    """Without this, a runner whose import block never fired would pass the test above for the wrong reason."""
    report, _ = refusals
    control = report["results"][len(CASES)]
    assert "ImportError" in str(control["code"]) and "was imported before the value check" in str(control["code"])


def test_the_settings_refuse_a_run_that_would_train_nothing():
    settings = TrainingSettings()
    settings.check_config(CycleGANConfig(**TINY))
    settings.check_config(CycleGANConfig(**TINY, lambda_validation=0, lambda_reconstr=0))   # identity alone: a choice
    settings.check_config(CycleGANConfig(**{**TINY, "epochs": 0}))   # decay alone
    settings.check_config(CycleGANConfig(**{**TINY, "epochs": MAX_EPOCHS, "decay_epochs": MAX_EPOCHS}))
    with pytest.raises(ValueError, match=r"^epochs=0, decay_epochs=0: a run of 0 epochs trains nothing"):
        settings.check_config(CycleGANConfig(**{**TINY, "epochs": 0, "decay_epochs": 0}))
    with pytest.raises(ValueError, match=r"^lambda_validation=0.0, lambda_reconstr=0.0, lambda_id=0.0: with every "
                                         "loss weight 0 the generators' loss is 0 and they learn nothing"):
        settings.check_config(CycleGANConfig(**TINY, lambda_validation=0.0, lambda_reconstr=0.0, lambda_id=0.0))
    for name in ("epochs", "decay_epochs"):
        with pytest.raises(ValueError, match=rf"^{name}={10**20}: at most {MAX_EPOCHS} epochs"):
            settings.check_config(CycleGANConfig(**{**TINY, name: 10**20}))


def test_a_batch_larger_than_the_training_set_is_refused_naming_both_numbers():
    TrainingSettings(batch_size=4).check_dataset(4, 4)
    TrainingSettings(batch_size=5).check_dataset(3, 5)   # an epoch is max(n_A, n_B) images
    with pytest.raises(ValueError, match=r"^batch_size=1000000000: larger than the training set of apples "
                                         r"\(4 images in trainA, 3 in trainB\); at most 4$"):
        TrainingSettings(batch_size=1000000000).check_dataset(4, 3, "apples")


def test_train_refuses_an_empty_run_and_a_batch_larger_than_the_set_before_making_a_folder(data_root, tmp_path):
    from utils.training.trainer import train
    runs = tmp_path / "runs"
    with pytest.raises(ValueError, match=r"batch_size=7: larger than the training set of synthetic_apple2orange "
                                         r"\(6 images in trainA, 6 in trainB\); at most 6"):
        train(TINY, "synthetic_apple2orange", data_root=data_root, run_root=runs, batch_size=7, progress=False)
    with pytest.raises(ValueError, match="a run of 0 epochs trains nothing"):
        train({**TINY, "epochs": 0, "decay_epochs": 0}, "synthetic_apple2orange", data_root=data_root,
              run_root=runs, progress=False)
    with pytest.raises(ValueError, match="with every loss weight 0"):
        train({**TINY, "lambda_validation": 0, "lambda_reconstr": 0, "lambda_id": 0}, "synthetic_apple2orange",
              data_root=data_root, run_root=runs, progress=False)
    assert not runs.exists()


def test_name_the_flags_puts_the_flag_where_the_field_was():
    given = {"input_dim": ("--img-size 33", (33, 33, 3)), "epochs": ("--epochs 0", 0),
             "decay_epochs": ("--decay-epochs 0", 0), "diff_augment": ("--diff-augment a: b", "a: b")}
    assert name_the_flags(ValueError("input_dim=(33, 33, 3): must be a multiple of 16."), given) == \
        "--img-size 33: must be a multiple of 16."
    assert name_the_flags(ValueError("epochs=0, decay_epochs=0: empty"), given) == "--epochs 0 --decay-epochs 0: empty"
    assert name_the_flags(ValueError("diff_augment='a: b': unknown"), given) == "--diff-augment a: b: unknown"
    # a field that no flag set, or a value other than the flag's, is left as the settings said it
    assert name_the_flags(ValueError("seed=-1: must be >= 0"), given) == "seed=-1: must be >= 0"
    assert name_the_flags(ValueError("epochs=5: no"), given) == "epochs=5: no"
    assert name_the_flags(ValueError("epochs=0, seed=1: both"), given) == "epochs=0, seed=1: both"


def test_a_refused_argument_is_exit_2_and_its_text_is_the_error_line(tmp_path, capsys):
    """A notebook or a test calling main() sees why, not only `SystemExit: 2`."""
    import export as export_script
    with pytest.raises(SystemExit, match=r"error: --size 17 16: .*multiples of 16 \(U-Net\) or 4") as exit:
        export_script.main([str(tmp_path), "--direction", "AtoB", "--format", "tflite", "--size", "17", "16"])
    assert isinstance(exit.value, UsageExit) and exit.value.code == 2
    assert capsys.readouterr().err.strip() == str(exit.value)
