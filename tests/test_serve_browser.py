"""The classroom page in a real browser: Playwright drives the system's Chromium (never a browser of its own:
nothing is downloaded at test time) against the page on 127.0.0.1. It uploads a photo, waits for every
translation to appear, picks a test photo, is refused a file that is not an image, and checks that the
page asked nothing of any other machine. Without Playwright or Chromium the tests skip, naming what is missing."""

import os
import shutil
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from PIL import Image

from models import CycleGAN
from utils.inference.serve import COLUMNS, build_app, launch
from utils.training import checkpoint

sync_api = pytest.importorskip("playwright.sync_api", reason="needs Playwright (pip install -r requirements.txt)")

CHROMIUM = (os.environ.get("CYCLEGAN_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
            or "/usr/bin/chromium")
HOW_TO_INSTALL = (f"Debian/Ubuntu: apt-get install chromium; or set CYCLEGAN_CHROMIUM to its path (looked for {CHROMIUM}); "
                  "the browser test never downloads Playwright's own browsers")
MISSING = not Path(CHROMIUM).is_file()
IN_CI = os.environ.get("CI", "").lower() in ("true", "1")   # .ci/run installs Chromium: there a missing one fails
pytestmark = pytest.mark.skipif(MISSING and not IN_CI, reason=f"needs the system's Chromium ({HOW_TO_INSTALL})")
TINY = dict(input_dim=(32, 32, 3), gen_n_filters=4, disc_n_filters=4)
TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def page_url(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    for seed, name in enumerate(("0001_tiny", "0002_tiny")):
        checkpoint.save(CycleGAN(**TINY, seed=seed), root / name / "weights")
    app = build_app([root / "0001_tiny", root / "0002_tiny"], max_side=64, max_bytes=200_000)
    url = launch(app, port=0)
    yield url
    app.close()


@pytest.fixture(scope="module")
def browser():
    if MISSING:
        pytest.fail(f"CI={os.environ['CI']} and no Chromium: the page would go untested. .ci/run installs it; "
                    f"{HOW_TO_INSTALL}", pytrace=False)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, page_url):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.requested = []
    page.on("request", lambda request: page.requested.append(request.url))
    page.goto(page_url, wait_until="networkidle", timeout=TIMEOUT_MS)
    yield page
    context.close()


def translations(page, n_models=2):
    """The src of each translated image once all n_models x 4 are on the page."""
    images = page.locator(".translation img")
    sync_api.expect(images).to_have_count(n_models * len(COLUMNS), timeout=TIMEOUT_MS)
    return [images.nth(i).get_attribute("src") for i in range(images.count())]


@pytest.mark.long
def test_an_uploaded_photo_is_translated_on_the_page(page, page_url, tmp_path):
    photo = np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    Image.fromarray(photo).save(tmp_path / "my photo.png")
    page.locator("input[type=file]").set_input_files(tmp_path / "my photo.png")
    sources = translations(page)
    sync_api.expect(page.get_by_text("translated at its own size, 56 x 40 px")).to_be_visible(timeout=TIMEOUT_MS)
    for title in ("0001_tiny", "0002_tiny", *[title for _, title in COLUMNS]):
        assert page.get_by_text(title).first.is_visible()
    first = page.request.get(sources[0])   # the translation itself: the photo's own size
    assert first.ok
    (tmp_path / "first.png").write_bytes(first.body())
    assert Image.open(tmp_path / "first.png").size == (56, 40)
    hosts = {urlparse(url).hostname for url in page.requested if not url.startswith(("data:", "blob:"))}
    assert hosts == {"127.0.0.1"}, f"the page asked other machines: {hosts}"


def test_a_test_photo_can_be_picked_as_an_example(page):
    page.get_by_text("Or pick a test photo").wait_for(timeout=TIMEOUT_MS)
    page.locator(".gallery-item").first.click()   # Gradio's examples: a gallery of buttons
    translations(page)
    sync_api.expect(page.get_by_text("n07740461_11910.jpg")).to_be_visible(timeout=TIMEOUT_MS)


def test_a_file_that_is_not_an_image_gets_a_message_on_the_page(page, tmp_path):
    (tmp_path / "notes.png").write_bytes(b"these are my notes, not a photo")
    page.locator("input[type=file]").set_input_files(tmp_path / "notes.png")
    message = page.get_by_text("notes.png is not an image this page can read")
    sync_api.expect(message).to_be_visible(timeout=TIMEOUT_MS)
    assert page.locator(".translation img").count() == 0
