"""What every use case shares: the project's places, the log, and the tools a task uses."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from qjson_tasks.build.session import Session
from qjson_tasks.build.sweep import sweep_dead_runs
from qjson_tasks.config.model import Target
from qjson_tasks.host import runs
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
    run_id: str | None = None  # a claimed run's (run_tools); else each session gets a new one

    def session_run_id(self) -> str:
        """The id a session or a verification's containers carry."""
        return self.run_id or runs.new_run_id()


def make_tools(
    target: Target | None,
    keep: bool = False,
    runner: Runner | None = None,
    listing: ImageListing | None = None,
    run: runs.Run | None = None,
) -> Tools:
    """The runner and buildah facade a task uses; `listing` is an image listing already
    started (see start_image_listing); `run` the run file the task holds (see run_tools)."""
    if runner is None:
        require("buildah")
        runner = ShRunner(pass_fds=(run.fd,) if run else ())
    isolation = target.config.buildah.isolation if target else "chroot"
    buildah = Buildah(runner, isolation=isolation, keep=keep, listing=listing)
    return Tools(runner, buildah, run.run_id if run else None)


@contextmanager
def run_tools(
    target: Target | None, keep: bool = False, listing: ImageListing | None = None
) -> Iterator[Tools]:
    """The tools of a task that makes containers or images: its run file is held for the
    block (every process it starts holds it too), and what dead runs left is swept first."""
    require("buildah")
    with runs.claimed() as run:
        tools = make_tools(target, keep, listing=listing, run=run)
        sweep_dead_runs(tools.buildah, log)
        yield tools


def session_for(target: Target, tools: Tools) -> Session:
    """A run's session: its id is what every container and temporary image carries."""
    return Session(target, tools.buildah, tools.runner, log, tools.session_run_id())
