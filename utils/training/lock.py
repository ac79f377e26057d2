"""One owner per run folder: a second trainer, resume or ablation on the same folder is refused.

Two processes writing one run interleave their CSV rows, GIFs and checkpoints and corrupt it without
a word. `RunLock(folder)` holds `<folder>/.lock` while a run (or an ablation) works there:

    with RunLock(run):          # RunLockedError naming the holder's PID, host and start time
        ...train...

The lock is an exclusive `fcntl.flock` on that file, so the kernel releases it when its process
dies, even by SIGKILL; the file holds the holder's PID, host and command for the error message.
The holder's details are written only into a `.lock` this process has just created (`O_EXCL`), never
into one that was there: a `.lock` that is a hard link to a file elsewhere (which `O_NOFOLLOW` and
`S_ISREG` cannot tell from a lock) would otherwise have that file truncated and rewritten. A `.lock`
left by a dead process is locked, read (at most READ_LIMIT bytes: a 2 GB sparse file is not read),
unlinked (only that name: a hard link's other names keep their contents) and created anew, with a
message naming that process. A `.lock` that is a symbolic link, a folder or a device is refused.
Where flock does not exist (Windows), the PID in the file decides: a live PID on this host holds it.

The owner of a folder then writes into it, so the lock also refuses a folder that holds a symbolic link
(utils/training/run_folder.refuse_links): a run's weights/ linked to another run's would otherwise have
that run's checkpoints pruned, its `latest` moved and its losses.csv cut.
"""

import json
import os
import socket
import stat
import sys
import time
from pathlib import Path

from utils.cli import UserError
from utils.training.run_folder import refuse_links

try:
    import fcntl
except ImportError:   # Windows
    fcntl = None

LOCK_FILE = ".lock"
READ_LIMIT = 4096   # bytes of a lock file read for its holder's details (a real one has about 200)


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
    """The lock file's {pid, host, started, command}, or None (no file, a link, not a JSON object)."""
    try:
        fd = os.open(Path(folder) / LOCK_FILE,
                     os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        return _holder_in(fd)
    finally:
        os.close(fd)


def _holder_in(fd):
    """The holder dict in the open lock file `fd`, read from its start, or None."""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        holder = json.loads(os.pread(fd, READ_LIMIT, 0) if hasattr(os, "pread") else os.read(fd, READ_LIMIT))
    except (OSError, ValueError, RecursionError):
        return None
    return holder if isinstance(holder, dict) else None


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
        stale = None
        for _ in range(10):   # retried when the file was replaced or taken over while we opened it
            fd, created = self._open()
            try:
                locked = self._try_lock(fd) and self._still_the_file(fd)
                if locked and not created:
                    # A file that was there, now ours: its holder has ended. Its name goes (never its
                    # contents) and a new file is made, so that the details go only into our own file.
                    stale = _holder_in(fd) or stale
                    if fcntl is None:   # Windows cannot delete an open file
                        os.close(fd)
                        fd = None
                    os.unlink(self.path)
            except BaseException:
                if fd is not None:
                    os.close(fd)
                raise
            if locked and created:
                self._take(fd, stale)
                try:
                    refuse_links(self.folder)   # the owner writes here: nothing in it may lead elsewhere
                except BaseException:
                    self.release()
                    raise
                return self
            if fd is not None:
                os.close(fd)
        raise RunLockedError(f"could not lock {self.path}: it keeps changing")

    def _still_the_file(self, fd):
        try:
            return os.fstat(fd).st_ino == os.stat(self.path, follow_symlinks=False).st_ino
        except OSError:
            return False

    def _open(self):
        """(descriptor, created): a new lock file, or the regular file there already; UserError if that is a
        symbolic link, a folder or a device."""
        refusal = (f"{self.path} is not a regular file (a symbolic link, a folder or a device): the lock "
                   f"would write into what it points to. Delete {self.path} (only the link) and try again")
        nofollow = getattr(os, "O_NOFOLLOW", 0)
        for _ in range(10):
            try:
                return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | nofollow, 0o644), True
            except FileExistsError:
                pass
            except OSError as error:
                raise UserError(refusal) from error
            try:   # O_NONBLOCK: a FIFO planted there does not hang the open; it is refused below
                fd = os.open(self.path, os.O_RDONLY | nofollow | getattr(os, "O_NONBLOCK", 0))
            except FileNotFoundError:   # removed meanwhile (its holder released it): create it again
                continue
            except OSError as error:   # ELOOP: a symbolic link; EISDIR: a folder
                raise UserError(refusal) from error
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise UserError(refusal)
            return fd, False
        raise RunLockedError(f"could not lock {self.path}: it keeps changing")

    def _try_lock(self, fd):
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._refuse(_holder_in(fd))
            return True
        holder = _holder_in(fd)
        pid = holder.get("pid") if holder else None
        if isinstance(pid, int) and pid != os.getpid() and holder.get("host") == socket.gethostname() \
                and _pid_alive(pid):
            self._refuse(holder)
        return True

    def _refuse(self, holder):
        raise RunLockedError(f"{self.folder} is in use by {_describe(holder)}: two processes on one "
                             f"{self.what} would corrupt it. Wait for it to finish or stop it (Ctrl-C saves "
                             f"a checkpoint); if that process is gone, delete {self.path}")

    def _take(self, fd, stale):
        """Write this process's details into the lock file it has just created."""
        if stale and stale.get("pid") != os.getpid():
            print(f"note: taking over the lock of {self.folder} left by {_describe(stale)}, which has ended",
                  file=sys.stderr, flush=True)
        holder = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)[:300]}
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
