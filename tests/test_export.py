"""Export round trips: the .keras file, the SavedModel and the TFLite model translate as the run does,
and the SavedModel and TFLite files load in a process that has none of this project's code."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import export as export_script
from models import CycleGAN
from models.generators import run_generator
from utils.inference.trained_model import load_generators
from utils.training import checkpoint

TINY = dict(input_dim=(32, 32, 3), gen_n_filters=4, disc_n_filters=4, seed=3)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    gan = CycleGAN(**TINY)
    folder = tmp_path_factory.mktemp("run") / "0001_tiny"
    checkpoint.save(gan, folder / "weights")
    rng = np.random.default_rng(0)
    inputs = {"train_size": rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32),
              "other_size": rng.uniform(-1, 1, (1, 48, 80, 3)).astype(np.float32)}
    # the run's own translation: the trained (fixed-size) g_BA at 32 px, the same weights at any size
    expected = {"train_size": gan.translate(inputs["train_size"], "BtoA"),
                "other_size": run_generator(load_generators(gan).g_BA, inputs["other_size"])}
    return folder, inputs, expected


# Loads the exported files with TensorFlow and numpy only, in a folder where `models` cannot be imported.
STANDALONE = r"""
import json, sys
import numpy as np
import tensorflow as tf
inputs = np.load("inputs.npz")
out = {}
saved_model = tf.saved_model.load("g_BA_savedmodel")   # keep a reference: .serve needs its variables
for key in inputs.files:
    x = inputs[key]
    out["savedmodel/" + key] = saved_model.serve(x).numpy()
    # TFLite has a fixed height and width: the training size, and one exported with --size 48 80
    interpreter = tf.lite.Interpreter(model_path="g_BA.tflite" if key == "train_size" else "g_BA_48x80.tflite")
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, x.shape)   # the batch size
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, x)
    interpreter.invoke()
    out["tflite/" + key] = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
np.savez("outputs.npz", **out)
assert "models" not in sys.modules and "utils" not in sys.modules, "the project's code was imported"
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("models", "utils"))))
"""


def test_keras_file_round_trip(run, tmp_path, capsys):
    folder, inputs, expected = run
    out = tmp_path / "g_BA.keras"
    export_script.main([str(folder), "--direction", "BtoA", "--format", "keras", "--out", str(out)])
    assert "multiples of 16" in capsys.readouterr().out
    loaded = keras.models.load_model(out)
    for key, x in inputs.items():
        assert np.abs(keras.ops.convert_to_numpy(loaded(x)) - expected[key]).max() <= 1e-5


@pytest.mark.long
def test_savedmodel_and_tflite_translate_the_same_without_this_project(run, tmp_path):
    folder, inputs, expected = run
    for fmt, name, size in (("savedmodel", "g_BA_savedmodel", []), ("tflite", "g_BA.tflite", []),
                            ("tflite", "g_BA_48x80.tflite", ["--size", "48", "80"])):
        export_script.main([str(folder), "--direction", "BtoA", "--format", fmt, "--out", str(tmp_path / name), *size])
    np.savez(tmp_path / "inputs.npz", **inputs)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", STANDALONE], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []   # nothing of models/ or utils/ was loaded
    with np.load(tmp_path / "outputs.npz") as outputs:
        for key in inputs:
            assert outputs[f"savedmodel/{key}"].shape == expected[key].shape
            assert np.abs(outputs[f"savedmodel/{key}"] - expected[key]).max() <= 1e-5
            assert np.abs(outputs[f"tflite/{key}"] - expected[key]).max() <= 1e-2


def test_default_path_and_bad_requests(run, capsys):
    folder, _, _ = run
    export_script.main([str(folder / "weights" / "ckpt-00000000"), "--direction", "AtoB", "--format", "keras"])
    assert (folder / "export" / "g_AB.keras").is_file()   # beside the run, not inside weights/
    with pytest.raises(SystemExit, match="must end in .keras"):
        export_script.main([str(folder), "--direction", "AtoB", "--format", "keras", "--out", "g.h5"])
    with pytest.raises(SystemExit, match="holds no trained generators"):
        export_script.main([str(folder / "export"), "--direction", "AtoB", "--format", "keras"])
    with pytest.raises(SystemExit, match="multiples of 16"):
        export_script.main([str(folder), "--direction", "AtoB", "--format", "tflite", "--size", "30", "30"])
    with pytest.raises(SystemExit):
        export_script.main([str(folder), "--direction", "AtoB", "--format", "pickle"])


def test_onnx_export_if_installed(run, tmp_path):
    pytest.importorskip("tf2onnx")
    pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    folder, inputs, expected = run
    out = tmp_path / "g_BA.onnx"
    export_script.main([str(folder), "--direction", "BtoA", "--format", "onnx", "--out", str(out)])
    session = onnxruntime.InferenceSession(str(out))
    name = session.get_inputs()[0].name
    for key, x in inputs.items():
        assert np.abs(session.run(None, {name: x})[0] - expected[key]).max() <= 1e-4
