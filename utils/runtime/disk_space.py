"""A full disk: recognise it, say where it struck, how much room is left and what is still safe.

A write that runs out of room fails with ENOSPC (no space left), EDQUOT (quota) or EFBIG (the file
size limit of `ulimit -f`). The training loop turns any of them into one `DiskFullError` that names
the path, the free megabytes and the last good checkpoint, after the half-written temporary files
are removed (so the failure does not keep the disk full).
"""

import errno
import os
import shutil
from pathlib import Path

FULL_ERRNOS = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


class DiskFullError(OSError):
    """No room to write a file; the message names the path, the free space and what is safe."""


def is_disk_full(error):
    return isinstance(error, OSError) and error.errno in FULL_ERRNOS


def free_mb(path):
    """Free megabytes on the file system of `path` (or of its nearest existing parent)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free / 1e6


def file_size_limit():
    """The largest file this process may write in bytes (`ulimit -f`), None if unlimited."""
    try:
        import resource
    except ImportError:   # Windows
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    return None if soft == resource.RLIM_INFINITY else soft


def disk_full_error(error, path, last_checkpoint=None):
    """A DiskFullError for the failed write of `path` (the file the error names, if it names one):
    where, how much is free, what is safe."""
    path = Path(path if path is not None else error.filename)
    where = path   # a file that failed to be written does not exist: name the folder it was to go in
    while not where.exists() and where.parent != where:
        where = where.parent
    writing = f" (writing {path.relative_to(where)})" if where != path else ""
    safe = (f"the last good checkpoint is {last_checkpoint}" if last_checkpoint
            else "no checkpoint was saved yet")
    limit = file_size_limit()
    limit_note = f" (and a file size limit of {limit / 1e6:.3g} MB, ulimit -f)" if limit is not None else ""
    return DiskFullError(f"disk full at {where}{writing}: {free_mb(where):.0f} MB free{limit_note}, {safe}. "
                         "Free some space (old runs, old checkpoints) and resume")


def remove_quietly(path):
    """Delete a temporary file or folder left by a failed write; never raise."""
    path = Path(path)
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    except OSError:
        pass
