"""A local page for the classroom: drop in a photo, see it translated both ways (and cycled back).

    python serve.py pretrained/synthetic_apple2orange_64            # then open http://127.0.0.1:8000
    python serve.py run/cyclegan/0001_apple2orange run/cyclegan/0002_apple2orange
    python serve.py run/ablation/apple2orange_64                    # every variant of an ablation, side by side

Each model is a run folder, a checkpoint, a model folder (pretrained/...) or an ablation folder.
The page is a Gradio app (utils/inference/serve.py; build_app shows it in a notebook too). It listens on
127.0.0.1 (this computer only) unless --host says otherwise, makes no share link and sends no analytics.
It reads only the photos uploaded to it; a request carries at most one photo of --max-upload-mb (a larger
request or file gets 413, a file that is not an image a message); a photo larger than --max-side is
translated and shown at that size; each computer has at most 2 photos on the queue. Ctrl-C stops it.
"""

import argparse
import sys
from pathlib import Path

from utils.runtime.onednn import prefer_onednn
from utils.cli import ArgumentParser, port_number, positive_float, positive_int
from utils.cli import quiet  # hides TensorFlow's start-up logs; called in main() before Keras is imported

MAX_UPLOAD_MB = 1024   # a photo; a larger limit would only let a client hold that much of the page's memory and disk
MAX_SIDE = 4096        # the largest side models/config.py trains at


def upload_mb(text):
    """argparse type: the upload limit, a number of MB > 0 and at most MAX_UPLOAD_MB."""
    value = positive_float(text)
    if value > MAX_UPLOAD_MB:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_UPLOAD_MB} (MB, one photo), got {text!r}")
    return value


def side(text):
    """argparse type: --max-side, an integer from 1 to MAX_SIDE."""
    value = positive_int(text)
    if value > MAX_SIDE:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_SIDE} px, got {value}")
    return value


def main(argv=None):
    p = ArgumentParser(description="Serve a local page that translates an uploaded photo with trained CycleGANs.")
    p.add_argument("models", nargs="+", help="run folders, checkpoints, model folders (pretrained/...) or ablation folders")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this computer only; "
                   "0.0.0.0 lets anyone on the network upload)")
    p.add_argument("--port", type=port_number, default=8000, help="0 to 65535 (0: any free port; default 8000)")
    p.add_argument("--max-upload-mb", type=upload_mb, default=10, help="the most one request may carry: one photo "
                   f"of this many MB (default 10, at most {MAX_UPLOAD_MB}); a larger file or request is refused")
    p.add_argument("--max-side", type=side, default=512, help="translate photos whose longer side is above this as a "
                   "copy scaled down to it, and show the results at that size (default 512: answers in seconds on a "
                   f"laptop CPU; at most {MAX_SIDE})")
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's own log lines (hidden by default)")
    args = p.parse_args(argv)
    missing = [model for model in args.models if not Path(model).exists()]
    if missing:   # before TensorFlow's import (seconds)
        p.error(f"no such model: {missing[0]} (a run folder, a ckpt-* folder, a model folder or an ablation folder)")
    prefer_onednn("translation")   # TensorFlow's fastest CPU kernels for translating (utils/runtime/onednn.py)
    quiet(verbose=args.verbose)

    from utils.evaluation.ablation import model_sources
    from utils.inference.serve import LOCAL_HOSTS, build_app, launch
    try:
        app = build_app(model_sources(args.models), max_side=args.max_side, max_bytes=int(args.max_upload_mb * 2**20))
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"error: {error}")
    try:
        url = launch(app, args.host, args.port)
    except OSError as error:   # the port is taken, or the address is not this machine's
        reason = error.strerror or error
        sys.exit(f"error: cannot listen on {args.host}:{args.port} ({reason}); try --port {args.port + 1}")
    if args.host not in LOCAL_HOSTS:
        print(f"note: listening on {args.host}: anyone who can reach this computer can use the page")
    print(f"Open {url.replace('0.0.0.0', '127.0.0.1')} (Ctrl-C stops)", flush=True)
    app.block_thread()   # until Ctrl-C; then Gradio closes the server


if __name__ == "__main__":
    main()
