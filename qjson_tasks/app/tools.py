"""What every use case shares: the project's places, the log, and the tools a task uses."""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from qjson_tasks.build.session import Session
from qjson_tasks.config.model import Target
from qjson_tasks.host.buildah import Buildah, ImageListing
from qjson_tasks.host.runner import Runner, ShRunner, require

PROJECT_DIR = Path(__file__).resolve().parents[2]
CONFIG_DIR = PROJECT_DIR / "config"
CONTAINERFILE_DIR = PROJECT_DIR / "containerfiles"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Tools:
    runner: Runner
    buildah: Buildah


def make_tools(
    target: Target | None,
    keep: bool = False,
    runner: Runner | None = None,
    listing: ImageListing | None = None,
) -> Tools:
    """The runner and buildah facade a task uses; `listing` is an image listing already
    started (see start_image_listing)."""
    if runner is None:
        require("buildah")
        runner = ShRunner()
    isolation = target.config.buildah.isolation if target else "chroot"
    return Tools(runner, Buildah(runner, isolation=isolation, keep=keep, listing=listing))


def session_for(target: Target, tools: Tools) -> Session:
    """A new run's session: its own id, which every container and temporary image carries."""
    return Session(target, tools.buildah, tools.runner, log, uuid.uuid4().hex[:8])
