"""Issue #35, the third round of attacks on files: each test reproduces an attack and checks nothing is lost."""

import zipfile

import numpy as np
import pytest

from models import CycleGAN

TINY = dict(input_dim=(32, 32, 3), gen_n_filters=4, disc_n_filters=4, seed=3)


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    from utils.inference.trained_model import save_model_folder
    return save_model_folder(CycleGAN(**TINY), tmp_path_factory.mktemp("models") / "tiny", made_by="a test")


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def export(args):
    import export as export_script
    return export_script.main(args)


@pytest.mark.parametrize("target", ["the model folder", "its parent", "a user folder", "box.keras folder",
                                    "a text file named .keras"])
def test_export_overwrite_never_deletes_what_no_export_wrote(model_folder, tmp_path, capsys, target):
    """`export.py --overwrite --out X` deleted X whatever it was: the model, the folder holding it, a thesis."""
    user = tmp_path / "thesis"
    (user / "sub").mkdir(parents=True)
    (user / "thesis.txt").write_text("three years of work")
    (user / "sub" / "notes.txt").write_text("more")
    box = tmp_path / "box.keras"
    box.mkdir()
    (box / "inside.txt").write_text("kept")
    text = tmp_path / "g.keras"
    text.write_text("not a Keras file")
    out, fmt = {"the model folder": (model_folder, "savedmodel"), "its parent": (model_folder.parent, "savedmodel"),
                "a user folder": (user, "savedmodel"), "box.keras folder": (box, "keras"),
                "a text file named .keras": (text, "keras")}[target]
    before = {folder: snapshot(folder) for folder in (model_folder, user, box)}
    with pytest.raises(SystemExit) as stop:
        export([str(model_folder), "--direction", "AtoB", "--format", fmt, "--out", str(out), "--overwrite"])
    message = str(stop.value.code)   # sys.exit("error: ..."): one line on stderr, exit code 1
    assert message.startswith(f"error: --out {out}") and "\n" not in message
    assert {folder: snapshot(folder) for folder in before} == before
    assert text.read_text() == "not a Keras file"


def test_export_overwrite_still_replaces_its_own_keras_file(model_folder, tmp_path):
    out = tmp_path / "g.keras"
    args = [str(model_folder), "--direction", "AtoB", "--format", "keras", "--out", str(out)]
    export(args)
    first = out.read_bytes()
    with zipfile.ZipFile(out) as archive:
        assert "config.json" in archive.namelist()
    export([*args, "--overwrite"])
    assert out.stat().st_size > 1000 and out.read_bytes() != b"" and not list(tmp_path.glob(".*tmp*"))
    assert len(first) > 1000


def test_an_export_shaped_folder_is_recognised_and_a_foreign_one_is_not(tmp_path):
    from utils.inference.export import refuse_what_no_export_wrote
    saved = tmp_path / "g_AB_savedmodel"
    (saved / "variables").mkdir(parents=True)
    (saved / "saved_model.pb").write_bytes(b"pb")
    (saved / "variables" / "variables.index").write_bytes(b"i")
    refuse_what_no_export_wrote(saved, "savedmodel")            # an export's own layout: may be replaced
    (saved / "my_notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a SavedModel .*my_notes.txt"):
        refuse_what_no_export_wrote(saved, "savedmodel")
    tflite = tmp_path / "g.tflite"
    tflite.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(16))
    refuse_what_no_export_wrote(tflite, "tflite")
    tflite.write_bytes(np.zeros(64, np.uint8).tobytes())
    with pytest.raises(ValueError, match="no TFL3 identifier"):
        refuse_what_no_export_wrote(tflite, "tflite")
