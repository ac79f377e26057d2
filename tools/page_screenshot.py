"""A screenshot of the classroom page with a photo dropped in and translated: docs/serve.png.

    python tools/page_screenshot.py pretrained/apple2orange_128 \\
        --photo tests/fixtures/real_mini/testA/n07740461_11910.jpg --out docs/serve.png

Starts the page (utils/inference/serve.py) on a free port of 127.0.0.1, drives the system's Chromium
with Playwright (as tests/test_serve_browser.py does; no browser is downloaded), gives it the photo,
waits for every translation and saves the window as a PNG of at most 256 colours (small enough for
the docs).
"""

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from utils.cli import quiet  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", help="as serve.py takes them")
    p.add_argument("--photo", required=True, help="the image to give the page")
    p.add_argument("--out", default="docs/serve.png")
    p.add_argument("--max-side", type=int, default=512)
    p.add_argument("--size", default="1200x900", help="the browser window, WIDTHxHEIGHT")
    p.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = p.parse_args(argv)
    quiet()
    from PIL import Image
    from playwright.sync_api import expect, sync_playwright

    from utils.evaluation.ablation import model_sources
    from utils.inference.serve import COLUMNS, build_app, launch

    app = build_app(model_sources(args.models), max_side=args.max_side)
    url = launch(app, port=0)
    width, height = map(int, args.size.split("x"))
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, headless=True)
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(url, wait_until="networkidle")
            page.locator("input[type=file]").set_input_files(args.photo)
            images = page.locator(".translation img")
            expect(images).to_have_count(len(app.translator.models) * len(COLUMNS), timeout=300_000)
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(500)   # the images' fade-in
            page.screenshot(path=args.out)
            browser.close()
    finally:
        app.close()
    Image.open(args.out).convert("RGB").quantize(256, dither=Image.Dither.NONE).save(args.out, optimize=True)
    print(f"{args.out}: {Path(args.out).stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
