"""A server's processes, read from /proc: to make sure none outlives its stop.

Under buildah's chroot isolation a container's processes are host processes with host pids,
so a server's pid file names its master here too. Its workers are the master's children. A
process is known by its pid and its start time, so a pid the kernel gave to another process
since is never taken for it.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class Process:
    pid: int
    parent: int
    started: int  # clock ticks after boot (field 22 of /proc/PID/stat)
    state: str


def read(pid: int, proc: Path = PROC) -> Process | None:
    """The process now running as pid, None when there is none."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    # `pid (comm) state ppid ...`: comm may hold spaces and parentheses.
    fields = stat.rsplit(")", 1)[-1].split()
    return Process(pid, int(fields[1]), int(fields[19]), fields[0])


def command_line(pid: int, proc: Path = PROC) -> str:
    try:
        return (proc / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def family(pid: int, marker: str, proc: Path = PROC) -> list[Process]:
    """The process pid and its children, if its command line holds marker (a server's own
    config path: so a pid that isn't the server's host pid never counts); else none."""
    master = read(pid, proc)
    if master is None or marker not in command_line(pid, proc):
        return []
    others = (read(int(entry.name), proc) for entry in proc.iterdir() if entry.name.isdigit())
    return [master, *(child for child in others if child and child.parent == pid)]


def running(process: Process, proc: Path = PROC) -> bool:
    """Still the same process (same start time), and not a zombie."""
    now = read(process.pid, proc)
    return now is not None and now.started == process.started and now.state != "Z"


def kill(process: Process, proc: Path = PROC) -> None:
    if running(process, proc):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(process.pid, signal.SIGKILL)
