"""Issue #33's A/B: the same Monet models side by side on real test images at 256 px.

For each model (a run folder or a model folder, trained at any size: its generators are convolutional):
the same test photos translated photo -> Monet in one figure (one row a photo, one column a model),
the checkerboard score of its photo -> Monet and Monet -> photo translations of the test sets, and
whether the paintings' greens stay green in Monet -> photo (utils/evaluation/hue.py). With each run's
evaluation_256px.json (`python evaluate.py RUN --image-size 256`), the judge and KID go into the table too.

    .venv/bin/python benchmarks/monet_upsampling_ab.py transposed=RUN1 nearest=RUN2 bilinear=RUN3 \\
        shipped=pretrained/monet2photo_256 --data-root data --figure docs/results/x.jpg --json-out docs/results/x.json
"""

import io
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZE = 256
PHOTOS = 8   # test photos in the figure


def main(argv=None):
    from utils.cli import ArgumentParser, quiet
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", metavar="LABEL=FOLDER", help="a label and a run or model folder")
    p.add_argument("--data-root", default="data", help="holds monet2photo/ (testA: paintings, testB: photos)")
    p.add_argument("--figure", required=True, help="the side-by-side JPEG to write")
    p.add_argument("--json-out", help="the figures of every model")
    p.add_argument("--limit", type=int, help="test images a domain for the scores (default: all)")
    args = p.parse_args(argv)
    models = {}
    for item in args.models:
        label, sep, folder = item.partition("=")
        if not sep or not label or not Path(folder, "config.json").is_file():
            p.error(f"{item!r}: give LABEL=FOLDER, FOLDER a run or model folder with config.json")
        models[label] = folder
    data = Path(args.data_root) / "monet2photo"
    if not (data / "testA").is_dir() or not (data / "testB").is_dir():
        p.error(f"--data-root {args.data_root}: no monet2photo/testA and testB there")
    quiet()

    from PIL import Image
    from utils.evaluation.baselines import model_translator
    from utils.evaluation.checkerboard import folder_summary
    from utils.evaluation.hue import green_kept
    from utils.images import load_images
    from utils.inference.trained_model import load_generators
    from utils.plots import image_table

    paintings = load_images(data / "testA", SIZE, limit=args.limit)
    photos = load_images(data / "testB", SIZE, limit=args.limit)
    shown = photos[:PHOTOS]
    rows = [[image * 2 - 1] for image in shown]
    results = {"image_size": SIZE, "n_test": {"A": len(paintings), "B": len(photos)},
               "real": {"A": folder_summary(paintings), "B": folder_summary(photos)}, "models": {}}
    for label, folder in models.items():
        translate = model_translator(load_generators(folder))
        to_monet = translate(photos, "BtoA")
        to_photo = translate(paintings, "AtoB")
        figures = {"folder": folder, "checkerboard": {"BtoA": folder_summary(to_monet), "AtoB": folder_summary(to_photo)},
                   "greens_AtoB": green_kept(paintings, to_photo)}
        evaluation = Path(folder) / "evaluation_256px.json"
        if not evaluation.is_file() and Path(folder, "evaluation.json").is_file():
            evaluation = Path(folder) / "evaluation.json"   # a model trained at 256 px
        if evaluation.is_file():
            scored = json.loads(evaluation.read_text())
            if scored.get("image_size") == SIZE:
                methods = scored["methods"]
                figures["evaluation"] = {name: {d: {k: methods[name][d].get(k) for k in
                                                    ("judged_target", "kid_judge", "cycle_error")}
                                                for d in ("AtoB", "BtoA")} for name in methods}
        results["models"][label] = figures
        for row, image in zip(rows, to_monet[:PHOTOS]):
            row.append(image * 2 - 1)
        print(f"{label}: checkerboard photo -> Monet {figures['checkerboard']['BtoA']['median']:.3f} / "
              f"{figures['checkerboard']['BtoA']['p90']:.3f}, Monet -> photo "
              f"{figures['checkerboard']['AtoB']['median']:.3f}; greens kept {figures['greens_AtoB']['kept_green']:.1%}",
              flush=True)
    png = image_table(rows, None, column_titles=["photo", *models], cell_inches=2.56, dpi=100)
    Image.open(io.BytesIO(png)).convert("RGB").save(args.figure, quality=88)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=1) + "\n")
    print(f"written: {args.figure}" + (f", {args.json_out}" if args.json_out else ""))


if __name__ == "__main__":
    from utils.cli import run_main
    run_main(main)
