"""The gateway check: qjson loaded where gateway users run it, in an nginx Lua worker.

In a throwaway container from the image (named for the run), as the image's user, nginx
starts with the check's nginx.conf (nginx_conf.py) on a free port of 127.0.0.1; the host
POSTs the target's JSON body and compares the answer. nginx is stopped with `nginx -s quit`
in a second `buildah run` (a signal to the first would orphan the worker, which keeps the
port), then nothing of it may still run or listen. When the answer is wrong, the finding
shows the tail of nginx's error log (nginx runs with `-e`, so the log also holds the
configuration errors Debian's nginx would print only on stderr) and of its stderr, and which
of the rock's libraries the worker user can't read: qjson's loader then reports only the
last path it tried ("No such file or directory"), never "Permission denied".
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from qjson_tasks.build.names import container_name
from qjson_tasks.config.model import Gateway, Target
from qjson_tasks.errors import ToolError
from qjson_tasks.host import loopback, processes
from qjson_tasks.host.buildah import Buildah
from qjson_tasks.host.runner import Background
from qjson_tasks.verify import nginx_conf
from qjson_tasks.verify.report import CheckResult
from qjson_tasks.verify.rootfs import resolve_in_root

NAME = "gateway"
BIND_ATTEMPTS = 4
STOP_SECONDS = 10.0
POLL_SECONDS = 0.05
# Prints one line per library the user can't use; `-e` also fails for a file in a directory
# the user can't search.
_PROBE = (
    'for f do if [ ! -e "$f" ]; then echo "missing $f";'
    ' elif [ ! -r "$f" ]; then echo "unreadable $f"; fi; done'
)


@dataclass
class Served:
    """What one start of nginx gave."""

    port: int
    ready: bool = False  # nginx wrote its pid file: it has bound the port
    exit_code: int | None = None  # when it ended before it was ready
    answer: loopback.Answer | None = None
    error: str = ""  # why there is no answer
    output: str = ""  # nginx's stdout and stderr
    log: str = ""  # the error log
    leftovers: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Site:
    """The gateway container and what runs in it."""

    buildah: Buildah
    container: str
    root: Path  # the container's mounted root
    gateway: Gateway
    user: str  # the image's user: nginx's master runs as it

    def host(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def read(self, path: str) -> str:
        """A file nginx wrote, its links resolved inside the image, never on the host."""
        host = resolve_in_root(self.root, PurePosixPath(path))
        try:
            return host.read_text(encoding="utf-8", errors="replace") if host else ""
        except OSError:
            return ""

    def write(self, path: str, text: str) -> None:
        """A new file, never through a link the image holds under that name."""
        host = self.host(path)
        host.unlink(missing_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        with os.fdopen(os.open(host, flags, 0o644), "w", encoding="utf-8") as stream:
            stream.write(text)

    def nginx(self, *args: str) -> list[str]:
        # -e: what nginx says before it reads error_log (a configuration error) goes to the
        # same file, whatever error log path the binary was built with.
        return [self.gateway.nginx, "-e", nginx_conf.ERROR_LOG, "-c", nginx_conf.CONF, *args]


def worker_user(gateway: Gateway, user: str) -> str:
    """Who nginx's workers run as: the image's user, unless a root master switches."""
    if user not in ("root", "0", "0:0"):
        return user
    return gateway.worker_user or "nobody"


def gateway_checks(
    buildah: Buildah, image: str, run_id: str, target: Target, user: str, rocks: Sequence[Any]
) -> list[CheckResult]:
    """The gateway check of a target that configures one (none otherwise); rocks are the
    installed rocks (verify.rock_files), whose libraries the worker must be able to read."""
    gateway, snippet = target.config.verify.gateway, nginx_conf.gateway_snippet(target)
    if gateway is None or snippet is None:
        return []
    libraries = [f.tree_path for rock in rocks for f in rock.files if f.tree_path.suffix == ".so"]
    return [check_gateway(buildah, image, run_id, gateway, snippet, user, libraries)]


def check_gateway(
    buildah: Buildah,
    image: str,
    run_id: str,
    gateway: Gateway,
    snippet: str,
    user: str,
    libraries: Sequence[PurePosixPath],
) -> CheckResult:
    name = container_name(run_id, "verify", NAME)
    with buildah.container(image, name) as ctr, buildah.mounted(ctr) as root:
        site = Site(buildah, ctr, root, gateway, user)
        run_dir = site.host(nginx_conf.RUN_DIR)
        if root.resolve() not in run_dir.resolve().parents:
            # Written from the host: a link in the image must not lead out of it.
            detail = f"{nginx_conf.RUN_DIR} in the image is a link out of the image"
            return CheckResult(NAME, False, detail, (detail,))
        run_dir.mkdir(parents=True, exist_ok=True)
        # Sticky, like /tmp: nginx (the image's user) writes here and can't replace the conf.
        run_dir.chmod(0o1777)
        served = serve_with_retries(site, snippet)
        result = judge(site, served)
        if result.passed:
            return result
        return with_unusable_libraries(site, result, libraries)


def serve_with_retries(site: Site, snippet: str) -> Served:
    """Serve once on a free port, again on another when the port was taken meanwhile."""
    user_line = nginx_conf.user_directive(site.gateway.worker_user, site.user)
    for _ in range(BIND_ATTEMPTS):
        port = loopback.free_port()
        site.write(
            nginx_conf.CONF, nginx_conf.render(snippet, port, site.gateway.modules, user_line)
        )
        for leftover in (nginx_conf.PID_FILE, nginx_conf.ERROR_LOG):
            site.host(leftover).unlink(missing_ok=True)
        served = serve_once(site, port)
        if served.ready or not nginx_conf.bind_failed(served.output + served.log, port):
            return served
    return served


def serve_once(site: Site, port: int) -> Served:
    served = Served(port)
    server = site.buildah.start_run(site.container, site.nginx(), user=site.user)
    pid = None
    try:
        pid = wait_ready(site, server)
        served.ready = pid is not None
        if pid is None:
            served.exit_code = server.wait(POLL_SECONDS)
        else:
            served.answer, served.error = ask(site.gateway, port)
    finally:
        # Also on Ctrl-C: the server must not outlive the check.
        served.leftovers = stop(site, server, port if served.ready else None, pid)
        served.output = server.output()
        served.log = site.read(nginx_conf.ERROR_LOG)
    return served


def wait_ready(site: Site, server: Background) -> int | None:
    """nginx's pid once it has written its pid file (after binding its port: so the port
    is this nginx's, not another process's), None if it ended or the timeout passed."""
    deadline = time.monotonic() + site.gateway.timeout
    while time.monotonic() < deadline:
        text = site.read(nginx_conf.PID_FILE).strip()
        if text.isdigit():
            return int(text)
        if server.wait(POLL_SECONDS) is not None:
            return None
    return None


def ask(gateway: Gateway, port: int) -> tuple[loopback.Answer | None, str]:
    from http.client import HTTPException

    try:
        answer = loopback.post(
            port, gateway.path, gateway.body, "application/json", gateway.timeout
        )
    except (OSError, HTTPException) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    return answer, ""


def stop(site: Site, server: Background, port: int | None, pid: int | None) -> list[str]:
    """Stop nginx (quit, then kill); what of it still ran or listened afterwards, if
    anything. port and pid are None when nginx never bound the port or wrote its pid."""
    # Its master and workers: a kill of `buildah run` would orphan the workers.
    family = processes.family(pid, nginx_conf.CONF) if pid is not None else []
    left = []
    if server.wait(0) is None:
        try:
            site.buildah.run(site.container, site.nginx("-s", "quit"), user=site.user, stream=False)
        except ToolError as exc:
            left.append(f"`nginx -s quit` failed: {exc}")
        if server.wait(STOP_SECONDS) is None:
            left.append(f"nginx had not stopped {STOP_SECONDS:g} s after `nginx -s quit`")
            server.kill()
    for process in family:
        if processes.running(process):
            processes.kill(process)
            left.append(f"nginx process {process.pid} still ran after the stop (killed)")
    if port is not None and still_listening(port):
        left.append(f"127.0.0.1:{port} was still listening after nginx stopped")
    return left


def still_listening(port: int, grace: float = 1.0) -> bool:
    """Whether the port is still taken after a grace period (a killed process's sockets
    close as it exits, a moment after the signal)."""
    deadline = time.monotonic() + grace
    while loopback.is_listening(port):
        if time.monotonic() > deadline:
            return True
        time.sleep(POLL_SECONDS)
    return False


def judge(site: Site, served: Served) -> CheckResult:
    gateway, who = site.gateway, f"{site.gateway.nginx} as {site.user}"
    stderr, log = nginx_conf.log_tail(served.output), nginx_conf.log_tail(served.log)
    tail = [f"stderr: {line}" for line in stderr] + [f"error.log: {line}" for line in log]
    if not served.ready:
        why = nginx_conf.first_error(served.output + "\n" + served.log) or "no error given"
        ended = f"exit {served.exit_code}"
        if served.exit_code is None:
            ended = f"no pid file after {gateway.timeout:g} s, stopped"
        detail = f"{who}: nginx did not start ({ended}): {why}"
        return CheckResult(NAME, False, detail, (*served.leftovers, *(tail or [why])))
    answer = served.answer
    if answer is None:
        detail = f"{who}: no answer to POST {gateway.path}: {served.error}"
        return CheckResult(NAME, False, detail, (*served.leftovers, *tail))
    got = f"{answer.status} {_shown(answer.body)}"
    right = answer.status == gateway.status and answer.body.rstrip() == gateway.expect.rstrip()
    if right and not served.leftovers:
        return CheckResult(NAME, True, f"{who}: POST {gateway.path} answered {got}")
    if right:
        detail = f"{who}: answered right, but {served.leftovers[0]}"
        return CheckResult(NAME, False, detail, tuple(served.leftovers))
    wanted = f"{gateway.status} {gateway.expect.rstrip()!r}"
    detail = f"{who}: POST {gateway.path} answered {got}, expected {wanted}"
    why = nginx_conf.first_error(served.log)
    detail += f"; {why}" if why else ""
    return CheckResult(NAME, False, detail, (*served.leftovers, *tail))


def _shown(body: str, width: int = 80) -> str:
    """An answer's body as a detail shows it: its first line, cut."""
    text = body.strip()
    first = text.splitlines()[0] if text else ""
    return repr(first[:width] + "..." if first != text or len(first) > width else first)


def with_unusable_libraries(
    site: Site, result: CheckResult, libraries: Sequence[PurePosixPath]
) -> CheckResult:
    """Name the rock's libraries the worker user can't read or find: the real cause the
    loader's message hides. It leads the detail when there is one."""
    if not libraries:
        return result
    worker = worker_user(site.gateway, site.user)
    argv = ["sh", "-c", _PROBE, "sh", *map(str, libraries)]
    try:
        out = site.buildah.run(site.container, argv, user=worker, stream=False)
    except ToolError as exc:
        note = f"could not test the rock's libraries as {worker}: {exc}"
        return CheckResult(result.name, False, result.detail, (*result.findings, note))
    causes = []
    for line in out.splitlines():
        kind, _, path = line.partition(" ")
        if kind == "unreadable":
            causes.append(
                f"{path} is not readable by {worker}, the user nginx's workers run as"
                " (qjson's loader then reports the last path it tried, not this one)"
            )
        elif kind == "missing" and resolve_in_root(site.root, PurePosixPath(path)) is None:
            causes.append(f"{path}, where the rock installed it, is missing")
        elif kind == "missing":
            causes.append(f"{path} is in a directory {worker} cannot search")
    if not causes:
        return result
    detail = f"{causes[0]}; {result.detail}"
    return CheckResult(result.name, False, detail, (*causes, *result.findings))
