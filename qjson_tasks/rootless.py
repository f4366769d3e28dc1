"""Rootless runs: `buildah mount` only works inside `buildah unshare` for a non-root user."""

from __future__ import annotations

import os
import pwd
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from qjson_tasks.errors import ToolError
from qjson_tasks.runner import tool_missing

USERNS_MARKER = "_CONTAINERS_USERNS_CONFIGURED"


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
    for path in files or (Path("/etc/subuid"), Path("/etc/subgid")):
        if not _has_entry(path, user, uid):
            raise ToolError(
                f"rootless buildah needs subordinate ids: user '{user}' has no entry in {path};"
                f" as root run: usermod --add-subuids 100000-165535"
                f" --add-subgids 100000-165535 {user}"
            )


def reexec_in_user_namespace() -> None:
    """Replace this process with itself run under `buildah unshare` (never returns)."""
    if shutil.which("buildah") is None:
        raise tool_missing("buildah")
    uid = os.geteuid()
    check_subids(pwd.getpwuid(uid).pw_name, uid)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp("buildah", ["buildah", "unshare", "--", sys.executable, *sys.argv])
