"""Writing a file so that a reader, a crash or a full disk never leaves half of it.

`write_atomic` writes into a temporary file beside the target (`.<name>.tmp-<pid>`, the pattern
utils/run_folder.remove_temporary_files cleans up), flushes it to the disk (`os.fsync`), renames it
over the target (`os.replace`, atomic on POSIX and Windows) and then syncs the folder, so that the
rename itself survives a power cut. The temporary file is created new (`O_EXCL`, never through a
symbolic link), and the rename replaces a link at the target rather than writing into what it points to. Until the rename the old file is untouched; on any failure the
temporary file is removed, so a full disk does not stay full of half files (models/disk_space.py).
"""

import json
import os
from pathlib import Path

from models.disk_space import remove_quietly


def write_atomic(path, data):
    """Replace the file `path` by `data` (str, written as UTF-8, or bytes) in one step; returns the path."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    remove_quietly(tmp)   # a leftover (or a link planted there) is removed, never written through
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
        with os.fdopen(os.open(tmp, flags, 0o644), "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())   # the bytes are on the disk before the name points to them
        os.replace(tmp, path)
    except BaseException as error:
        remove_quietly(tmp)
        if isinstance(error, OSError) and error.filename == str(tmp):
            error.filename = str(path)   # messages name the file being replaced, not the removed temporary one
        raise
    _sync_folder(path.parent)
    return path


def write_json(path, data):
    """Write `data` as indented JSON (and a final newline) with `write_atomic`; returns the path."""
    return write_atomic(path, json.dumps(data, indent=2) + "\n")


def _sync_folder(folder):
    """fsync a folder, making a rename in it durable; skipped where the OS cannot open a folder (Windows)
    or the file system refuses to sync one: the file itself is already on the disk."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
