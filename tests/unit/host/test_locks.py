"""Locks: one holder at a time across processes, released on errors and interrupts."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from qjson_tasks.errors import ToolError
from qjson_tasks.host import locks

KEY = "localhost/qjson-tasks/offline-runtime:latest"
WAITING = f"    waiting for another build holding {KEY}"
TIMEOUT = 20

# Spawned, not forked: the children start clean whatever threads pytest runs.
ctx = multiprocessing.get_context("spawn")


def _no_log(message: str) -> None:
    raise AssertionError(f"unexpected log line: {message}")


# --- child process bodies (module level so spawned children can import them) ------------------


def _count_under_lock(directory: str, rounds: int, start_together: threading.Barrier) -> None:
    counter = Path(directory) / "counter"
    marker = Path(directory) / "inside"
    start_together.wait(TIMEOUT)
    for _ in range(rounds):
        with locks.hold(KEY, lambda _line: None, Path(directory) / "locks"):
            # O_EXCL fails if the other process is inside the block at the same time.
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            value = int(counter.read_text() or "0")
            time.sleep(0.002)
            counter.write_text(str(value + 1))
            marker.unlink()


def _hold_until(directory: str, held: threading.Event, release: threading.Event) -> None:
    with locks.hold(KEY, _no_log, Path(directory)):
        held.set()
        release.wait(TIMEOUT)


def _raise_inside(
    directory: str, kind: str, left: threading.Event, finish: threading.Event
) -> None:
    error = KeyboardInterrupt if kind == "interrupt" else RuntimeError
    try:
        with locks.hold(KEY, _no_log, Path(directory)):
            raise error("step failed")
    except error:
        left.set()
    # Stay alive: the lock must be free because the block was left, not because we exited.
    finish.wait(TIMEOUT)


# --- helpers ----------------------------------------------------------------------------------


@pytest.fixture
def lock_dir(tmp_path: Path) -> Path:
    return tmp_path / "locks"


def start(target: object, *args: object) -> multiprocessing.process.BaseProcess:
    process = ctx.Process(target=target, args=args)
    process.start()
    return process


@pytest.fixture
def holder(lock_dir: Path) -> Iterator[tuple[threading.Event, threading.Event]]:
    """A second process holding KEY until the test sets the returned `release` event."""
    held, release = ctx.Event(), ctx.Event()
    process = start(_hold_until, str(lock_dir), held, release)
    assert held.wait(TIMEOUT), "the holder never got the lock"
    yield held, release
    release.set()
    process.join(TIMEOUT)
    assert process.exitcode == 0


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# --- tests ------------------------------------------------------------------------------------


def test_two_processes_never_hold_the_lock_at_once(tmp_path: Path) -> None:
    (tmp_path / "counter").write_text("0")
    rounds = 40
    barrier = ctx.Barrier(2)
    children = [start(_count_under_lock, str(tmp_path), rounds, barrier) for _ in range(2)]
    for child in children:
        child.join(TIMEOUT * 2)
        assert child.exitcode == 0, "a process found the other inside the locked block"
    assert (tmp_path / "counter").read_text() == str(2 * rounds)


def test_a_waiting_run_says_so_once_and_gets_the_lock_after_release(
    lock_dir: Path, holder: tuple[threading.Event, threading.Event]
) -> None:
    _, release = holder
    threading.Timer(0.5, release.set).start()
    lines: list[str] = []
    started = time.monotonic()
    with locks.hold(KEY, lines.append, lock_dir):
        waited = time.monotonic() - started
    assert lines == [WAITING]
    assert waited >= 0.4, "got the lock while the other process still held it"


def test_other_keys_are_not_blocked(
    lock_dir: Path, holder: tuple[threading.Event, threading.Event]
) -> None:
    with locks.hold("localhost/qjson-tasks/builder:0123456789abcdef", _no_log, lock_dir):
        pass


@pytest.mark.parametrize("kind", ["error", "interrupt"])
def test_the_lock_is_released_when_the_block_raises(lock_dir: Path, kind: str) -> None:
    left, finish = ctx.Event(), ctx.Event()
    process = start(_raise_inside, str(lock_dir), kind, left, finish)
    try:
        assert left.wait(TIMEOUT)
        assert process.is_alive()
        with locks.hold(KEY, _no_log, lock_dir):  # no waiting: _no_log fails on the message
            pass
    finally:
        finish.set()
        process.join(TIMEOUT)
    assert process.exitcode == 0


def test_an_interrupt_while_waiting_closes_the_lock_file(
    lock_dir: Path, holder: tuple[threading.Event, threading.Event]
) -> None:
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    before = open_fds()
    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    lines: list[str] = []
    try:
        with pytest.raises(KeyboardInterrupt), locks.hold(KEY, lines.append, lock_dir):
            pytest.fail("got the lock while the other process held it")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert lines == [WAITING]
    assert open_fds() == before


def test_a_killed_holder_leaves_no_stale_lock(lock_dir: Path) -> None:
    held, release = ctx.Event(), ctx.Event()
    process = start(_hold_until, str(lock_dir), held, release)
    assert held.wait(TIMEOUT)
    os.kill(process.pid, signal.SIGKILL)
    process.join(TIMEOUT)
    with locks.hold(KEY, _no_log, lock_dir):
        pass


def test_lock_files_have_safe_distinct_names() -> None:
    names = {
        locks.lock_file_name(key)
        for key in (KEY, "localhost/qjson-tasks/offline-runtime_latest", "../../etc/passwd", "")
    }
    assert len(names) == 4
    for name in names:
        assert "/" not in name and not name.startswith(".") and name.endswith(".lock")
    assert locks.lock_file_name(KEY).startswith("localhost_qjson-tasks_offline-runtime_latest-")


def test_lock_dir_is_per_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.delenv(locks.ROOTLESS_UID, raising=False)
    assert locks.lock_dir() == Path(f"/var/tmp/qjson-tasks-locks-{os.getuid()}")
    # Inside `buildah unshare` the uid is 0; the real user's uid names the directory.
    monkeypatch.setenv(locks.ROOTLESS_UID, "1234")
    assert locks.lock_dir() == Path("/var/tmp/qjson-tasks-locks-1234")
    # Whatever the job's environment says: two jobs of one user must meet in one place.
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert locks.lock_dir() == Path("/var/tmp/qjson-tasks-locks-1234")


def test_a_lock_dir_others_can_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(ToolError, match="not a private directory"):
        locks.hold(KEY, _no_log, shared).__enter__()


def test_a_symlinked_lock_file_is_not_followed(lock_dir: Path, tmp_path: Path) -> None:
    lock_dir.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    (lock_dir / locks.lock_file_name(KEY)).symlink_to(victim)
    with pytest.raises(ToolError, match="cannot open the lock"), locks.hold(KEY, _no_log, lock_dir):
        pass
    assert victim.read_text() == "keep me\n"
