"""The classroom page: drop in a photo, see it translated both ways and cycled back by every model.

`python serve.py RUN [RUN ...]` (serve.py) starts a local web page; `build_app` gives the same page
as a Gradio app for a notebook cell (`launch(app, inline=True)`: inline in Jupyter and in Colab).
Each RUN is a run folder, a checkpoint, a model folder (pretrained/...) or an ablation folder
(utils/evaluation/ablation.py), which stands for all of its variants: full loss, no identity, no
cycle, no adversarial... so a class sees the loss-weight ablation side by side on a photo it chose.
For every model the page shows

    A -> B (g_AB)   A -> B -> A (cycle, paper eq. 2)   B -> A (g_BA)   B -> A -> B

each at the photo's own size (utils/inference/translation.py, capped at `max_side`). A photo comes
from a file dropped or chosen, the clipboard (paste), or one of the test photos under the input.

Built with Gradio, the usual tool for such pages. The page listens on 127.0.0.1 unless told
otherwise, makes no share link, sends no analytics (GRADIO_ANALYTICS_ENABLED=False, set before
Gradio is imported, and analytics_enabled=False) and loads nothing from outside the machine. Its
limits: Gradio's upload route refuses a file over `max_bytes` (413) while reading it, and the
translation refuses it too; an image is checked by its header (pixels, sides, aspect ratio:
utils/images.py) before it is decoded; a file that is not an image gets a message naming it
(gr.Error, shown on the page). One translation runs at a time (concurrency_limit=1): two would
only share the same cores.
"""

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"   # read when gradio is imported: no version check, no telemetry

import socket
from pathlib import Path

import gradio as gr

from utils.images import ImageReadError, read_rgb
from utils.inference.trained_model import load_generators
from utils.inference.translation import NonFiniteOutputError, translate_at_own_size

MAX_UPLOAD_BYTES = 10 * 2**20   # 10 MiB: a phone photo
MAX_PIXELS = 40_000_000         # refused before decoding (decompression bombs)
DEFAULT_MAX_SIDE = 512          # the page answers in seconds on a laptop CPU
COLUMNS = (("AtoB", "A → B (g_AB)"), ("AtoB,BtoA", "A → B → A (cycled back)"),
           ("BtoA", "B → A (g_BA)"), ("BtoA,AtoB", "B → A → B (cycled back)"))
# Test photos to pick from (256 px real photos, tests/fixtures/README.md): an apple, an orange, a horse, a landscape.
FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "real_mini"
EXAMPLES = [FIXTURES / "testA" / "n07740461_11910.jpg", FIXTURES / "testB" / "n07749192_3890.jpg",
            FIXTURES / "trainA" / "n02381460_767.jpg", FIXTURES / "trainB" / "2014-09-11 01_07_17.jpg"]
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


class Translator:
    """Every model's generators, loaded once; `answer` checks an upload and runs it through all of them."""

    def __init__(self, sources, max_side=DEFAULT_MAX_SIDE, max_bytes=MAX_UPLOAD_BYTES):
        pairs = [source if isinstance(source, tuple) else (Path(source).name, source) for source in sources]
        self.models = [(label, load_generators(source)) for label, source in pairs]
        self.max_side, self.max_bytes = max_side, max_bytes
        self.max_bytes_text = size_text(max_bytes)

    def translate(self, image):
        """uint8 (h, w, 3) -> [(label, {column key: uint8 (h, w, c)})], columns as COLUMNS."""
        rows = []
        for label, model in self.models:
            if model.channels == 1:
                source = image.mean(axis=-1, keepdims=True).round().astype("uint8")
            else:
                source = image
            cells = {}
            for key, _ in COLUMNS:
                out = source
                for direction in key.split(","):
                    out = translate_at_own_size(model.generator(direction), out, model.size_multiple, self.max_side)
                cells[key] = out
            rows.append((label, cells))
        return rows

    def read_upload(self, upload):
        """(photo uint8 (h, w, 3), its name) of an upload: a path, or Gradio's file data {"path", "orig_name"}.
        gr.Error with a message for the page when it is too large or not an image this page reads."""
        if isinstance(upload, dict):
            path, name = Path(upload["path"]), upload.get("orig_name") or Path(upload["path"]).name
        else:
            path = Path(upload)
            name = path.name
        size = path.stat().st_size if path.is_file() else 0
        if size > self.max_bytes:
            raise gr.Error(f"{name} is {size_text(size)}: over the limit of {self.max_bytes_text}. "
                           "Choose a smaller photo.", title="Upload too large")
        try:
            return read_rgb(path, max_pixels=MAX_PIXELS), name
        except ImageReadError as error:
            raise gr.Error(f"{name} is not an image this page can read: {error.reason}.",
                           title="Not an image") from None

    def answer(self, upload):
        """The page's event: [note, then each model's COLUMNS images]; all empty when the photo is cleared."""
        if upload is None:
            return [""] + [None] * (len(self.models) * len(COLUMNS))
        photo, name = self.read_upload(upload)
        try:
            rows = self.translate(photo)
        except NonFiniteOutputError as error:
            raise gr.Error(f"{name}: {error}.", title="Translation failed") from None
        h, w = photo.shape[:2]
        note = (f"**{name}** translated at its own size, {w} x {h} px." if max(h, w) <= self.max_side else
                f"**{name}** is {w} x {h} px, above {self.max_side} px: translated a scaled-down copy, scaled back up.")
        images = [cells[key][..., 0] if cells[key].shape[-1] == 1 else cells[key]
                  for _, cells in rows for key, _ in COLUMNS]
        return [note] + images


def size_text(n):
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 1024:.0f} KiB"


def build_app(sources, max_side=DEFAULT_MAX_SIDE, max_bytes=MAX_UPLOAD_BYTES, examples=None):
    """The page as a gr.Blocks app for `sources`: model paths, or (label, path) pairs such as
    utils.evaluation.ablation.model_sources gives for an ablation folder, or a Translator.
    examples: image paths to pick from under the input (default EXAMPLES, those that exist).
    The app's `translator` is the Translator; `launch` starts it with the page's limits."""
    translator = sources if isinstance(sources, Translator) else Translator(sources, max_side, max_bytes)
    examples = [str(p) for p in (EXAMPLES if examples is None else examples) if Path(p).is_file()]
    with gr.Blocks(title="CycleGAN classroom page", analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        gr.Markdown("# CycleGAN: translate a photo both ways\n\nModels: " + "; ".join(
            f"**{label}** ({m.config.generator_type}, trained at {m.config.input_dim[0]} px)"
            for label, m in translator.models))
        with gr.Row():
            photo = gr.Image(label="Your photo: drop it here, click to choose, or paste it", type="filepath",
                             sources=["upload", "clipboard"], height=320, buttons=["fullscreen"], scale=2)
            with gr.Column(scale=1):
                gr.Markdown(f"Any image up to {translator.max_bytes_text}; translated at its own size "
                            f"(longer side capped at {translator.max_side} px).")
                if examples:
                    gr.Examples(examples=[[p] for p in examples], inputs=[photo], label="Or pick a test photo")
        note = gr.Markdown()
        images = []
        for label, _ in translator.models:
            gr.Markdown(f"### {label}")
            with gr.Row(equal_height=True):
                images += [gr.Image(label=title, interactive=False, format="png", height=220,
                                    buttons=["download", "fullscreen"], elem_classes=["translation"])
                           for _, title in COLUMNS]
        gr.Markdown("A → B → A should give the photo back (cycle consistency, paper eq. 2); "
                    "B → A on an A photo shows the identity term at work.")
        photo.change(translator.answer, inputs=photo, outputs=[note, *images], preprocess=False,
                     concurrency_limit=1, api_name="translate")
    app.translator = translator
    return app


def _check_port(host, port):
    """The port to give Gradio: `port` if it can be bound on `host`, a free one for 0; OSError if taken."""
    family = socket.getaddrinfo(host, port)[0][0]
    with socket.socket(family) as probe:
        probe.bind((host, port))
        return probe.getsockname()[1]


def launch(app, host="127.0.0.1", port=0, inline=False):
    """Start the page of `build_app` without blocking; returns its address. port 0: any free port
    (OSError if `port` is taken). inline: show it in the notebook cell (Jupyter, Colab). app.close() stops it;
    app.block_thread() waits for Ctrl-C."""
    app.launch(server_name=host, server_port=_check_port(host, port), share=False, inline=inline,
               prevent_thread_lock=True, quiet=True, max_file_size=app.translator.max_bytes,
               footer_links=["gradio"], enable_monitoring=False, run_history=False, mcp_server=False,
               ssr_mode=False, pwa=False)
    return app.local_url
