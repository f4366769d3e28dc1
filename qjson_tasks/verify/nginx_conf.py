"""The gateway check's nginx.conf: the target's snippet, the frame around it, and reading
what nginx says. Light to import: every build hashes the snippet, few run the check.

The check owns everything that lets nginx run as an unprivileged user in a throwaway
container: `daemon off`, the pid file, the error log and every temp path under RUN_DIR, and
the one address it listens on. The target gives only the http-block directives (the
snippet), whose server listens on `@LISTEN@`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from qjson_tasks.config.model import Target
from qjson_tasks.errors import VerificationError

RUN_DIR = "/tmp/qjt-gateway"
CONF = f"{RUN_DIR}/nginx.conf"
PID_FILE = f"{RUN_DIR}/nginx.pid"
ERROR_LOG = f"{RUN_DIR}/error.log"
LISTEN = "@LISTEN@"
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
# A directive named `listen` and its first parameter (comments are stripped first).
# What `buildah run` adds to a failed command's stderr.
_BUILDAH_EXIT = re.compile(r"subprocess exited with status \d+|Error: exit status \d+")
_LISTEN = re.compile(r"(?:^|[\s;{}])listen\s+([^\s;]+)[^;]*;")


def _without_comments(text: str) -> str:
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def snippet_problem(text: str) -> str | None:
    """Why a snippet can't be used, None if it can: every `listen` must be `@LISTEN@`, the
    loopback address and free port the check picks, and there must be one."""
    addresses = _LISTEN.findall(_without_comments(text))
    if not addresses:
        return f"no server listens on {LISTEN}: add `listen {LISTEN};` to its server block"
    others = [address for address in addresses if address != LISTEN]
    if others:
        return (
            f"`listen {others[0]}`: the check listens only where it chooses; write"
            f" `listen {LISTEN};` (127.0.0.1 and a free port)"
        )
    return None


def gateway_snippet(target: Target) -> str | None:
    """The target's snippet text (None without a gateway check); a snippet that can't be
    read or would listen elsewhere than the check's address is an error naming it."""
    gateway = target.config.verify.gateway
    if gateway is None:
        return None
    path = (target.path.parent / gateway.snippet).resolve()
    where = f"{target.path}: verify.gateway.snippet"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise VerificationError(f"{where}: cannot read '{path}': {exc.strerror}") from None
    problem = snippet_problem(text)
    if problem:
        raise VerificationError(f"{where}: {path}: {problem}")
    return text


def user_directive(worker_user: str | None, master_user: str) -> str:
    """nginx's `user` line: only a master running as root switches its workers' user."""
    if worker_user is None or master_user not in ("root", "0", "0:0"):
        return ""
    return f"user {worker_user.replace(':', ' ')};\n"


def render(
    snippet: str,
    port: int,
    modules: Sequence[str] = (),
    user_line: str = "",
) -> str:
    includes = "".join(f"include {module};\n" for module in modules)
    temp = "".join(f"    {kind}_temp_path {RUN_DIR}/{kind};\n" for kind in TEMP_PATHS)
    body = "\n".join(f"    {line}" if line else "" for line in snippet.splitlines())
    return (
        "# Written by qjson-tasks' gateway check into a throwaway container.\n"
        f"{includes}"
        "daemon off;\n"
        "master_process on;\n"
        "worker_processes 1;\n"
        f"{user_line}"
        f"pid {PID_FILE};\n"
        f"lock_file {RUN_DIR}/nginx.lock;\n"
        # notice: the log then also tells how nginx started and stopped.
        f"error_log {ERROR_LOG} notice;\n"
        "events { worker_connections 64; }\n"
        "http {\n"
        "    access_log off;\n"
        f"{temp}"
        f"{body.replace(LISTEN, f'127.0.0.1:{port}')}\n"
        "}\n"
    )


def bind_failed(text: str, port: int) -> bool:
    """nginx could not bind its port (taken since it was picked): pick another one."""
    return f"bind() to 127.0.0.1:{port} failed" in text and "Address already in use" in text


def log_tail(text: str, count: int = 15) -> list[str]:
    """The last lines of nginx's output or error log that say something went wrong: not
    the notices of starting and stopping."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    kept = [line for line in lines if not re.search(r"\[(notice|info)\]", line)]
    return [line for line in kept if not _BUILDAH_EXIT.fullmatch(line)][-count:]


def first_error(text: str) -> str | None:
    """nginx's own error line (`[emerg] ...`, `[error] ...`, `[alert] ...`), shortened to
    what follows the level."""
    for line in text.splitlines():
        match = re.search(r"\[(emerg|alert|crit|error)\] (?:\d+#\d+: )?(?:\*\d+ )?(.*)", line)
        if match:
            return f"[{match.group(1)}] {match.group(2).strip()}"
    return None
