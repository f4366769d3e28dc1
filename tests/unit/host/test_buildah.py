"""The buildah facade's own behaviour: retrying a run whose chroot setup raced, and an
image listing started ahead of time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from qjson_tasks.errors import ToolError
from qjson_tasks.host.answers import ListedImage
from qjson_tasks.host.buildah import CHROOT_SETUP_RACE, RUN_ATTEMPTS, Buildah, start_image_listing
from tests.unit.fakes import FakeRunner, is_call


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


def test_a_started_listing_answers_the_first_images_call_only(tmp_path: Path) -> None:
    runner = FakeRunner(tmp_path, images={"localhost/base:1": "b" * 64})
    listing = start_image_listing(runner)
    buildah = Buildah(runner, listing=listing)

    assert buildah.images() == [ListedImage("b" * 64, ("localhost/base:1",), 0)]
    assert runner.subcommands() == ["images"]  # the started one, not a second
    runner.images["localhost/new:1"] = "n" * 64
    assert {i.image_id for i in buildah.images()} == {"b" * 64, "n" * 64}
    assert runner.subcommands() == ["images", "images"]


def test_an_intermediate_listing_does_not_take_the_started_one(tmp_path: Path) -> None:
    runner = FakeRunner(tmp_path)
    buildah = Buildah(runner, listing=start_image_listing(runner))
    buildah.images(intermediate=True)
    assert runner.calls[-1][:3] == ["buildah", "images", "--all"]


def test_a_failed_started_listing_raises_where_its_answer_is_taken(tmp_path: Path) -> None:
    runner = FakeRunner(tmp_path, fail_on=is_call("buildah", "images"))
    buildah = Buildah(runner, listing=start_image_listing(runner))
    with pytest.raises(ToolError, match="buildah images"):
        buildah.images()
