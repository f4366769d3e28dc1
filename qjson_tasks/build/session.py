"""The one object a build's steps share: the target, the tools, the log and the run's id.

A Session is what every task that makes containers or images starts with; once the base and
builder images are known it becomes a BuildSession, which adds the plan. Steps take one of
these instead of the same five parameters each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from qjson_tasks.build.plan import BuildPlan
from qjson_tasks.config.model import Target
from qjson_tasks.errors import QjsonTasksError, StepError
from qjson_tasks.host.buildah import Buildah
from qjson_tasks.host.runner import Runner

Log = Callable[[str], None]
KEEP_HINT = "Rerun with --keep-on-failure to keep the working containers for debugging."


@dataclass(frozen=True)
class Session:
    target: Target
    buildah: Buildah
    runner: Runner
    log: Log
    run_id: str

    @property
    def keep(self) -> bool:
        """--keep-on-failure: the facade keeps a failed step's containers."""
        return self.buildah.keep

    @contextmanager
    def step(self, name: str, hint: bool = True) -> Iterator[None]:
        """A named step: says its name, and turns our errors into a StepError naming it
        (with the --keep-on-failure hint, unless kept already or hint is False)."""
        self.log(f"==> {name}")
        try:
            yield
        except StepError:
            raise
        except QjsonTasksError as exc:
            shown = hint and not self.keep
            raise StepError(name, exc, KEEP_HINT if shown else "") from exc

    def planned(self, plan: BuildPlan) -> BuildSession:
        return BuildSession(self.target, self.buildah, self.runner, self.log, self.run_id, plan)


@dataclass(frozen=True)
class BuildSession(Session):
    plan: BuildPlan
