"""The buildah facade's own behaviour: retrying a run whose chroot setup raced."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from qjson_tasks.buildah import CHROOT_SETUP_RACE, RUN_ATTEMPTS, Buildah
from qjson_tasks.errors import ToolError


class FlakyRunner:
    def __init__(self, failures: int, message: str = CHROOT_SETUP_RACE) -> None:
        self.failures = failures
        self.message = message
        self.calls: list[list[str]] = []

    def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> str:
        self.calls.append(list(argv))
        if len(self.calls) <= self.failures:
            raise ToolError("command failed (exit 1): buildah run ...", output=self.message)
        return "ran\n"


def test_a_run_whose_chroot_setup_raced_is_tried_again() -> None:
    runner = FlakyRunner(failures=RUN_ATTEMPTS - 1)
    assert Buildah(runner).run("ctr", ["true"]) == "ran\n"
    assert len(runner.calls) == RUN_ATTEMPTS
    assert all(call == runner.calls[0] for call in runner.calls)


def test_a_run_that_keeps_racing_fails_after_the_last_attempt() -> None:
    runner = FlakyRunner(failures=RUN_ATTEMPTS)
    with pytest.raises(ToolError, match="sealing memfd"):
        Buildah(runner).run("ctr", ["true"])
    assert len(runner.calls) == RUN_ATTEMPTS


def test_any_other_failure_is_not_retried() -> None:
    runner = FlakyRunner(failures=1, message="error: could not compile `qjson-demo`")
    with pytest.raises(ToolError, match="could not compile"):
        Buildah(runner).run("ctr", ["cargo", "build"])
    assert len(runner.calls) == 1
