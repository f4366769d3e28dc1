"""Running another architecture's programs here: qemu-user-static through binfmt_misc.

A build for a platform that is not the host's runs that platform's apt, cargo and LuaJIT
under emulation. The kernel does it once a `qemu-<arch>` handler is registered in
binfmt_misc (as root: `mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc`, then
`apt-get install qemu-user-static binfmt-support`; ./run.sh does both). With the `F` flag
the kernel keeps the interpreter open, so it also works in containers and rootless user
namespaces. This only reads /proc; it never sets anything up.
"""

from __future__ import annotations

import os
from pathlib import Path

from qjson_tasks.config.platforms import Platform, host_platform
from qjson_tasks.errors import ToolError

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
SETUP = (
    "mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; "
    "apt-get install qemu-user-static binfmt-support"
)


class EmulationMissing(ToolError):
    """This machine can't run a platform's programs."""


def _handler_enabled(path: Path) -> bool:
    try:
        return path.read_text(encoding="utf-8").splitlines()[:1] == ["enabled"]
    except (OSError, IndexError):
        return False


def emulation_problem(
    platform: Platform,
    host: Platform | None = None,
    binfmt: Path = BINFMT_DIR,
    is_root: bool | None = None,
) -> str | None:
    """Why this machine can't run `platform`'s programs, or None when it can (natively or
    through an enabled qemu handler)."""
    host = host or host_platform()
    if platform.architecture == host.architecture:
        return None
    is_root = os.geteuid() == 0 if is_root is None else is_root
    how = (
        f"as root, run `{SETUP}` (./run.sh does both)"
        if is_root
        else f"ask root to run `{SETUP}` (./run.sh does both when run as root)"
    )
    if not (binfmt / "status").exists():
        return (
            f"{platform} needs emulation on this {host.uname} machine, but binfmt_misc is not"
            f" mounted ({binfmt} is empty): {how}"
        )
    if not _handler_enabled(binfmt / "status"):
        return f"{platform} needs emulation, but binfmt_misc is disabled ({binfmt}/status): {how}"
    handler = binfmt / f"qemu-{platform.uname}"
    if handler.exists() and not _handler_enabled(handler):
        enable = f"update-binfmts --enable qemu-{platform.uname}"
        who = "as root, run" if is_root else "ask root to run"
        return (
            f"{platform} needs emulation on this {host.uname} machine, but the"
            f" qemu-{platform.uname} handler is disabled in {binfmt}: {who} `{enable}`"
        )
    if not handler.exists():
        return (
            f"{platform} needs emulation on this {host.uname} machine, but the"
            f" qemu-{platform.uname} handler is not registered in {binfmt} (qemu-user-static"
            f" missing?): {how}"
        )
    return None


def require_emulation(platforms: tuple[Platform, ...], **kwargs: object) -> None:
    """Fail up front, in one line, when a platform can't run here."""
    for platform in platforms:
        problem = emulation_problem(platform, **kwargs)  # type: ignore[arg-type]
        if problem:
            raise EmulationMissing(problem)
