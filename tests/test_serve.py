"""The classroom page (a Gradio app): it translates a photo with every model (an ablation folder gives one
row per variant), refuses what it should with a gr.Error naming the problem, and serves the same over
HTTP on 127.0.0.1. Tiny untrained models (32 px, 4/4 filters). The real browser: tests/test_serve_browser.py."""

import ast
import io
import json
import os
import re
import struct
import subprocess
import sys
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from models import CycleGAN
from utils.evaluation.ablation import model_sources
from utils.inference.serve import COLUMNS, EXAMPLES, MAX_PIXELS, build_app, launch
from utils.training import checkpoint

TINY = dict(input_dim=(32, 32, 3), gen_n_filters=4, disc_n_filters=4)
LIMIT = 60_000   # bytes


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The page for one run folder and a two-variant ablation folder (not started)."""
    root = tmp_path_factory.mktemp("models")
    checkpoint.save(CycleGAN(**TINY, seed=0), root / "0001_tiny" / "weights")
    ablation = root / "ablation"
    (ablation / "ablation.json").parent.mkdir()
    (ablation / "ablation.json").write_text(json.dumps({"variants": {"full": {}, "lambda_id=0": {"lambda_id": 0}}}))
    for seed, variant in enumerate(("full", "lambda_id_0")):
        checkpoint.save(CycleGAN(**TINY, seed=seed + 1), ablation / "runs" / variant / "weights")
    app = build_app(model_sources([root / "0001_tiny", ablation]), max_side=64, max_bytes=LIMIT)
    yield app
    app.close()


@pytest.fixture
def photo_file(tmp_path):
    def write(array, name="my photo.png"):
        path = tmp_path / name
        Image.fromarray(array).save(path)
        return path
    return write


def header_png(width, height):
    """A PNG of width x height that is only a header (a few bytes): its size is read before any decoding."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IEND", b""))


def refusal(app, upload):
    with pytest.raises(gr.Error) as error:
        app.translator.answer(upload)
    return error.value.message


def test_the_page_lists_every_model_and_sends_no_analytics(app):
    labels = [label for label, _ in app.translator.models]
    assert labels[0] == "0001_tiny" and labels[1].startswith("full: full loss")
    assert labels[2].startswith("lambda_id=0: no identity loss")
    page = json.dumps(app.config)
    assert all(label in page for label in labels) and "Or pick a test photo" in page
    assert app.analytics_enabled is False
    assert all(path.is_file() and path.stat().st_size < 20_000 for path in EXAMPLES)   # small, in the repository


def test_a_photo_is_translated_both_ways_by_every_model(app, photo_file):
    photo = np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    note, *images = app.translator.answer({"path": str(photo_file(photo)), "orig_name": "my photo.png"})
    assert "my photo.png" in note and "56 x 40 px" in note
    assert len(images) == 3 * len(COLUMNS)   # 3 models x (AtoB, AtoBtoA, BtoA, BtoAtoB)
    assert all(image.shape == (40, 56, 3) and image.dtype == np.uint8 for image in images)
    assert len({image.tobytes() for image in images}) == 12   # every model and column differs


def test_a_photo_above_max_side_is_translated_and_shown_at_max_side(app, photo_file):
    photo = np.random.default_rng(1).integers(0, 256, (50, 100, 3), dtype=np.uint8)
    note, *images = app.translator.answer(str(photo_file(photo, "wide.png")))
    assert "100 x 50 px, above 64 px" in note and all(image.shape == (32, 64, 3) for image in images)


def test_a_cleared_photo_clears_the_page(app):
    assert app.translator.answer(None) == [""] + [None] * 12


def test_a_file_that_is_not_an_image_is_refused_with_a_message(app, tmp_path):
    notes = tmp_path / "upload.png"
    notes.write_bytes(b"these are my notes, not a photo")
    says = refusal(app, {"path": str(notes), "orig_name": "notes.png"})
    assert says.startswith("notes.png is not an image this page can read: not an image file Pillow can identify")


def test_an_oversize_upload_is_refused_with_a_message(app, photo_file):
    noise = np.random.default_rng(1).integers(0, 256, (200, 200, 3), dtype=np.uint8)   # ~120 kB as PNG
    big = photo_file(noise, "big.png")
    assert big.stat().st_size > LIMIT
    assert re.match(r"big.png is \d+ KiB: over the limit of 59 KiB", refusal(app, str(big)))
    note, *images = app.translator.answer(str(photo_file(noise[:20, :20], "small.png")))   # still works after it
    assert len(images) == 12


@pytest.mark.parametrize("width, height, says", [
    (8_000, 6_000, "8000x6000 = 48,000,000 pixels is more than the limit of 40,000,000 (a decompression bomb?)"),
    (30_001, 1_000, "a side of 30,001 px is more than the limit of 30,000 px"),
    (10_000, 100, "100 times longer than wide, more than the limit of 50:1")])
def test_an_image_too_large_or_too_long_is_refused_by_its_header(app, tmp_path, width, height, says):
    assert width * height > MAX_PIXELS or max(width, height) > 30_000 or width > 50 * height
    path = tmp_path / "huge.png"
    path.write_bytes(header_png(width, height))   # a few bytes: decoding it would be the attack
    assert says in refusal(app, str(path))


def test_the_page_over_http_translates_and_its_upload_route_refuses_an_oversize_file(app, photo_file):
    from gradio_client import Client, handle_file
    url = launch(app, port=0)
    assert url.startswith("http://127.0.0.1:")
    photo = np.random.default_rng(2).integers(0, 256, (24, 40, 3), dtype=np.uint8)
    client = Client(url, verbose=False, download_files=False)
    note, *images = client.predict(handle_file(str(photo_file(photo))), api_name="/translate")
    assert "40 x 24 px" in note and len(images) == 12
    noise = np.random.default_rng(3).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG")
    boundary = "cyclegan-test"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + buffer.getvalue() + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(url + "gradio_api/upload", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=60)
    assert error.value.code == 413 and f"maximum allowed size of {LIMIT} bytes" in error.value.read().decode()


@pytest.mark.long
def test_the_page_connects_to_no_other_machine(tiny_run, tmp_path):
    """Importing Gradio, starting the page and translating through it open no connection but to 127.0.0.1
    (an audit hook sees every socket.connect of the process): no analytics, no version check, no share link."""
    photo = tmp_path / "photo.png"
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(photo)
    script = f"""
import sys
seen = []
sys.addaudithook(lambda event, args: seen.append(args[1]) if event == "socket.connect" else None)
from gradio_client import Client, handle_file
from utils.inference.serve import build_app, launch
from utils.training import checkpoint
app = build_app([{str(tiny_run)!r}], max_side=64)
note, *images = Client(launch(app), verbose=False).predict(handle_file({str(photo)!r}), api_name="/translate")
app.close()
print("HOSTS", sorted({{str(address[0]) for address in seen if isinstance(address, tuple)}}))
"""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(root), "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert done.returncode == 0, done.stderr[-2000:]
    [line] = [line for line in done.stdout.splitlines() if line.startswith("HOSTS")]
    hosts = set(ast.literal_eval(line[len("HOSTS "):]))
    assert "127.0.0.1" in hosts and hosts <= {"127.0.0.1", "::1", "localhost"}, line   # the hook saw the page
