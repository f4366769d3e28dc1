"""Run files: locked while the run (or a process it started) lives, found dead once it is not."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from qjson_tasks.errors import ToolError
from qjson_tasks.host import locks, runs
from qjson_tasks.host.runner import ShRunner

TIMEOUT = 20
ctx = multiprocessing.get_context("spawn")
REAL_RUN_DIR = runs.run_dir  # before tests/unit/conftest.py points it at a temporary one


# --- child process bodies (module level so spawned children can import them) ------------------


def _claim_and_wait(directory: str, claimed: threading.Event) -> None:
    with runs.claimed(Path(directory), run_id="c04cc4c9"):
        claimed.set()
        time.sleep(TIMEOUT * 3)


def _claim_and_run(directory: str, pidfile: str, hand_down: bool) -> None:
    """A run whose one command outlives it: `sh` writes its pid, then sleeps."""
    with runs.claimed(Path(directory), run_id="c04cc4c9") as run:
        runner = ShRunner(pass_fds=(run.fd,) if hand_down else ())
        runner.run(["sh", "-c", f"echo $$ > {pidfile}; exec sleep {TIMEOUT * 3}"])


# --- helpers ----------------------------------------------------------------------------------


def dead_ids(directory: Path) -> list[str]:
    with runs.dead_runs(directory) as dead:
        return [run.run_id for run in dead]


def wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


def killed_run(directory: Path) -> None:
    """A run file left by a process that was SIGKILLed while it held it."""
    claimed = ctx.Event()
    child = ctx.Process(target=_claim_and_wait, args=(str(directory), claimed))
    child.start()
    assert claimed.wait(TIMEOUT)
    os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
    child.join(TIMEOUT)


# --- tests ------------------------------------------------------------------------------------


def test_a_claimed_run_has_a_locked_file_named_by_its_id(run_dir: Path) -> None:
    with runs.claimed() as run:
        path = run_dir / f"{run.run_id}.run"
        assert runs.RUN_FILE.match(path.name)
        assert path.read_text() == f"{os.getpid()}\n"
        assert os.get_inheritable(run.fd), "the run's children could not hold its lock"
        assert dead_ids(run_dir) == []
    assert list(run_dir.iterdir()) == [], "the run file outlived its run"


def test_the_run_file_goes_on_errors_and_interrupts(run_dir: Path) -> None:
    for error in (RuntimeError, KeyboardInterrupt):
        with pytest.raises(error), runs.claimed():
            raise error("step failed")
    assert list(run_dir.iterdir()) == []


def test_a_killed_run_is_dead_and_forgotten_once_swept(run_dir: Path) -> None:
    killed_run(run_dir)
    with runs.dead_runs(run_dir) as dead:
        assert [run.run_id for run in dead] == ["c04cc4c9"]
        # While one sweep holds it, the dead run looks alive to a second one.
        assert dead_ids(run_dir) == []
        dead[0].forget()
    assert list(run_dir.iterdir()) == []


def test_a_live_run_in_another_process_is_not_dead(run_dir: Path) -> None:
    claimed = ctx.Event()
    child = ctx.Process(target=_claim_and_wait, args=(str(run_dir), claimed))
    child.start()
    try:
        assert claimed.wait(TIMEOUT)
        assert dead_ids(run_dir) == []
        assert (run_dir / "c04cc4c9.run").exists()
    finally:
        child.kill()
        child.join(TIMEOUT)


@pytest.mark.parametrize("hand_down", [True, False], ids=["passed to children", "not passed"])
def test_a_run_lives_while_a_process_it_started_does(
    run_dir: Path, tmp_path: Path, hand_down: bool
) -> None:
    pidfile = tmp_path / "pid"
    child = ctx.Process(target=_claim_and_run, args=(str(run_dir), str(pidfile), hand_down))
    child.start()
    wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), "the command to start")
    orphan = int(pidfile.read_text())
    try:
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
        child.join(TIMEOUT)
        # The orphaned command still works in the run's containers: the run is not dead.
        assert dead_ids(run_dir) == ([] if hand_down else ["c04cc4c9"])
    finally:
        os.kill(orphan, signal.SIGKILL)
    wait_for(lambda: gone(orphan), "the orphaned command to go")
    assert dead_ids(run_dir) == ["c04cc4c9"]


def test_files_that_are_not_run_files_are_left_alone(run_dir: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.run"
    elsewhere.write_text("")
    (run_dir / "notes.txt").write_text("")
    (run_dir / "C04CC4C9.run").write_text("")
    (run_dir / "c04cc4c9.run.bak").write_text("")
    (run_dir / "0123abcd.run").symlink_to(elsewhere)
    (run_dir / "deadbeef.run").mkdir()
    before = sorted(p.name for p in run_dir.iterdir())
    assert dead_ids(run_dir) == []
    assert sorted(p.name for p in run_dir.iterdir()) == before


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_run_file_of_another_user_is_not_ours(run_dir: Path) -> None:
    theirs = run_dir / "c04cc4c9.run"
    theirs.write_text("4242\n")
    os.chown(theirs, 1001, 1001)
    assert dead_ids(run_dir) == []
    assert theirs.exists()


def test_a_staging_file_is_removed_only_once_stale(run_dir: Path) -> None:
    fresh, stale = run_dir / ".0123abcd.new", run_dir / ".c04cc4c9.new"
    fresh.write_text("")
    stale.write_text("")
    old = time.time() - runs.STALE_STAGING_SECONDS - 5
    os.utime(stale, (old, old))
    assert dead_ids(run_dir) == []
    assert fresh.exists() and not stale.exists()


def test_the_run_dir_is_the_real_users_and_private(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(locks.ROOTLESS_UID, raising=False)
    assert REAL_RUN_DIR() == Path(f"/var/tmp/qjson-tasks-runs-{os.getuid()}")
    # Inside `buildah unshare` the uid is 0; the real user's uid names the directory.
    monkeypatch.setenv(locks.ROOTLESS_UID, "1234")
    assert REAL_RUN_DIR() == Path("/var/tmp/qjson-tasks-runs-1234")
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(ToolError, match="is not a private directory"), runs.claimed(shared):
        pass
    with pytest.raises(ToolError, match="is not a private directory"), runs.dead_runs(shared):
        pass
