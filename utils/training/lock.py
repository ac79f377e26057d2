"""One owner per run folder: a second trainer, resume or ablation on the same folder is refused.

Two processes writing one run interleave their CSV rows, GIFs and checkpoints and corrupt it without
a word. `RunLock(folder)` holds `<folder>/.lock` while a run (or an ablation) works there:

    with RunLock(run):          # RunLockedError naming the holder's PID, host and start time
        ...train...

The lock is an exclusive `fcntl.flock` on that file, so the kernel releases it when its process
dies, even by SIGKILL; the file holds the holder's PID, host and command for the error message.
It is opened without following a symbolic link (`O_NOFOLLOW`) and must be a regular file: a `.lock`
that links elsewhere would otherwise have the file it points to truncated and rewritten.
A lock file left by a dead process is taken over with a message naming that process. Where flock
does not exist (Windows), the PID in the file decides: a live PID on this host holds the lock.
"""

import json
import os
import socket
import stat
import sys
import time
from pathlib import Path

from utils.cli import UserError

try:
    import fcntl
except ImportError:   # Windows
    fcntl = None

LOCK_FILE = ".lock"


class RunLockedError(UserError):
    """Another process owns this run folder."""


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # alive, owned by another user
        return True
    return True


def read_holder(folder):
    """The lock file's {pid, host, started, command}, or None."""
    path = Path(folder) / LOCK_FILE
    try:
        return None if path.is_symlink() else json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _describe(holder):
    if not holder:
        return "another process (no details in the lock file)"
    return (f"process {holder.get('pid')} on {holder.get('host')} (started {holder.get('started')}: "
            f"{holder.get('command')})")


class RunLock:
    """Exclusive ownership of `folder` while in the `with` block (or between acquire and release)."""

    def __init__(self, folder, what="run"):
        self.folder, self.what = Path(folder), what
        self.path = self.folder / LOCK_FILE
        self._fd = None

    def acquire(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        for _ in range(10):   # retried only if the file was replaced while we opened it
            fd = self._open()
            try:
                if self._try_lock(fd) and os.path.exists(self.path) and \
                        os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                    self._take(fd)
                    return self
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
        raise RunLockedError(f"could not lock {self.path}: it keeps changing")

    def _open(self):
        """The lock file's descriptor; UserError if it is a symbolic link or not a regular file."""
        refusal = (f"{self.path} is not a regular file (a symbolic link, a folder or a device): the lock "
                   f"would write into what it points to. Delete {self.path} (only the link) and try again")
        if os.path.islink(self.path):
            raise UserError(refusal)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except OSError as error:   # ELOOP: a link made after the check above; EISDIR: a folder
            raise UserError(refusal) from error
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise UserError(refusal)
        return fd

    def _try_lock(self, fd):
        holder = read_holder(self.folder)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._refuse(holder)
            return True
        if holder and holder.get("pid") != os.getpid() and holder.get("host") == socket.gethostname() \
                and _pid_alive(int(holder.get("pid", 0))):
            self._refuse(holder)
        return True

    def _refuse(self, holder):
        raise RunLockedError(f"{self.folder} is in use by {_describe(holder)}: two processes on one "
                             f"{self.what} would corrupt it. Wait for it to finish or stop it (Ctrl-C saves "
                             f"a checkpoint); if that process is gone, delete {self.path}")

    def _take(self, fd):
        stale = read_holder(self.folder)
        if stale and stale.get("pid") != os.getpid():
            print(f"note: taking over the lock of {self.folder} left by {_describe(stale)}, which has ended",
                  file=sys.stderr, flush=True)
        holder = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)[:300]}
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(holder).encode())
        self._fd = fd

    @property
    def held(self):
        return self._fd is not None

    def release(self):
        if self._fd is None:
            return
        try:
            os.unlink(self.path)   # before unlocking: a waiting process then sees the file gone and retries
        except OSError:
            pass
        os.close(self._fd)         # closing releases the flock
        self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
