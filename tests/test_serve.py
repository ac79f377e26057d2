"""The classroom page, with real HTTP requests on 127.0.0.1: it translates an upload with every model
(an ablation folder gives one row per variant) and refuses a non-image and an oversize file on the page."""

import base64
import io
import json
import re
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from models import CycleGAN
from utils.evaluation.ablation import model_sources
from utils.inference.serve import make_server

TINY = dict(input_dim=(32, 32, 3), gen_n_filters=4, disc_n_filters=4)
LIMIT = 60_000   # bytes


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """A page for one run folder and a two-variant ablation folder, on an ephemeral port."""
    root = tmp_path_factory.mktemp("models")
    CycleGAN(**TINY, seed=0).save_checkpoint(root / "0001_tiny" / "weights")
    ablation = root / "ablation"
    (ablation / "ablation.json").parent.mkdir()
    (ablation / "ablation.json").write_text(json.dumps({"variants": {"full": {}, "lambda_id=0": {"lambda_id": 0}}}))
    for seed, variant in enumerate(("full", "lambda_id_0")):
        CycleGAN(**TINY, seed=seed + 1).save_checkpoint(ablation / "runs" / variant / "weights")
    server = make_server(model_sources([root / "0001_tiny", ablation]), port=0, max_bytes=LIMIT, max_side=64, verbose=False)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def post_file(url, filename, data):
    """POST a multipart/form-data upload as a browser's form does; returns (status, page)."""
    boundary = "----cyclegan-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"{filename}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(url + "/translate", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def png_bytes(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def page_images(page_html):
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(data))))
            for data in re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page_html)]


def test_the_page_lists_every_model_and_has_the_form(page):
    with urllib.request.urlopen(page + "/", timeout=30) as response:
        html = response.read().decode()
    assert "<form method='post' action='/translate' enctype='multipart/form-data'>" in html
    assert "0001_tiny" in html and "full: full loss" in html and "lambda_id=0: no identity loss" in html
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(page + "/etc/passwd", timeout=30)
    assert error.value.code == 404


def test_an_upload_is_translated_both_ways_by_every_model(page):
    photo = np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    status, html = post_file(page, "my photo.png", png_bytes(photo))
    assert status == 200 and "my photo.png" in html and "Translated at 56 x 40 px" in html
    images = page_images(html)
    assert len(images) == 1 + 3 * 4     # the photo, then 3 models x (AtoB, AtoBtoA, BtoA, BtoAtoB)
    assert np.array_equal(images[0], photo)
    assert all(image.shape == (40, 56, 3) for image in images[1:])
    assert len({image.tobytes() for image in images[1:]}) == 12   # every model and column differs


def test_a_file_that_is_not_an_image_is_refused_on_the_page(page):
    status, html = post_file(page, "notes.txt", b"these are my notes, not a photo")
    assert status == 415 and "notes.txt is not an image this page can read" in html
    assert "<form" in html and not page_images(html)


def test_an_oversize_upload_is_refused_on_the_page(page):
    noise = np.random.default_rng(1).integers(0, 256, (200, 200, 3), dtype=np.uint8)   # ~120 kB as PNG
    data = png_bytes(noise)
    assert len(data) > LIMIT
    status, html = post_file(page, "big.png", data)
    assert status == 413 and "over the limit of 59 KiB" in html and not page_images(html)
    status, html = post_file(page, "small.png", png_bytes(noise[:20, :20]))   # the page still works after it
    assert status == 200 and len(page_images(html)) == 13
