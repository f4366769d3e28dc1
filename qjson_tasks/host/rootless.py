"""Rootless runs: `buildah mount` only works inside `buildah unshare` for a non-root user."""

from __future__ import annotations

import os
import pwd
import sys
from collections.abc import Sequence
from pathlib import Path

from qjson_tasks.errors import ToolError
from qjson_tasks.host.locks import private_dir, user_dir
from qjson_tasks.host.runner import require

USERNS_MARKER = "_CONTAINERS_USERNS_CONFIGURED"
SUBID_FILES = (Path("/etc/subuid"), Path("/etc/subgid"))


def user_tmpdir(uid: int) -> Path:
    """The TMPDIR a user's run gets inside `buildah unshare` unless it has its own.

    buildah keeps `run --mount type=cache` directories in $TMPDIR/buildah-cache (default
    /var/tmp). Inside `buildah unshare` the user is uid 0, so buildah 1.28 picks root's
    /var/tmp/buildah-cache and fails with "permission denied" once root has built there.
    """
    return user_dir("tmp", uid)


def user_authfile() -> str | None:
    """Inside `buildah unshare`: the auth file buildah reads for the real user, which
    skopeo 1.9 would not find (it looks in root's /run/containers/0 and is refused)."""
    uid = os.environ.get("_CONTAINERS_ROOTLESS_UID", "")
    if not uid.isdigit():
        return None
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{uid}"
    return f"{runtime_dir}/containers/auth.json"


def needs_user_namespace() -> bool:
    return os.geteuid() != 0 and USERNS_MARKER not in os.environ


def _has_entry(path: Path, user: str, uid: int) -> bool:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return False
    return any(line.split(":", 1)[0] in (user, str(uid)) for line in lines if ":" in line)


def check_subids(user: str, uid: int, files: Sequence[Path] | None = None) -> None:
    """Raise a ToolError saying what to add when the user has no subordinate ids."""
    for path in files or SUBID_FILES:
        if not _has_entry(path, user, uid):
            if user.isdigit():  # no passwd entry, so usermod can't help: name the lines
                fix = f"add the line '{user}:100000:65536' to /etc/subuid and /etc/subgid"
            else:
                fix = (
                    "as root run: usermod --add-subuids 100000-165535"
                    f" --add-subgids 100000-165535 {user}"
                )
            raise ToolError(
                f"rootless buildah needs subordinate ids: user '{user}' has no entry in {path};"
                f" {fix}"
            )


def reexec_in_user_namespace() -> None:
    """Replace this process with itself run under `buildah unshare` (never returns)."""
    require("buildah")
    uid = os.geteuid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:  # a uid without a passwd entry, as some CI containers run
        user = str(uid)
    check_subids(user, uid)
    if not os.environ.get("TMPDIR"):
        os.environ["TMPDIR"] = str(private_dir(user_tmpdir(uid)))
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp("buildah", ["buildah", "unshare", "--", sys.executable, *sys.argv])
