"""Per-user exclusive locks, so two runs never write the same tag or unit image at once.

`hold(key, log)` takes an `fcntl.flock` on a file named after the key in a lock directory
that belongs to the user. The kernel drops the lock when the file is closed or the process
dies, so an interrupted or killed run never leaves a stale lock behind. Lock files are kept,
not deleted: removing one while another run waits on it would let a third run lock a new
file of the same name.

Not reentrant: holding the same key twice in one process waits forever.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from qjson_tasks.errors import ToolError

Log = Callable[[str], None]

# Inside `buildah unshare` the user is uid 0 of its own namespace; this names the real one.
ROOTLESS_UID = "_CONTAINERS_ROOTLESS_UID"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def real_uid() -> int:
    """The uid outside any `buildah unshare` user namespace."""
    value = os.environ.get(ROOTLESS_UID, "")
    return int(value) if value.isdigit() else os.getuid()


def user_dir(kind: str, uid: int | None = None) -> Path:
    """/var/tmp/qjson-tasks-<kind>-<uid> (the real user's by default): one fixed place per
    user, so two jobs of that user always meet there, whatever their environment
    (XDG_RUNTIME_DIR and the like) says."""
    return Path("/var/tmp") / f"qjson-tasks-{kind}-{real_uid() if uid is None else uid}"


def lock_dir() -> Path:
    return user_dir("locks")


def lock_file_name(key: str) -> str:
    """A filesystem-safe name: a readable part of the key and a hash of all of it."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    readable = _UNSAFE.sub("_", key).strip("._-")[:60]
    return f"{readable}-{digest}.lock" if readable else f"{digest}.lock"


def private_dir(directory: Path) -> Path:
    """Create the directory (0700) or check an existing one is ours and private.

    /var/tmp is shared: a directory another user made there could hold symlinks aimed at
    our files, so refuse one we don't own or others can write.
    """
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = directory.lstat()
    except OSError as exc:
        raise ToolError(f"cannot make the directory {directory}: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise ToolError(
            f"{directory} is not a private directory of this user"
            f" (owner uid {info.st_uid}, mode {stat.filemode(info.st_mode)}): remove it"
        )
    return directory


def _open(path: Path) -> int:
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        return os.open(path, flags, 0o600)
    except OSError as exc:
        raise ToolError(f"cannot open the lock file {path}: {exc.strerror}") from None


@contextmanager
def hold(key: str, log: Log, directory: Path | None = None) -> Iterator[None]:
    """Hold an exclusive lock on key for the `with` block; wait (saying so) if it is taken.

    Released on exit, on errors and on KeyboardInterrupt (also while still waiting).
    """
    path = private_dir(directory or lock_dir()) / lock_file_name(key)
    fd = _open(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise ToolError(f"cannot lock {path}: {exc.strerror}") from None
            log(f"    waiting for another build holding {key}")
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {key}\n".encode())
        yield
    finally:
        # Closing the descriptor releases the lock, whatever got us here.
        os.close(fd)
