"""The one place that starts processes (through `sh`): argv in, text out, errors translated."""

from __future__ import annotations

import contextlib
import shlex
import shutil
import sys
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import sh

from qjson_tasks.errors import ToolError, ToolMissingError

TAIL_LINES = 25
BACKGROUND_LINES = 200

INSTALL_HINTS = {
    "buildah": "install it with: apt-get install -y buildah fuse-overlayfs uidmap",
    "debootstrap": "install it with: apt-get install -y debootstrap",
}


class Runner(Protocol):
    def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        stream: bool = False,
        cwd: Path | None = None,
    ) -> str:
        """Run argv (in cwd); return its stdout. Raise ToolError when it fails."""
        ...

    def start(self, argv: Sequence[str]) -> Background:
        """Start argv in the background (a server); its output is kept, not echoed."""
        ...


class Background(Protocol):
    """A process started by Runner.start."""

    argv: Sequence[str]

    def wait(self, timeout: float) -> int | None:
        """Its exit code once it has ended, None if still running after timeout seconds."""
        ...

    def output(self) -> str:
        """The last lines of its stdout and stderr so far."""
        ...

    def kill(self) -> None:
        """SIGTERM, then SIGKILL if it does not end within a few seconds."""
        ...


MAX_ARG_SHOWN = 80


def _shown(arg: str) -> str:
    # A script passed as one argument would swamp the message: show its start only.
    first = arg.splitlines()[0] if arg else arg
    if len(first) > MAX_ARG_SHOWN or first != arg:
        return first[:MAX_ARG_SHOWN] + "..."
    return arg


def format_command(argv: Sequence[str]) -> str:
    """argv as shown in an error: long scripts cut, `--env` values hidden.

    `buildah run --env NAME=VALUE` carries builder.env, where tokens for a private rock server
    live; a failing step's message ends up in CI logs, so only the names are shown.
    """
    shown = []
    after_env = False
    for arg in argv:
        if after_env and "=" in arg:
            arg = arg.split("=", 1)[0] + "=<hidden>"
        after_env = arg == "--env"
        shown.append(_shown(arg))
    return shlex.join(shown)


def tool_missing(name: str) -> ToolMissingError:
    hint = INSTALL_HINTS.get(name, f"install '{name}' and make sure it is on PATH")
    return ToolMissingError(f"'{name}' was not found on PATH; {hint}")


def require(name: str) -> None:
    """Fail before doing anything when a tool every step needs is not installed."""
    if shutil.which(name) is None:
        raise tool_missing(name)


class ShRunner:
    """Runs commands with `sh`; `stream=True` echoes output lines to stderr as they come.

    Every command gets the descriptors in pass_fds (a run file's lock, see host/runs.py); `sh`
    closes all others in the child.
    """

    def __init__(
        self, echo: Callable[[str], None] | None = None, pass_fds: Sequence[int] = ()
    ) -> None:
        self._echo = echo or (lambda line: print(line, end="", file=sys.stderr, flush=True))
        self._pass_fds = set(pass_fds)

    def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        stream: bool = False,
        cwd: Path | None = None,
    ) -> str:
        try:
            command = sh.Command(argv[0])
        except sh.CommandNotFound:
            raise tool_missing(argv[0]) from None
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        stdout: list[str] = []

        def on_out(line: str) -> None:
            stdout.append(line)
            tail.append(line)
            if stream:
                self._echo(line)

        def on_err(line: str) -> None:
            tail.append(line)
            if stream:
                self._echo(line)

        kwargs: dict[str, object] = {"_bg": True, "_bg_exc": False}
        if self._pass_fds:
            kwargs["_pass_fds"] = self._pass_fds
        if stream:
            kwargs.update(_out=on_out, _err=on_err)
        if input is not None:
            kwargs["_in"] = input
        if env is not None:
            kwargs["_env"] = dict(env)
        if cwd is not None:
            kwargs["_cwd"] = str(cwd)
        process = command(*argv[1:], **kwargs)
        try:
            process.wait()
            if not stream:
                # Collected whole: line callbacks cost ~80 ms a call, too much for queries.
                stdout.append(process.stdout.decode(errors="replace"))
        except sh.ErrorReturnCode as exc:
            if not stream:
                for captured in (exc.stdout, exc.stderr):
                    tail.extend(captured.decode(errors="replace").splitlines(keepends=True))
            raise ToolError(
                f"command failed (exit {exc.exit_code}): {format_command(argv)}",
                output="".join(tail).rstrip(),
            ) from None
        except BaseException:
            # Ctrl-C or SIGTERM while waiting: don't leave the child running behind us.
            _stop(process)
            raise
        return "".join(stdout)

    def start(self, argv: Sequence[str]) -> Background:
        try:
            command = sh.Command(argv[0])
        except sh.CommandNotFound:
            raise tool_missing(argv[0]) from None
        tail: deque[str] = deque(maxlen=BACKGROUND_LINES)
        kwargs: dict[str, object] = {"_bg": True, "_bg_exc": False}
        if self._pass_fds:
            kwargs["_pass_fds"] = self._pass_fds
        process = command(*argv[1:], _out=tail.append, _err=tail.append, **kwargs)
        return ShBackground(tuple(argv), process, tail)


@dataclass
class ShBackground:
    argv: Sequence[str]
    process: sh.RunningCommand
    tail: deque[str]

    def wait(self, timeout: float) -> int | None:
        try:
            self.process.wait(timeout=timeout)
        except sh.TimeoutException:
            return None
        except sh.ErrorReturnCode as exc:
            return int(exc.exit_code)
        return int(self.process.exit_code or 0)

    def output(self) -> str:
        return "".join(self.tail)

    def kill(self) -> None:
        _stop(self.process)


def _stop(process: sh.RunningCommand) -> None:
    try:
        process.terminate()
        process.wait(timeout=10)
    except Exception:
        with contextlib.suppress(Exception):
            process.kill()
