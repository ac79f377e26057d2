"""Writing a file so that a reader, a crash or a full disk never leaves half of it.

`write_atomic` writes into a temporary file beside the target (`.<name>.tmp-<pid>`, the pattern
utils/run_folder.remove_temporary_files cleans up), flushes it to the disk (`os.fsync`), renames it
over the target (`os.replace`, atomic on POSIX and Windows) and then syncs the folder, so that the
rename itself survives a power cut. The temporary file is created new (`O_EXCL`, never through a
symbolic link), and the rename replaces a link at the target rather than writing into what it points to. Until the rename the old file is untouched; on any failure the
temporary file is removed, so a full disk does not stay full of half files (utils/runtime/disk_space.py).

`OpenFolder(path)` opens a folder once (a directory descriptor) and writes each file into it by name,
the same way (a new temporary file, `O_EXCL | O_NOFOLLOW`, renamed over its name), relative to that
descriptor: a path re-pointed after the folder was opened (a link swapped to the input folder mid-run)
changes nothing, every file still lands in the folder that was opened and checked.
"""

import json
import os
from pathlib import Path

from utils.runtime.disk_space import remove_quietly


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


class OpenFolder:
    """A folder opened once; `write(name, data)` puts a file in that very folder, whatever its path names later.

    The path is resolved once and its real folder opened without following a link (`O_DIRECTORY |
    O_NOFOLLOW`). Where the OS has no directory descriptors (Windows) it falls back to `write_atomic` on
    the path. Use as a context manager, or call close().
    """

    def __init__(self, path):
        self.path = Path(path)
        self.fd = None
        if os.open in os.supports_dir_fd:   # POSIX (os.replace then takes src_dir_fd and dst_dir_fd too)
            real = os.path.realpath(self.path)
            self.fd = os.open(real, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0))

    def identities(self):
        """(st_dev, st_ino) of the opened folder and of each folder above it, up to the root."""
        if self.fd is None:
            return [(st.st_dev, st.st_ino) for st in map(os.stat, (self.path.resolve(), *self.path.resolve().parents))]
        found, current = [], os.dup(self.fd)
        try:
            for _ in range(4096):
                here = os.fstat(current)
                found.append((here.st_dev, here.st_ino))
                parent = os.open("..", os.O_RDONLY | getattr(os, "O_DIRECTORY", 0), dir_fd=current)
                there = os.fstat(parent)
                os.close(current)
                current = parent
                if (there.st_dev, there.st_ino) == found[-1]:   # the root is its own parent
                    break
        finally:
            os.close(current)
        return found

    def write(self, name, data, overwrite=True):
        """Write the file `name` (one name, no folder) in this folder from `data` (bytes or str); returns its
        path. overwrite=False: FileExistsError if the name exists by then."""
        if os.sep in name or (os.altsep and os.altsep in name) or name in ("", ".", ".."):
            raise ValueError(f"{name!r}: one file name, without a folder")
        target = self.path / name
        data = data.encode("utf-8") if isinstance(data, str) else data
        if self.fd is None:
            if not overwrite and os.path.lexists(target):
                raise FileExistsError(f"{target} exists already")
            return write_atomic(target, data)
        tmp = f".{name}.tmp-{os.getpid()}"
        try:
            os.unlink(tmp, dir_fd=self.fd)   # a leftover (or a link planted there) goes, never written through
        except FileNotFoundError:
            pass
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            with os.fdopen(os.open(tmp, flags, 0o644, dir_fd=self.fd), "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            if not overwrite and _exists(name, self.fd):
                raise FileExistsError(f"{target} exists already")
            os.replace(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except BaseException as error:
            try:
                os.unlink(tmp, dir_fd=self.fd)
            except OSError:
                pass
            if isinstance(error, OSError) and not isinstance(error, FileExistsError):
                error.filename = str(target)   # name the file being written, not the removed temporary one
            raise
        try:
            os.fsync(self.fd)
        except OSError:
            pass
        return target

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _exists(name, dir_fd):
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        return True
    except FileNotFoundError:
        return False
