"""Download an official CycleGAN dataset by name into data/<name>/{trainA,trainB,testA,testB}.

    python -m utils.datasets.download horse2zebra [--data-root data] [--base-url URL] [--force]

The archives are the CycleGAN authors' zip files, <base_url>/<name>.zip. A download never leaves
a half dataset behind: the zip goes to a temporary file, is checked (complete length, zip CRCs,
no member that would land outside the target, no symbolic link, no name that is both a file and a
folder, at most MAX_MEMBERS members, no "zip bomb": declared sizes within MAX_RATIO of the compressed
ones and within the free disk space), is extracted into a
temporary folder (never more bytes than a member declares), and only then is that folder renamed
to data/<name>. A dataset already complete is not downloaded again.
"""

import argparse
import http.client
import os
import shutil
import stat
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from tqdm import tqdm

from models.directions import DOMAINS
from utils.cli import wants_bar
from utils.runtime.disk_space import free_mb, is_disk_full

DEFAULT_BASE_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets"
KNOWN_DATASETS = ("apple2orange", "summer2winter_yosemite", "horse2zebra", "monet2photo", "cezanne2photo",
                  "ukiyoe2photo", "vangogh2photo", "maps", "cityscapes", "facades", "iphone2dslr_flower",
                  "ae_photos")
SPLITS = tuple(f"{split}{domain}" for split in ("train", "test") for domain in DOMAINS)   # trainA, trainB, testA, testB
MARKER = ".download_complete"  # written into data/<name>/ once a download is in place
CHUNK = 1 << 20
# Zip bombs: the official archives hold images, which barely compress (ratio about 1). An archive
# that declares more than MAX_RATIO times its compressed size, or a member above 1 MB that does,
# is refused before a byte is extracted, and so is one that would not fit in the free disk space.
MAX_RATIO = 20
# The largest official archive holds about 9,000 images; 100,000 empty members once made 100,005 files.
MAX_MEMBERS = 50_000
DISK_MARGIN_MB = 100   # left free after extracting


class DownloadError(RuntimeError):
    """A download that failed: network error, incomplete or unsafe archive."""


def dataset_url(name, base_url=DEFAULT_BASE_URL):
    """The archive address of dataset `name`: <base_url>/<name>.zip."""
    return f"{base_url.rstrip('/')}/{name}.zip"


def manual_steps(name, data_root, url):
    """What to do by hand when the download fails."""
    return (f"To install it by hand: download {url} in a browser (or with curl -O), unzip it, and move the "
            f"folder so that {Path(data_root) / name}/trainA, trainB, testA and testB hold the images. "
            f"If the server has moved, pass --base-url.")


def is_complete(folder):
    """True if `folder` holds a finished download (its marker) or four non-empty split folders."""
    folder = Path(folder)
    if (folder / MARKER).is_file():
        return True
    return all((folder / split).is_dir() and any((folder / split).iterdir()) for split in SPLITS)


def download_dataset(name, data_root="data", base_url=DEFAULT_BASE_URL, force=False):
    """Download and unpack dataset `name` to data_root/name; returns that path.

    Skips the download if the dataset is already complete (unless force). Raises ValueError for
    an unknown name (listing the known ones) and DownloadError when the download or the archive
    fails (naming the URL and the manual steps); in both cases data_root is left as it was.
    """
    if name not in KNOWN_DATASETS:
        raise ValueError(f"unknown dataset {name!r}; the official CycleGAN datasets are: {', '.join(KNOWN_DATASETS)}. "
                         f"For the built-in synthetic datasets use python -m utils.datasets.synthetic")
    data_root = Path(data_root)
    target = data_root / name
    if is_complete(target) and not force:
        print(f"{target} is already complete; pass --force to download it again")
        return target
    url = dataset_url(name, base_url)
    data_root.mkdir(parents=True, exist_ok=True)
    archive = Path(tempfile.mkstemp(dir=data_root, prefix=f".{name}-", suffix=".zip.part")[1])
    unpacked = Path(tempfile.mkdtemp(dir=data_root, prefix=f".{name}-unpacking-"))
    try:
        _fetch(url, archive, name, data_root)
        dataset = _extract(archive, unpacked, url, name, data_root)
        (dataset / MARKER).write_text(url + "\n")
        _replace(dataset, target)
    finally:  # also on Ctrl-C: remove the partial archive and the partial folder
        archive.unlink(missing_ok=True)
        shutil.rmtree(unpacked, ignore_errors=True)
    print(f"{name} is ready in {target}")
    return target


def _fetch(url, archive, name, data_root):
    """Stream `url` into the file `archive`, with a progress bar on a terminal or in a notebook (one line
    in a log file: utils.cli.wants_bar); check the length."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response, open(archive, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            received = 0
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"{name}.zip", file=sys.stderr,
                      disable=not wants_bar("auto")) as bar:
                if bar.disable:   # a log file: one line instead of a bar's redraws
                    size = f" ({total / 1e6:,.0f} MB)" if total else ""
                    print(f"downloading {url}{size}", file=sys.stderr, flush=True)
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise DownloadError(f"could not download {url}: {reason}\n{manual_steps(name, data_root, url)}") from None
    if total is not None and received != total:
        raise DownloadError(f"download of {url} is incomplete: {received:,} of {total:,} bytes\n"
                            f"{manual_steps(name, data_root, url)}")


def _extract(archive, unpacked, url, name, data_root):
    """Check and extract the zip into `unpacked`; returns the folder that holds trainA, ..."""
    try:
        with zipfile.ZipFile(archive) as zip_file:
            check_members(zip_file, unpacked, url, archive.stat().st_size)
            bad = zip_file.testzip()  # reads every member and checks its CRC
            if bad is not None:
                raise DownloadError(f"{url} is corrupt: the member {bad!r} fails its CRC check\n"
                                    f"{manual_steps(name, data_root, url)}")
            extract_bounded(zip_file, unpacked, url)
    except OSError as error:
        if not is_disk_full(error):
            raise DownloadError(f"cannot extract {url}: {error}\n{manual_steps(name, data_root, url)}") from None
        raise DownloadError(f"disk full while extracting {url} into {data_root}: {free_mb(data_root):.0f} MB free; "
                            f"{data_root} is left as it was") from None
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as error:
        raise DownloadError(f"{url} {_not_a_zip(archive)}: {error}\n{manual_steps(name, data_root, url)}") from None
    # The official archives hold one folder, <name>/trainA ...; accept the splits at the top too.
    for candidate in [unpacked / name, unpacked, *sorted(p for p in unpacked.iterdir() if p.is_dir())]:
        if any((candidate / split).is_dir() for split in SPLITS):
            return candidate
    raise DownloadError(f"{url} holds none of the folders {', '.join(SPLITS)}\n{manual_steps(name, data_root, url)}")


def _not_a_zip(archive):
    """Why a file that zipfile refuses is not a zip: a web page, something else, or a cut-off zip."""
    with open(archive, "rb") as f:
        start = f.read(512)
    if start.lstrip().lower().startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body")):
        return "is a web page, not a zip archive (the server answered with a page: has the address moved?)"
    if not start.startswith(b"PK"):
        return f"is not a zip archive (it starts with {start[:16]!r})"
    return "is not a complete zip archive (truncated download?)"


def check_members(zip_file, unpacked, url, archive_bytes):
    """Refuse an unsafe archive before extracting: too many members, zip slip, symbolic links, a name
    that is both a file and a folder, zip bombs, no room."""
    root = Path(unpacked).resolve()
    members = zip_file.infolist()
    if len(members) > MAX_MEMBERS:
        raise DownloadError(f"refusing to extract {url}: it holds {len(members):,} members, more than "
                            f"{MAX_MEMBERS:,} (a dataset holds a few thousand images)")
    files = {info.filename.rstrip("/") for info in members if not info.is_dir()}
    folders = {str(parent) for info in members for parent in Path(info.filename).parents if str(parent) != "."}
    folders |= {info.filename.rstrip("/") for info in members if info.is_dir()}
    clash = sorted(files & folders)
    if clash:
        raise DownloadError(f"refusing to extract {url}: {clash[0]!r} is both a file and a folder in it")
    declared = 0
    for info in members:
        destination = (root / info.filename).resolve()
        if destination != root and root not in destination.parents:
            raise DownloadError(f"refusing to extract {url}: the member {info.filename!r} would be written "
                                f"outside {unpacked} (a 'zip slip' archive)")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise DownloadError(f"refusing to extract {url}: the member {info.filename!r} is a symbolic link "
                                "(a dataset holds only images and folders)")
        if info.file_size > (1 << 20) and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise DownloadError(f"refusing to extract {url}: the member {info.filename!r} declares "
                                f"{info.file_size:,} bytes from {info.compress_size:,} compressed (more than "
                                f"{MAX_RATIO}x: a zip bomb?)")
        declared += info.file_size
    if declared > (1 << 20) and declared > MAX_RATIO * max(archive_bytes, 1):
        raise DownloadError(f"refusing to extract {url}: it declares {declared:,} bytes from a {archive_bytes:,}-byte "
                            f"archive (more than {MAX_RATIO}x: a zip bomb?)")
    free = free_mb(unpacked)
    if declared / 1e6 > free - DISK_MARGIN_MB:
        raise DownloadError(f"refusing to extract {url}: it declares {declared / 1e6:,.0f} MB and {unpacked} has "
                            f"{free:,.0f} MB free (keeping {DISK_MARGIN_MB} MB spare). Free some space or pass "
                            "--data-root on a larger disk")


def extract_bounded(zip_file, unpacked, url):
    """Extract every member, never writing more bytes than it declares (check_members trusted those)."""
    root = Path(unpacked)
    for info in zip_file.infolist():
        target = root / info.filename
        if info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        with zip_file.open(info) as source, open(target, "wb") as out:
            while chunk := source.read(CHUNK):
                written += len(chunk)
                if written > info.file_size:
                    raise DownloadError(f"refusing to extract {url}: the member {info.filename!r} holds more than "
                                        f"the {info.file_size:,} bytes it declares")
                out.write(chunk)


def _replace(new, target):
    """Move the finished folder `new` to `target`; an old target is removed only after that."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}-old-{os.getpid()}")
        os.replace(target, old)
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m utils.datasets.download", description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help=f"one of: {', '.join(KNOWN_DATASETS)}")
    parser.add_argument("--data-root", default="data", help="folder that holds the datasets (default: data)")
    parser.add_argument("--base-url", default=DEFAULT_BASE_URL, help=f"archive server (default: {DEFAULT_BASE_URL})")
    parser.add_argument("--force", action="store_true", help="download again even if the dataset is complete")
    args = parser.parse_args(argv)
    try:
        download_dataset(args.name, args.data_root, args.base_url, args.force)
    except (ValueError, DownloadError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
