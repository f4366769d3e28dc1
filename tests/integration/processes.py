"""`invoke` as a real process in its own process group, watched and killed as CI kills jobs.

Its output is read in a thread (so a full pipe never stalls it); the test waits for a
`==> step` line, then for the buildah process of that step among the group's members, and
sends SIGKILL to the whole group (what a CI runner's timeout does) or to the Python process
only (its buildah children then run on).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from qjson_tasks.host import runs
from tests.conftest import PROJECT_DIR

TIMEOUT = 300  # seconds; a rootless run on a loaded machine is slow
T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], what: str, timeout: float = TIMEOUT) -> T:
    deadline = time.monotonic() + timeout
    while not (found := probe()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)
    return found


def group_members(pgid: int) -> dict[int, list[str]]:
    """The live processes of a process group, with their argv."""
    members = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if fields[0] == "Z" or int(fields[2]) != pgid:
                continue
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        members[int(entry.name)] = argv
    return members


@dataclass
class Invocation:
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_until(self, probe: Callable[[], T | None], what: str) -> T:
        """What probe finds while the process still runs."""

        def running_probe() -> T | None:
            found = probe()
            assert found or self.process.poll() is None, f"ended before {what}:\n{self.output}"
            return found

        return wait_for(running_probe, f"{what}; output so far:\n{self.output}")

    def wait_for_line(self, prefix: str) -> str:
        return self.wait_until(
            lambda: next((line for line in self.lines if line.startswith(prefix)), None),
            f"a line starting {prefix!r}",
        )

    def wait_for_process(self, *words: str) -> int:
        """A process of the group whose argv has every one of words (as substrings)."""

        def probe() -> int | None:
            for pid, argv in group_members(self.pid).items():
                if all(any(word in arg for arg in argv) for word in words):
                    return pid
            return None

        return self.wait_until(probe, f"a process running {' '.join(words)}")

    def held_run_id(self) -> str | None:
        """The id of the run file this process claimed, if there is one now."""
        for path in runs.run_dir().glob("*.run"):
            try:
                if path.read_text().strip() == str(self.pid):
                    return path.stem
            except OSError:
                continue  # that run just ended
        return None

    def run_id(self) -> str:
        return self.wait_until(self.held_run_id, "its run file")

    def kill(self, group: bool = True) -> None:
        """SIGKILL to the whole group, or only to the Python process."""
        if group:
            os.killpg(self.pid, signal.SIGKILL)
        else:
            os.kill(self.pid, signal.SIGKILL)
        self.process.wait(TIMEOUT)
        if self.reader and group:
            self.reader.join(TIMEOUT)

    def wait_for_group_to_end(self) -> None:
        wait_for(lambda: not group_members(self.pid), "every process of the group to end")

    def finish(self, code: int = 0) -> str:
        self.process.wait(TIMEOUT)
        if self.reader:
            self.reader.join(TIMEOUT)
        assert self.process.returncode == code, self.output
        return self.output

    def stop(self) -> None:
        """For finalizers: nothing of the group may outlive the test."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(TIMEOUT)
        self.wait_for_group_to_end()


def invoke(*args: str) -> Invocation:
    """`python -m invoke ARGS` from the project, in a new session (its own process group)."""
    command = [sys.executable, "-m", "invoke", "--search-root", str(PROJECT_DIR), *args]
    process = subprocess.Popen(
        command,
        cwd=PROJECT_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    run = Invocation(process)

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            run.lines.append(line)

    run.reader = threading.Thread(target=read, daemon=True)
    run.reader.start()
    return run
