"""The classroom page: drop in a photo, see it translated both ways and cycled back by every model.

`python serve.py RUN [RUN ...]` (serve.py) starts a local web page; `build_app` gives the same page
as a Gradio app for a notebook cell (`launch(app, inline=True)`: inline in Jupyter and in Colab).
Each RUN is a run folder, a checkpoint, a model folder (pretrained/...) or an ablation folder
(utils/evaluation/ablation.py), which stands for all of its variants: full loss, no identity, no
cycle, no adversarial... so a class sees the loss-weight ablation side by side on a photo it chose.
For every model the page shows, named by the domains of its dataset (monet2photo: Monet and photo;
A and B when the name does not say),

    A -> B (g_AB)   A -> B -> A (cycle, paper eq. 2)   B -> A (g_BA)   B -> A -> B

each at the photo's own size, or for a photo larger than `max_side` at a scaled-down copy, and answered
at that size (utils/inference/translation.py). A photo comes from a file dropped or chosen, the clipboard
(paste), or one of the test photos under the input.

Built with Gradio, the usual tool for such pages. The page listens on 127.0.0.1 unless told
otherwise, makes no share link, sends no analytics (GRADIO_ANALYTICS_ENABLED=False, set before
Gradio is imported, and analytics_enabled=False) and loads nothing from outside the machine. Its
limits, for a page that anyone on the network may reach (--host 0.0.0.0):
- it reads only the files that Gradio's upload route received for it (and its own test photos), by
  the exact path Gradio recorded, with no link on the way; any other path a client names is refused
  with one message (REFUSED), the same whether it exists or not;
- a request carries at most `max_bytes` (one photo, plus a little for the form's headers): Gradio's
  upload route refuses a file over it (413) while reading it, and the page refuses a request whose body
  is over it (413), by its Content-Length or, sent in chunks, as it comes in, and a form of more than
  a few parts (400; `RequestLimit`);
- an image is checked by its header (pixels, sides, aspect ratio: utils/images.py) before it is
  decoded; a file that is not an image gets a message naming it (gr.Error, shown on the page, one
  line on the console);
- one translation runs at a time (concurrency_limit=1: two would only share the same cores), at most
  QUEUE_SIZE wait, and each client (an address) has at most MAX_PENDING_PER_CLIENT waiting or running;
  Gradio's direct POST routes, which would skip the queue, are closed (api_open=False).
"""

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"   # read when gradio is imported: no version check, no telemetry

import re
import socket
import stat
import sys
from collections import Counter
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder
from starlette.formparsers import MultiPartException
from starlette.middleware import Middleware

from models.directions import DIRECTIONS, DOMAINS, cycle_label, label, reverse
from utils.images import ImageReadError, read_rgb, resize_rgb, to_model_channels
from utils.inference.trained_model import load_generators
from utils.inference.translation import NonFiniteOutputError, scaled_size, translate_at_own_size

MAX_UPLOAD_BYTES = 10 * 2**20   # 10 MiB: a phone photo
MAX_PIXELS = 40_000_000         # refused before decoding (decompression bombs)
DEFAULT_MAX_SIDE = 512          # the page answers in seconds on a laptop CPU
FORM_OVERHEAD = 16 * 2**10      # a request's bytes beyond its photo: the form's boundaries and part headers
QUEUE_SIZE = 32                 # photos waiting at most, all clients together
MAX_PENDING_PER_CLIENT = 2      # photos of one address waiting or running: the page sends one and keeps the last


def _columns(names):
    """(key, title) of the page's columns for the domain words `names`: each direction, then its cycle back
    (models/directions.py's labels); a key is the directions applied in turn, comma-separated."""
    return tuple(column for direction in DIRECTIONS
                 for column in ((direction, label(direction, names)),
                                (f"{direction},{reverse(direction)}", cycle_label(direction, names))))


COLUMNS = _columns(DOMAINS)   # A → B (g_AB), A → B → A (cycled back), B → A (g_BA), B → A → B (cycled back)

# The word for a domain where the dataset's name is not one (monet2photo: "Monet", not "monet").
DOMAIN_WORDS = {"monet": "Monet", "cezanne": "Cézanne", "ukiyoe": "Ukiyo-e", "vangogh": "Van Gogh",
                "iphone": "iPhone", "dslr": "DSLR"}
REFUSED = ("This page reads only photos uploaded to it: drop the photo on the page (or choose it) "
           "and it is translated.")
# Test photos to pick from (256 px real photos, tests/fixtures/README.md): an apple, an orange, a horse, a landscape.
FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "real_mini"
EXAMPLES = [FIXTURES / "testA" / "n07740461_11910.jpg", FIXTURES / "testB" / "n07749192_3890.jpg",
            FIXTURES / "trainA" / "n02381460_767.jpg", FIXTURES / "trainB" / "2014-09-11 01_07_17.jpg"]
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def domain_names(dataset):
    """The two domains a dataset's name says: 'monet2photo' -> ('Monet', 'photo'), 'synthetic_apple2orange' ->
    ('apple', 'orange'), 'summer2winter_yosemite' -> ('summer', 'winter'); ('A', 'B') for any other name or None."""
    name = str(dataset or "").lower()
    name = name[len("synthetic_"):] if name.startswith("synthetic_") else name
    match = re.fullmatch(r"([a-z]+)2([a-z]+)(?:_[a-z0-9_]+)?", name)
    return tuple(DOMAIN_WORDS.get(word, word) for word in match.groups()) if match else DOMAINS


def column_titles(domains):
    """The page's column titles, in COLUMNS' order, for domains (A, B): 'Monet → photo (g_AB)', ..."""
    return tuple(title for _, title in _columns(domains))


def _printable(text, limit=300):
    """A client's file name or path for one console line: no control characters, at most `limit` characters."""
    text = "".join(c if c.isprintable() else "?" for c in str(text))
    return text if len(text) <= limit else text[:limit] + "..."


def _log_refusal(what, why):
    """One line on the page's console for a refused file (Gradio would print a traceback for each)."""
    print(_printable(f"page: refused {_printable(what, 200)}: {why}", 600), file=sys.stderr, flush=True)


def _refuse(message, title, what, why=None):
    """gr.Error for the page (no traceback on the console), after one console line."""
    _log_refusal(what, why or message)
    return gr.Error(message, title=title, print_exception=False)


class Translator:
    """Every model's generators, loaded once; `answer` checks an upload and runs it through all of them.

    `answer` reads the file it is given: a path of this machine (a notebook's own photo). The page gives it
    only what a client uploaded (`_Page`)."""

    def __init__(self, sources, max_side=DEFAULT_MAX_SIDE, max_bytes=MAX_UPLOAD_BYTES):
        pairs = [source if isinstance(source, tuple) else (Path(source).name, source) for source in sources]
        self.models = [(label, load_generators(source)) for label, source in pairs]
        self.domains = [domain_names(model.dataset) for _, model in self.models]   # as each config.json names it
        self.max_side, self.max_bytes = max_side, max_bytes
        self.max_bytes_text = size_text(max_bytes)

    def translate(self, image):
        """uint8 (h, w, 3) -> [(label, {column key: uint8 (h, w, c)})], columns as COLUMNS."""
        rows = []
        for model_name, model in self.models:
            source = to_model_channels(image, model.channels)   # the gray a grayscale model trained on
            cells = {}
            for key, _ in COLUMNS:
                out = source
                for direction in key.split(","):
                    out = translate_at_own_size(model.generator(direction), out, model.size_multiple, self.max_side)
                cells[key] = out
            rows.append((model_name, cells))
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
            raise _refuse(f"{name} is {size_text(size)}: over the limit of {self.max_bytes_text}. "
                          "Choose a smaller photo.", "Upload too large", name)
        try:
            return read_rgb(path, max_pixels=MAX_PIXELS), name
        except ImageReadError as error:
            raise _refuse(f"{name} is not an image this page can read: {error.reason}.", "Not an image", name,
                          f"not an image this page can read: {error.reason}") from None

    def answer(self, upload):
        """The page's event: [note, then each model's COLUMNS images]; all empty when the photo is cleared.
        A photo larger than max_side is translated as a scaled-down copy and answered at that size: the work
        of a request is bounded by max_side, not by the photo (a 36-megapixel zlib bomb is a 100 KB file)."""
        if upload is None:
            return [""] + [None] * (len(self.models) * len(COLUMNS))
        photo, name = self.read_upload(upload)
        h, w = photo.shape[:2]
        work_h, work_w = scaled_size((h, w), self.max_side)
        try:
            rows = self.translate(resize_rgb(photo, (work_h, work_w)))
        except NonFiniteOutputError as error:
            raise _refuse(f"{name}: {error}.", "Translation failed", name) from None
        note = (f"**{name}** translated at its own size, {w} x {h} px." if (work_h, work_w) == (h, w) else
                f"**{name}** is {w} x {h} px, above {self.max_side} px: translated and shown at "
                f"{work_w} x {work_h} px.")
        images = [cells[key][..., 0] if cells[key].shape[-1] == 1 else cells[key]
                  for _, cells in rows for key, _ in COLUMNS]
        return [note] + images


def size_text(n):
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 1024:.0f} KiB"


class _Page(gr.Blocks):
    """gr.Blocks that hands the photo's event only files Gradio's upload route received for this app, and
    bounds each client's share of the queue.

    A client sends the photo as Gradio's file data, {"path": ..., "meta": ...}, with any path it likes: without
    "meta" Gradio passes the path on unchecked (the event has preprocess=False); with it, Gradio checks it is
    inside its cache folder (which every Gradio app of the machine shares) and fetches a URL. So the path is
    checked here, before Gradio's own preprocessing: it must be one this app's upload route recorded
    (`upload_file_set`) or one of the page's test photos, with no link on the way, a regular file."""

    gated_ids = frozenset()       # the components whose values must be uploads (the photo)
    example_files = frozenset()   # the cached copies of the test photos

    def is_upload(self, path):
        if not isinstance(path, str) or (path not in self.upload_file_set and path not in self.example_files):
            return False
        real = os.path.realpath(path)
        if real != os.path.abspath(path):   # a link somewhere on the way, or '..'
            return False
        server = getattr(self, "server_app", None)   # Gradio's upload route writes into its uploaded_file_dir
        cache = os.path.realpath(getattr(server, "uploaded_file_dir", None) or get_upload_folder())
        try:
            return os.path.commonpath([real, cache]) == cache and stat.S_ISREG(os.lstat(real).st_mode)
        except (OSError, ValueError):
            return False

    def check_inputs(self, block_fn, inputs):
        for block, value in zip(block_fn.inputs, inputs):
            if block._id not in self.gated_ids or value is None:
                continue
            path = value.get("path") if isinstance(value, dict) else value
            if not (isinstance(value, dict) and self.is_upload(path)):
                raise _refuse(REFUSED, "Not an upload", ascii(path) if isinstance(path, str) else type(value).__name__,
                              "not a file uploaded to this page")

    async def preprocess_data(self, block_fn, inputs, state, explicit_call=False):
        self.check_inputs(block_fn, inputs)
        return await super().preprocess_data(block_fn, inputs, state, explicit_call)

    def queue(self, *args, **kwargs):
        """Gradio's queue, which refuses a client's request while it has MAX_PENDING_PER_CLIENT there."""
        result = super().queue(*args, **kwargs)
        queue, push, entering = self._queue, self._queue.push, Counter()

        async def push_fairly(body, request, username):
            client = _client(request)
            # Counted and reserved with no await in between: two requests at once cannot both take the last place.
            pending = entering[client] + sum(_client(event.request) == client
                                             for event in list(queue.event_ids_to_events.values()))
            if pending >= MAX_PENDING_PER_CLIENT:
                return (False, f"this computer ({client}) already has {MAX_PENDING_PER_CLIENT} photos on the "
                        "page's queue: wait until they are translated", "queue_full")
            entering[client] += 1   # until Gradio's queue holds the event (event_ids_to_events)
            try:
                return await push(body, request, username)
            finally:
                entering[client] -= 1
                if not entering[client]:
                    del entering[client]
        queue.push = push_fairly
        return result


def _client(request):
    return request.client.host if request is not None and request.client is not None else None


class RequestLimit:
    """ASGI middleware: one photo a request. 413 for a request whose body is over `limit` bytes, by its
    Content-Length before anything is read, or, sent in chunks, once that many bytes came in; 400 for a form
    of more than MAX_PARTS parts (Gradio's upload route takes 1,000). The refusal is raised inside the body's
    stream as the error Gradio's upload route answers for a file over its own limit, so that route deletes the
    parts it had written."""

    MAX_PARTS = 4   # the page's browser sends one file a request

    def __init__(self, app, limit, says):
        self.app, self.limit, self.says = app, limit, says

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {name.lower(): value for name, value in scope["headers"]}
        length = headers.get(b"content-length", b"").strip()
        if length.isdigit() and int(length) > self.limit:
            return await self.refuse(send, 413, self.says)
        boundary = re.search(rb'boundary="?([^";]+)', headers.get(b"content-type", b""))
        delimiter = b"--" + boundary.group(1) if boundary else None
        seen, delimiters, tail, refusal, started = 0, 0, b"", None, False

        async def counted():
            nonlocal seen, delimiters, tail, refusal
            message = await receive()
            body = message.get("body", b"") if message["type"] == "http.request" else b""
            seen += len(body)
            if delimiter:   # the form's parts, counted by their delimiters (the last one closes the form)
                window = tail + body
                delimiters += window.count(delimiter)
                tail = window[-(len(delimiter) - 1):]
            if delimiters > self.MAX_PARTS + 1:
                refusal = (400, f"A request to this page carries one photo: more than {self.MAX_PARTS} parts.")
            elif seen > self.limit:
                refusal = (413, self.says)
            if refusal:
                raise MultiPartException(refusal[1])   # 413 from the upload route for "maximum allowed size", else 400
            return message

        async def watched(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except Exception:
            if refusal is None:
                raise
            if not started:
                await self.refuse(send, *refusal)

    @staticmethod
    async def refuse(send, status, says):
        body = says.encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def build_app(sources, max_side=DEFAULT_MAX_SIDE, max_bytes=MAX_UPLOAD_BYTES, examples=None):
    """The page as a gr.Blocks app for `sources`: model paths, or (label, path) pairs such as
    utils.evaluation.ablation.model_sources gives for an ablation folder, or a Translator.
    examples: image paths to pick from under the input (default EXAMPLES, those that exist).
    The app's `translator` is the Translator; `launch` starts it with the page's limits."""
    translator = sources if isinstance(sources, Translator) else Translator(sources, max_side, max_bytes)
    examples = [str(p) for p in (EXAMPLES if examples is None else examples) if Path(p).is_file()]
    with _Page(title="CycleGAN classroom page", analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        gr.Markdown("# CycleGAN: translate a photo both ways\n\nModels: " + "; ".join(
            f"**{label}** ({m.config.generator_type}, trained at {m.config.input_dim[0]} px"
            + (f", {a} ↔ {b}" if (a, b) != DOMAINS else "") + ")"
            for (label, m), (a, b) in zip(translator.models, translator.domains)))
        with gr.Row():
            photo = gr.Image(label="Your photo: drop it here, click to choose, or paste it", type="filepath",
                             sources=["upload", "clipboard"], height=320, buttons=["fullscreen"], scale=2)
            with gr.Column(scale=1):
                gr.Markdown(f"One image of up to {translator.max_bytes_text} a request; translated at its own size, "
                            f"or above {translator.max_side} px a side as a copy scaled down to that, and shown "
                            f"at that size. Each computer has at most {MAX_PENDING_PER_CLIENT} photos on the queue.")
                if examples:
                    picked = gr.Examples(examples=[[p] for p in examples], inputs=[photo], label="Or pick a test photo")
                    app.example_files = frozenset(item["path"] for sample in picked.dataset.samples for item in sample
                                                  if isinstance(item, dict) and isinstance(item.get("path"), str))
        note = gr.Markdown()
        images = []
        for (model_name, _), domains in zip(translator.models, translator.domains):
            gr.Markdown(f"### {model_name}")
            with gr.Row(equal_height=True):
                images += [gr.Image(label=title, interactive=False, format="png", height=220,
                                    buttons=["download", "fullscreen"], elem_classes=["translation"])
                           for title in column_titles(domains)]
        gr.Markdown("A → B → A should give the photo back (cycle consistency, paper eq. 2); "
                    "B → A on an A photo shows the identity term at work.")
        photo.change(translator.answer, inputs=photo, outputs=[note, *images], preprocess=False,
                     concurrency_limit=1, api_name="translate")
    app.gated_ids = frozenset({photo._id})
    app.queue(max_size=QUEUE_SIZE, api_open=False)   # api_open: Gradio's direct POST routes would skip the queue
    app.translator = translator
    return app


def _check_port(host, port):
    """The port to give Gradio: `port` if it can be bound on `host`, a free one for 0; OSError if taken.
    SO_REUSEADDR as Gradio's server (uvicorn) binds: the connections of a page just closed wait in TIME-WAIT
    on the port for a minute, which would otherwise read as taken (a port someone listens on still is)."""
    family = socket.getaddrinfo(host, port)[0][0]
    with socket.socket(family) as probe:
        if os.name != "nt":   # on Windows the option would let two servers share a port; TIME-WAIT does not block there
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
        return probe.getsockname()[1]


def launch(app, host="127.0.0.1", port=0, inline=False):
    """Start the page of `build_app` without blocking; returns its address. port 0: any free port
    (OSError if `port` is taken). inline: show it in the notebook cell (Jupyter, Colab). app.close() stops it;
    app.block_thread() waits for Ctrl-C."""
    max_bytes = app.translator.max_bytes
    says = (f"Request over the maximum allowed size of {max_bytes} bytes: this page takes one photo of at most "
            f"{size_text(max_bytes)} a request.")
    limit = Middleware(RequestLimit, limit=max_bytes + FORM_OVERHEAD, says=says)
    app.launch(server_name=host, server_port=_check_port(host, port), share=False, inline=inline,
               prevent_thread_lock=True, quiet=True, max_file_size=max_bytes, app_kwargs={"middleware": [limit]},
               footer_links=["gradio"], enable_monitoring=False, run_history=False, mcp_server=False,
               ssr_mode=False, pwa=False)
    return app.local_url
