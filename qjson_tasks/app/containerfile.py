"""`invoke containerfile`: the equivalent multi-stage Containerfile of a target."""

from __future__ import annotations

from pathlib import Path

from qjson_tasks.app.tools import CONTAINERFILE_DIR, PROJECT_DIR
from qjson_tasks.build.containerfile import render
from qjson_tasks.config.lockfile import checked_lock
from qjson_tasks.config.model import Target


def containerfile_path(target: Target) -> Path:
    return CONTAINERFILE_DIR / f"{target.name}.Containerfile"


def render_containerfile(target: Target) -> str:
    """The target's Containerfile; a locked git rock in it is built from the locked commit."""
    return render(target, PROJECT_DIR, checked_lock(target))
