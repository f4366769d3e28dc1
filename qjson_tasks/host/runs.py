"""Run files: a run that makes containers or images holds one, locked, for as long as it lives.

`claimed()` creates `<run id>.run` in the user's run directory, holds an exclusive `flock` on
it for the `with` block and deletes it on the way out. The kernel drops the lock when the
last process holding the descriptor dies, however it dies (SIGKILL, the OOM killer, a lost
runner); the processes a run starts inherit the descriptor, so a run whose Python was killed
stays alive while its buildah children still work in its containers. A run file whose lock
can be taken therefore belongs to a dead run, and whatever carries its id is left over
(build/sweep.py removes it).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from qjson_tasks.errors import ToolError
from qjson_tasks.host.locks import private_dir, user_dir

RUN_FILE = re.compile(r"^([0-9a-f]{8})\.run$")
# A run file is written under this name, locked, then renamed: a `.run` file is never seen
# before its lock is held. One left by a run killed in between is removed once it is old.
STAGING_FILE = re.compile(r"^\.([0-9a-f]{8})\.new$")
STALE_STAGING_SECONDS = 60


def new_run_id() -> str:
    return uuid.uuid4().hex[:8]


def run_dir() -> Path:
    """/var/tmp/qjson-tasks-runs-<uid>, the real user's also inside `buildah unshare`."""
    return user_dir("runs")


@dataclass(frozen=True)
class Run:
    run_id: str
    fd: int  # inheritable: hand it to the processes the run starts (ShRunner's pass_fds)


@dataclass(frozen=True)
class DeadRun:
    run_id: str
    path: Path

    def forget(self) -> None:
        """Delete the run file, once everything of the run is gone."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _create(path: Path) -> int:
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        raise ToolError(f"cannot create the run file {path}: {exc.strerror}") from None
    os.set_inheritable(fd, True)  # the run's children keep the lock (see above)
    return fd


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


@contextmanager
def claimed(directory: Path | None = None, run_id: str | None = None) -> Iterator[Run]:
    """A new run, its file locked for the block and deleted afterwards (also on errors and
    Ctrl-C; a killed run leaves it, unlocked, for the next run to find)."""
    directory = private_dir(directory or run_dir())
    run_id = run_id or new_run_id()
    staging, path = directory / f".{run_id}.new", directory / f"{run_id}.run"
    fd = _create(staging)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new file: nobody else has it
        os.write(fd, f"{os.getpid()}\n".encode())
        os.rename(staging, path)
        yield Run(run_id, fd)
    finally:
        for name in (path, staging):
            with contextlib.suppress(FileNotFoundError):
                name.unlink()
        os.close(fd)


def _still_named(fd: int, path: Path) -> bool:
    """The locked file is still the one at path (another sweep may have deleted it)."""
    try:
        return os.path.samestat(os.fstat(fd), path.lstat())
    except FileNotFoundError:
        return False


def _lock_if_dead(path: Path) -> int | None:
    """A descriptor of a dead run's file, its lock held; None when the run is alive (or the
    file is gone, or is not a plain file of ours)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None  # deleted since the listing: that run ended or was swept
    try:
        info = os.fstat(fd)
        ours = stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid()
        if ours and _try_lock(fd) and _still_named(fd, path):
            return fd
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    return None


def _remove_stale_staging(path: Path) -> None:
    """A staging file its run never renamed: that run died before it made anything."""
    with contextlib.suppress(FileNotFoundError):
        if time.time() - path.lstat().st_mtime <= STALE_STAGING_SECONDS:
            return
        fd = _lock_if_dead(path)
        if fd is not None:
            try:
                path.unlink()
            finally:
                os.close(fd)


@contextmanager
def dead_runs(directory: Path | None = None) -> Iterator[list[DeadRun]]:
    """The runs whose file's lock could be taken, held for the block, so that a second sweep
    meanwhile sees them as alive and leaves them alone. Opens nothing but run files."""
    directory = private_dir(directory or run_dir())
    with ExitStack() as held:
        found = []
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            path = Path(entry.path)
            if STAGING_FILE.match(entry.name):
                _remove_stale_staging(path)
            match = RUN_FILE.match(entry.name)
            fd = _lock_if_dead(path) if match else None
            if match and fd is not None:
                held.callback(os.close, fd)
                found.append(DeadRun(match.group(1), path))
        yield found
