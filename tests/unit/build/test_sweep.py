"""The sweep of what dead runs left, with the recording fake runner (no buildah).

A dead run is a run file nobody holds a lock on; a live one is held with runs.claimed. The
fake's `kill_on` stops a build the way SIGKILL does: at one call, with no cleanup after it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from qjson_tasks.build import names, pipeline
from qjson_tasks.build.names import UNIT_REPOSITORY
from qjson_tasks.build.pipeline import BuildOptions
from qjson_tasks.build.session import Session
from qjson_tasks.build.sweep import Leftovers, summary, sweep_dead_runs
from qjson_tasks.config.model import Target
from qjson_tasks.host import runs
from qjson_tasks.host.buildah import Buildah
from tests.unit.build.test_pipeline import OUTPUT, Outcome, make_runner, mount_root, target
from tests.unit.fakes import Argv, FakeRunner, Killed, is_call

__all__ = ["mount_root", "target"]  # fixtures shared with test_pipeline

DEAD = "c04cc4c9"
LIVE = "1a2b3c4d"
TEMPORARY = f"{UNIT_REPOSITORY}/unverified:offline-{DEAD}"


def dead_run(run_dir: Path, run_id: str = DEAD) -> Path:
    """The file a SIGKILLed run leaves: there, and nobody holds its lock."""
    path = run_dir / f"{run_id}.run"
    path.write_text("4242\n")
    return path


def fake(tmp_path: Path, containers: set[str], images: dict[str, str]) -> FakeRunner:
    return FakeRunner(tmp_path, images=dict(images), live_containers=set(containers))


def sweep(runner: FakeRunner) -> tuple[list[Leftovers], list[str]]:
    lines: list[str] = []
    return sweep_dead_runs(Buildah(runner), lines.append), lines


def test_without_a_dead_run_buildah_is_not_asked_anything(run_dir: Path, tmp_path: Path) -> None:
    runner = fake(tmp_path, {f"qjt-offline-setup-{LIVE}"}, {})
    with runs.claimed(run_id=LIVE):
        assert sweep(runner) == ([], [])
    assert runner.calls == []


def test_a_dead_runs_containers_are_unmounted_and_removed_then_its_image(
    run_dir: Path, tmp_path: Path
) -> None:
    path = dead_run(run_dir)
    verify = f"qjt-verify-{DEAD}"
    runner = fake(tmp_path, {verify}, {TEMPORARY: "new-id"})
    runner.live_mounts.add(verify)

    swept, lines = sweep(runner)

    assert runner.calls == [
        ["buildah", "containers", "--json"],
        ["buildah", "images", "--json", "--no-trunc"],
        ["buildah", "mount", "--json"],
        ["buildah", "umount", verify],
        ["buildah", "rm", verify],
        ["buildah", "rmi", TEMPORARY],
    ]
    assert swept == [Leftovers(DEAD, (verify,), (TEMPORARY,))]
    assert lines == [f"removed 1 container and 1 image left by an interrupted run ({DEAD})"]
    assert runner.left_behind() == (set(), set()) and TEMPORARY not in runner.images
    assert not path.exists()


def test_a_dead_runs_temporary_storage_is_emptied_and_removed(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A publish killed during its remote check leaves the storage it pulled into."""
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    dead_run(run_dir)
    mine = tmp_path / "tmp" / f"qjt-storage-{DEAD}-x1"
    live = tmp_path / "tmp" / f"qjt-storage-{LIVE}-x2"
    foreign = tmp_path / "tmp" / "qjt-storage-other"
    for directory in (mine, live, foreign):
        (directory / "root").mkdir(parents=True)
    runner = fake(tmp_path, set(), {})

    with runs.claimed(run_id=LIVE):
        swept, lines = sweep(runner)

    root, runroot = mine / "root", mine / "runroot"
    storage_flags = ["--root", str(root), "--runroot", str(runroot), "--storage-driver", ""]
    assert ["buildah", *storage_flags, "rm", "--all"] in runner.calls
    assert ["buildah", *storage_flags, "rmi", "--all", "--force"] in runner.calls
    assert swept == [Leftovers(DEAD, storages=(str(mine),))]
    assert lines == [f"removed 1 temporary directory left by an interrupted run ({DEAD})"]
    assert not mine.exists() and live.is_dir() and foreign.is_dir()


def test_only_the_dead_runs_own_names_are_touched(run_dir: Path, tmp_path: Path) -> None:
    dead_run(run_dir)
    ours = {f"qjt-offline-setup-{DEAD}", f"qjt-verify-base-{DEAD}"}
    others = {
        f"qjt-offline-setup-{LIVE}",  # a live run's
        "qjt-offline-setup-99999999",  # an id with no run file here: another user's, a test's
        f"qjt-{DEAD}",  # no words before the id: not a name a run gives
        f"other-tool-{DEAD}",
        f"qjt-offline-setup-{DEAD}x",
        "busy_container",
    }
    foreign_images = {
        f"{UNIT_REPOSITORY}/unverified:offline-{LIVE}": "b",
        f"{UNIT_REPOSITORY}/runtime:{DEAD}": "c",
        f"localhost/other/unverified:offline-{DEAD}": "d",
        f"localhost/qjson-tasks/offline-runtime:{DEAD}": "e",
    }
    runner = fake(tmp_path, ours | others, {TEMPORARY: "a", **foreign_images})
    with runs.claimed(run_id=LIVE):
        swept, lines = sweep(runner)
    assert runner.live_containers == others
    assert set(runner.images) == set(foreign_images)
    assert swept == [Leftovers(DEAD, tuple(sorted(ours)), (TEMPORARY,))]
    assert lines == [f"removed 2 containers and 1 image left by an interrupted run ({DEAD})"]


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_run_file_of_another_user_is_never_swept(run_dir: Path, tmp_path: Path) -> None:
    os.chown(dead_run(run_dir), 1001, 1001)
    runner = fake(tmp_path, {f"qjt-verify-{DEAD}"}, {TEMPORARY: "a"})
    assert sweep(runner) == ([], [])
    assert runner.calls == []


def test_the_line_names_every_kind_removed() -> None:
    everything = Leftovers(DEAD, ("a",), ("b", "c"), ("d",))
    assert summary([everything]) == (
        "removed 1 container, 2 images and 1 temporary directory left by an interrupted run"
        f" ({DEAD})"
    )


@pytest.mark.parametrize(
    ("removed", "line"),
    [
        ([Leftovers("c04cc4c9", ("a",), ("b",))], "removed 1 container and 1 image"),
        ([Leftovers("c04cc4c9", ("a", "b"))], "removed 2 containers"),
        ([Leftovers("c04cc4c9", (), ("b",))], "removed 1 image"),
        ([Leftovers("c04cc4c9", (), ("b", "c"))], "removed 2 images"),
    ],
    ids=["one of each", "containers only", "one image", "images"],
)
def test_the_line_says_what_was_removed(removed: list[Leftovers], line: str) -> None:
    assert summary(removed) == f"{line} left by an interrupted run (c04cc4c9)"


def test_several_dead_runs_are_one_line(run_dir: Path, tmp_path: Path) -> None:
    other = "0badf00d"
    for run_id in (DEAD, other, "00000000"):  # the last one left nothing
        dead_run(run_dir, run_id)
    containers = {f"qjt-offline-builder-{DEAD}", f"qjt-offline-tree-{DEAD}", f"qjt-base-{other}"}
    runner = fake(tmp_path, containers, {f"{UNIT_REPOSITORY}/unverified:multi-{other}": "a"})
    swept, lines = sweep(runner)
    assert [each.run_id for each in swept] == [other, DEAD]
    assert lines == [
        f"removed 3 containers and 1 image left by 2 interrupted runs ({other}, {DEAD})"
    ]
    assert list(run_dir.iterdir()) == []


def test_a_dead_run_that_left_nothing_is_forgotten_quietly(run_dir: Path, tmp_path: Path) -> None:
    path = dead_run(run_dir)
    runner = fake(tmp_path, set(), {})
    assert sweep(runner) == ([], [])
    assert not path.exists()
    assert "mount" not in runner.subcommands()  # no container of the run, nothing to unmount


def test_what_cannot_be_removed_is_a_warning_and_tried_again_later(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = dead_run(run_dir)
    setup = f"qjt-offline-setup-{DEAD}"
    runner = fake(tmp_path, {setup}, {TEMPORARY: "a"})
    runner.fail_on = is_call("buildah", "rm")

    swept, lines = sweep(runner)

    assert "WARNING cleanup: command failed (exit 1): buildah rm" in capsys.readouterr().err
    assert swept == [Leftovers(DEAD, (), (TEMPORARY,))]
    assert lines == [f"removed 1 image left by an interrupted run ({DEAD})"]
    assert path.exists(), "the run was forgotten with one of its containers still there"
    runner.fail_on = None
    _, lines = sweep(runner)
    assert lines == [f"removed 1 container left by an interrupted run ({DEAD})"]
    assert not path.exists() and runner.live_containers == set()


def test_a_failing_listing_is_a_warning_and_removes_nothing(run_dir: Path, tmp_path: Path) -> None:
    path = dead_run(run_dir)
    runner = fake(tmp_path, {f"qjt-verify-{DEAD}"}, {TEMPORARY: "a"})
    runner.fail_on = is_call("buildah", "images")
    swept, lines = sweep(runner)
    assert swept == []
    assert len(lines) == 1 and lines[0].startswith("WARNING cannot look for what interrupted")
    assert path.exists() and runner.live_containers == {f"qjt-verify-{DEAD}"}


def test_ctrl_c_mid_sweep_keeps_the_run_for_the_next_one(run_dir: Path, tmp_path: Path) -> None:
    path = dead_run(run_dir)
    runner = fake(tmp_path, {f"qjt-verify-{DEAD}"}, {TEMPORARY: "a"})
    runner.interrupt_on = is_call("buildah", "rm")
    with pytest.raises(KeyboardInterrupt):
        sweep(runner)
    assert path.exists()
    with runs.dead_runs() as dead:  # its lock was let go
        assert [run.run_id for run in dead] == [DEAD]


def test_every_name_a_run_gives_is_one_the_sweep_knows(target: Target) -> None:
    made = [
        names.container_name(DEAD, "offline", "setup"),
        names.container_name(DEAD, "verify"),
        names.container_name(DEAD, "verify", "base"),
        names.container_name(DEAD, "base"),
    ]
    assert made == [
        f"qjt-offline-setup-{DEAD}",
        f"qjt-verify-{DEAD}",
        f"qjt-verify-base-{DEAD}",
        f"qjt-base-{DEAD}",
    ]
    assert all(names.is_run_container(name, DEAD) for name in made)
    assert not any(names.is_run_container(name, LIVE) for name in made)
    assert names.is_run_image(names.temporary_image("offline", DEAD), DEAD)


# --- a build killed at every call it makes --------------------------------------------------


def verifying(runner: FakeRunner, run_id: str) -> Callable[[str], Outcome]:
    """A verifier that works in a container of the run, as verify_image does."""

    def verify(image_id: str) -> Outcome:
        container = names.container_name(run_id, "verify")
        runner.run(["buildah", "from", "--name", container, image_id])
        runner.run(["verify", image_id])
        runner.run(["buildah", "rm", container])
        return Outcome(True)

    return verify


def at_call(point: int) -> Callable[[Argv], bool]:
    """Kill at the point-th call (from 0)."""
    made = iter(range(point + 1))
    return lambda argv: next(made, None) == point


def build_killed_at(target: Target, runner: FakeRunner) -> bool:
    session = Session(target, Buildah(runner), runner, lambda message: None, DEAD)
    try:
        pipeline.build(session, BuildOptions(verifier=verifying(runner, DEAD)))
    except Killed:
        return True
    return False


def unit_images(runner: FakeRunner) -> set[str]:
    """The kinds of the unit images that have their name (the temporary one is no unit)."""
    units = [n for n in runner.images if n.startswith(UNIT_REPOSITORY) and "/unverified:" not in n]
    return {name.split(":")[0].rsplit("/", 1)[1] for name in units}


def completed(calls: list[Argv]) -> set[str]:
    """The units whose every step ran before the kill."""
    done = set()
    if any(is_call("buildah", "run", "apt-get", "clean")(c) for c in calls):
        done.add("builder")
    if any(is_call("buildah", "config", f"qjt-offline-tree-{DEAD}")(c) for c in calls):
        done.add("rock-tree")
    if ["verify"] in [c[:1] for c in calls]:
        done.add("runtime")
    return done


def test_a_build_killed_anywhere_leaves_no_unit_it_did_not_finish_and_nothing_unswept(
    target: Target, mount_root: Path, run_dir: Path
) -> None:
    good = make_runner(mount_root)
    assert not build_killed_at(target, good)
    total = len(good.calls)
    assert total > 30
    for point in range(total):
        runner = make_runner(mount_root, kill_on=at_call(point))
        assert build_killed_at(target, runner), point
        # A unit image is named only by the commit (or, for the runtime, the tag after the
        # verification) that ends its making: never one a later run would trust too early.
        assert unit_images(runner) <= completed(runner.calls), (point, runner.calls[-1])
        if OUTPUT in runner.images:  # the output tag moves only after the verification
            assert "runtime" in completed(runner.calls), point

        runner.killed, runner.kill_on = False, None  # the next run
        dead_run(run_dir)
        swept, lines = sweep(runner)
        assert not any(DEAD in name for name in runner.live_containers), point
        assert not any("/unverified:" in name for name in runner.images), point
        assert runner.live_mounts == set(), point
        assert lines == ([summary(swept)] if swept else []), point
        assert list(run_dir.iterdir()) == []
