"""utils/datasets/download.py against a local HTTP server on 127.0.0.1 serving zips the tests build."""

import functools
import http.server
import io
import socket
import threading
import zipfile

import numpy as np
import pytest
from PIL import Image

from utils.datasets.download import KNOWN_DATASETS, DownloadError, download_dataset, main
from utils.datasets.loader import DataLoader


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def archive_server_tmp(tmp_path):
    """(folder served at base_url, base_url, list of requested paths); stopped after the test."""
    served = tmp_path / "server"
    served.mkdir()
    requests = []

    class Handler(_QuietHandler):
        def do_GET(self):
            requests.append(self.path)
            if self.path.startswith("/cut-connection/"):  # promise 100 kB, send 100 bytes, hang up
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                self.wfile.write(b"PK" * 50)
                return
            super().do_GET()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}/datasets", requests
    server.shutdown()
    server.server_close()


def _png_bytes(colour):
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def _dataset_zip(name, extra=()):
    """Zip bytes laid out like the official archives: <name>/{trainA,trainB,testA,testB}/*.png."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for split_index, split in enumerate(("trainA", "trainB", "testA", "testB")):
            for index in range(2):
                archive.writestr(f"{name}/{split}/{index}.png", _png_bytes((50 * split_index, 20 * index, 90)))
        for member, data in extra:
            archive.writestr(member, data)
    return buffer.getvalue()


def _serve(served, name, data):
    (served / "datasets").mkdir(exist_ok=True)
    (served / "datasets" / f"{name}.zip").write_bytes(data)


def _leftovers(data_root):
    return sorted(p.name for p in data_root.iterdir()) if data_root.exists() else []


def test_download_unpacks_into_data_name_and_the_loader_reads_it(tmp_path, archive_server_tmp):
    served, base_url, requests = archive_server_tmp
    _serve(served, "horse2zebra", _dataset_zip("horse2zebra"))
    data_root = tmp_path / "data"
    path = download_dataset("horse2zebra", data_root, base_url)
    assert path == data_root / "horse2zebra"
    assert _leftovers(data_root) == ["horse2zebra"]  # no temporary file or folder left
    for split in ("trainA", "trainB", "testA", "testB"):
        assert sorted(p.name for p in (path / split).iterdir()) == ["0.png", "1.png"]
    assert requests == ["/datasets/horse2zebra.zip"]
    loader = DataLoader("horse2zebra", (8, 8), data_root=data_root)
    assert (loader.n_A, loader.n_B) == (2, 2)


def test_a_complete_dataset_is_not_downloaded_again_unless_forced(tmp_path, archive_server_tmp):
    served, base_url, requests = archive_server_tmp
    _serve(served, "maps", _dataset_zip("maps"))
    data_root = tmp_path / "data"
    download_dataset("maps", data_root, base_url)
    download_dataset("maps", data_root, base_url)
    assert len(requests) == 1
    _serve(served, "maps", _dataset_zip("maps", extra=[("maps/trainA/2.png", _png_bytes((1, 2, 3)))]))
    download_dataset("maps", data_root, base_url, force=True)
    assert len(requests) == 2 and (data_root / "maps" / "trainA" / "2.png").is_file()
    assert _leftovers(data_root) == ["maps"]


def test_archive_without_top_folder_is_accepted(tmp_path, archive_server_tmp):
    served, base_url, _ = archive_server_tmp
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for split in ("trainA", "trainB", "testA", "testB"):
            archive.writestr(f"{split}/x.png", _png_bytes((9, 9, 9)))
    _serve(served, "facades", buffer.getvalue())
    path = download_dataset("facades", tmp_path, base_url)
    assert (path / "testB" / "x.png").is_file()


def test_truncated_zip_is_a_clear_error_and_leaves_nothing(tmp_path, archive_server_tmp):
    served, base_url, _ = archive_server_tmp
    data = _dataset_zip("apple2orange")
    _serve(served, "apple2orange", data[: len(data) // 2])
    data_root = tmp_path / "data"
    with pytest.raises(DownloadError, match="not a complete zip archive") as caught:
        download_dataset("apple2orange", data_root, base_url)
    assert f"{base_url}/apple2orange.zip" in str(caught.value) and "by hand" in str(caught.value)
    assert _leftovers(data_root) == []


def test_connection_cut_mid_download_is_a_clear_error_and_leaves_nothing(tmp_path, archive_server_tmp):
    _, base_url, _ = archive_server_tmp
    base_url = base_url.replace("/datasets", "/cut-connection")
    with pytest.raises(DownloadError, match="horse2zebra.zip") as caught:
        download_dataset("horse2zebra", tmp_path / "data", base_url)
    assert "by hand" in str(caught.value)
    assert _leftovers(tmp_path / "data") == []


def test_corrupt_member_fails_its_crc_check(tmp_path, archive_server_tmp):
    served, base_url, _ = archive_server_tmp
    data = bytearray(_dataset_zip("apple2orange"))
    start = data.index(b"\x89PNG")  # the first member's data: stored, so flip a byte inside it
    data[start + 40] ^= 0xFF
    _serve(served, "apple2orange", bytes(data))
    with pytest.raises(DownloadError, match="CRC"):
        download_dataset("apple2orange", tmp_path / "data", base_url)
    assert _leftovers(tmp_path / "data") == []


def test_zip_slip_member_is_refused(tmp_path, archive_server_tmp):
    served, base_url, _ = archive_server_tmp
    _serve(served, "cityscapes", _dataset_zip("cityscapes", extra=[("cityscapes/../../evil.txt", b"owned")]))
    data_root = tmp_path / "data"
    with pytest.raises(DownloadError, match="zip slip") as caught:
        download_dataset("cityscapes", data_root, base_url)
    assert "evil.txt" in str(caught.value)
    assert _leftovers(data_root) == []
    assert not list(tmp_path.rglob("evil.txt"))


def test_unknown_name_lists_the_known_ones(tmp_path):
    with pytest.raises(ValueError) as caught:
        download_dataset("horse2unicorn", tmp_path)
    for name in KNOWN_DATASETS:
        assert name in str(caught.value)
    assert _leftovers(tmp_path) == []


def test_connection_refused_names_the_url_and_the_manual_steps(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}/cyclegan"
    with pytest.raises(DownloadError) as caught:
        download_dataset("monet2photo", tmp_path / "data", base_url)
    message = str(caught.value)
    assert f"{base_url}/monet2photo.zip" in message and "refused" in message.lower()
    assert "by hand" in message and "trainA" in message and "--base-url" in message
    assert _leftovers(tmp_path / "data") == []


def test_missing_archive_404_is_named(tmp_path, archive_server_tmp):
    _, base_url, _ = archive_server_tmp
    with pytest.raises(DownloadError, match="404|Not Found") as caught:
        download_dataset("vangogh2photo", tmp_path, base_url)
    assert f"{base_url}/vangogh2photo.zip" in str(caught.value)


def test_command_line_reports_errors_without_a_traceback(tmp_path, archive_server_tmp, capsys):
    served, base_url, _ = archive_server_tmp
    assert main(["nope", "--data-root", str(tmp_path)]) == 1
    assert "unknown dataset 'nope'" in capsys.readouterr().err
    _serve(served, "ae_photos", _dataset_zip("ae_photos"))
    assert main(["ae_photos", "--data-root", str(tmp_path), "--base-url", base_url]) == 0
    assert np.asarray(Image.open(tmp_path / "ae_photos" / "testB" / "1.png")).shape == (8, 8, 3)
