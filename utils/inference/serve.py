"""The classroom page: drop in a photo, see it translated both ways and cycled back by every model.

`python serve.py RUN [RUN ...]` (serve.py) starts a local web page. Each RUN is a run folder, a
checkpoint, a model folder (pretrained/...) or an ablation folder (utils/evaluation/ablation.py), which
stands for all of its variants: full loss, no identity, no cycle, no adversarial... so a class sees
the loss-weight ablation side by side on a photo it chose. For every model the page shows

    A -> B (g_AB)   A -> B -> A (cycle, paper eq. 2)   B -> A (g_BA)   B -> A -> B

each at the photo's own size (utils/inference/translation.py, capped at `max_side`).

Built on the standard library's `http.server` (Gradio, the usual tool for demo pages, did not install
beside the pinned stack: gradio 6.31.0 requires a pillow older than the pinned 13.0.0). It binds
127.0.0.1 unless told otherwise, refuses uploads over `max_bytes` and files that are not images,
each with a message on the page, and never writes an upload anywhere but a temporary file. The work
per request is bounded: a missing or negative Content-Length is refused (400) before anything is
read, no more than the limit is read into memory, a form of more than MAX_FORM_PARTS parts is refused
before it is parsed, an image is checked by its header (pixels, sides, aspect ratio: utils/images.py)
before it is decoded, and a connection idle for `idle_timeout` seconds is dropped.
"""

import base64
import html
import io
import re
import tempfile
import threading
from email.parser import BytesParser
from email.policy import default as email_policy
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from PIL import Image

from utils.images import ImageReadError, read_rgb
from utils.inference.trained_model import load_generators
from utils.inference.translation import NonFiniteOutputError, translate_at_own_size

MAX_UPLOAD_BYTES = 10 * 2**20   # 10 MiB: a phone photo
MAX_PIXELS = 40_000_000         # refused before decoding (decompression bombs)
DEFAULT_MAX_SIDE = 512          # the page answers in seconds on a laptop CPU
DRAIN_LIMIT = 64 * 2**20        # an oversize upload is read and discarded up to this, then the connection closes
MAX_FORM_PARTS = 10             # the form has one field; 120,000 parts once kept the parser busy 132 s
IDLE_TIMEOUT_S = 30             # a connection that sends nothing for this long is closed (it holds a thread)
COLUMNS = (("AtoB", "A &rarr; B (g_AB)"), ("AtoB,BtoA", "A &rarr; B &rarr; A (cycled back)"),
           ("BtoA", "B &rarr; A (g_BA)"), ("BtoA,AtoB", "B &rarr; A &rarr; B (cycled back)"))


class Translator:
    """Every model's generators, loaded once; `translate` runs one photo through all of them."""

    def __init__(self, sources, max_side=DEFAULT_MAX_SIDE, max_bytes=MAX_UPLOAD_BYTES):
        pairs = [source if isinstance(source, tuple) else (Path(source).name, source) for source in sources]
        self.models = [(label, load_generators(source)) for label, source in pairs]
        self.max_side, self.max_bytes = max_side, max_bytes
        self.max_bytes_text = _size_text(max_bytes)
        self._lock = threading.Lock()  # one translation at a time: two would only share the same cores

    def translate(self, image):
        """uint8 (h, w, 3) -> [(label, {column key: uint8 (h, w, c)})], columns as COLUMNS."""
        rows = []
        with self._lock:
            for label, model in self.models:
                if model.channels == 1:
                    source = image.mean(axis=-1, keepdims=True).round().astype("uint8")
                else:
                    source = image
                cells = {}
                for key, _ in COLUMNS:
                    out = source
                    for direction in key.split(","):
                        out = translate_at_own_size(model.generator(direction), out, model.size_multiple,
                                                    self.max_side)
                    cells[key] = out
                rows.append((label, cells))
        return rows


def _size_text(n):
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 1024:.0f} KiB"


def _png_data_uri(image):
    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}h1{font-size:1.4em}
.message{padding:.6em 1em;border-radius:6px;margin:1em 0}.error{background:#fde8e8;border:1px solid #e0a0a0}
.note{background:#eef5ff;border:1px solid #a8c4ea}form{border:2px dashed #999;padding:1em;border-radius:8px;
display:inline-block}table{border-collapse:collapse;margin-top:1em}td,th{padding:4px 6px;text-align:center;
vertical-align:top}th{font-weight:600;font-size:.9em}td.label{text-align:left;max-width:14em;font-size:.9em}
img{max-width:200px;max-height:200px;image-rendering:auto}small{color:#666}"""


def render_page(translator, message=None, error=False, photo=None, rows=None, filename=None):
    """The whole page as HTML: the upload form, a message, and the photo with every model's translations."""
    models = "".join(f"<li>{html.escape(label)} <small>({m.config.generator_type}, trained at "
                     f"{m.config.input_dim[0]} px)</small></li>" for label, m in translator.models)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>CycleGAN classroom page</title>"
             f"<style>{STYLE}</style></head><body><h1>CycleGAN: translate a photo both ways</h1>",
             f"<p>Models:</p><ul>{models}</ul>",
             "<form method='post' action='/translate' enctype='multipart/form-data'>"
             "<input type='file' name='photo' accept='image/*'> <button type='submit'>Translate</button>"
             f"<br><small>Any image up to {translator.max_bytes_text}; translated at its own size "
             f"(longer side capped at {translator.max_side} px).</small></form>"]
    if message:
        parts.append(f"<div class='message {'error' if error else 'note'}'>{html.escape(message)}</div>")
    if photo is not None:
        h, w = photo.shape[:2]
        parts.append(f"<p><b>{html.escape(filename or 'photo')}</b> ({w} x {h} px)<br>"
                     f"<img src='{_png_data_uri(photo)}' alt='the uploaded photo'></p>")
        header = "".join(f"<th>{title}</th>" for _, title in COLUMNS)
        parts.append(f"<table><tr><th>model</th>{header}</tr>")
        for label, cells in rows:
            images = "".join(f"<td><img src='{_png_data_uri(cells[key])}' alt='{key}'></td>" for key, _ in COLUMNS)
            parts.append(f"<tr><td class='label'>{html.escape(label)}</td>{images}</tr>")
        parts.append("</table><p><small>A &rarr; B &rarr; A should give the photo back (cycle consistency, "
                     "paper eq. 2); B &rarr; A on an A photo shows the identity term at work.</small></p>")
    parts.append("</body></html>")
    return "".join(parts)


def _form_parts(content_type, body):
    """How many parts the multipart body holds, counted by its boundary (None: no boundary given)."""
    found = re.search(r'boundary="?([^";]+)"?', content_type)
    return body.count(b"--" + found.group(1).encode("latin-1")) - 1 if found else None


def _upload(content_type, body):
    """(file name, bytes) of the form field 'photo' in a multipart/form-data body; (None, None) if absent."""
    message = BytesParser(policy=email_policy).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    if not message.is_multipart():
        return None, None
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "photo" and part.get_filename():
            return part.get_filename(), part.get_payload(decode=True) or b""
    return None, None


class PageHandler(BaseHTTPRequestHandler):
    """GET / shows the form; POST /translate answers with the translations or a message."""

    server_version = "CycleGANPage/1"

    def setup(self):   # the socket's timeout: an idle connection is dropped instead of holding its thread
        self.timeout = self.server.idle_timeout
        super().setup()

    def log_message(self, format, *args):   # one short line per request, not the default's stderr noise
        if self.server.verbose:
            print(f"{self.address_string()} {format % args}", flush=True)

    def _send(self, status, page, close=False):
        data = page.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def _refuse(self, status, message, close=False):
        self._send(status, render_page(self.server.translator, message, error=True), close=close)

    def do_GET(self):
        if self.path.split("?")[0] != "/":
            return self._refuse(HTTPStatus.NOT_FOUND, f"No page at {self.path}: the page is at /.")
        self._send(HTTPStatus.OK, render_page(self.server.translator))

    def do_POST(self):
        translator = self.server.translator
        if self.path != "/translate":
            return self._refuse(HTTPStatus.NOT_FOUND, f"No form at {self.path}: upload on the page at /.")
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            length = -1
        if length < 0:   # read nothing: a stream of unknown length could be endless
            return self._refuse(HTTPStatus.BAD_REQUEST, "The upload did not say its size (Content-Length); "
                                "use the form.", close=True)
        if length > translator.max_bytes:
            drain = length <= DRAIN_LIMIT   # read it away, so the browser gets the answer instead of a reset
            left = length if drain else 0
            while left > 0:
                chunk = self.rfile.read(min(left, 2**20))
                left = left - len(chunk) if chunk else 0
            return self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                f"The upload is {_size_text(length)}: over the limit of "
                                f"{translator.max_bytes_text}. Choose a smaller photo.", close=not drain)
        content_type, body = self.headers.get("Content-Type", ""), self.rfile.read(length)
        parts = _form_parts(content_type, body)
        if parts is not None and parts > MAX_FORM_PARTS:
            return self._refuse(HTTPStatus.BAD_REQUEST, f"The upload has {parts:,} form parts; the form sends one.")
        filename, data = _upload(content_type, body)
        if not data:
            return self._refuse(HTTPStatus.BAD_REQUEST, "No photo in the upload: choose an image file first.")
        with tempfile.NamedTemporaryFile(suffix=Path(filename).suffix[:10]) as tmp:
            tmp.write(data)
            tmp.flush()
            try:
                photo = read_rgb(tmp.name, max_pixels=MAX_PIXELS)
            except ImageReadError as error:
                return self._refuse(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                                    f"{filename} is not an image this page can read: {error.reason}.")
        try:
            rows = translator.translate(photo)
        except NonFiniteOutputError as error:
            return self._refuse(HTTPStatus.INTERNAL_SERVER_ERROR, f"{filename}: {error}.")
        h, w = photo.shape[:2]
        note = (f"Translated at {w} x {h} px." if max(h, w) <= translator.max_side else
                f"{w} x {h} px is above {translator.max_side} px: translated a scaled-down copy, scaled back up.")
        self._send(HTTPStatus.OK, render_page(translator, note, photo=photo, rows=rows, filename=filename))


def make_server(sources, host="127.0.0.1", port=8000, max_bytes=MAX_UPLOAD_BYTES, max_side=DEFAULT_MAX_SIDE,
                verbose=True, idle_timeout=IDLE_TIMEOUT_S):
    """A ThreadingHTTPServer serving the page for `sources`: model paths, or (label, path) pairs such as
    utils.evaluation.ablation.model_sources gives for an ablation folder (port 0: any free port, see server_address);
    idle_timeout: seconds a connection may send nothing before it is closed."""
    translator = Translator(sources, max_side, max_bytes)
    server = ThreadingHTTPServer((host, port), PageHandler)
    server.translator, server.verbose, server.idle_timeout = translator, verbose, idle_timeout
    return server
