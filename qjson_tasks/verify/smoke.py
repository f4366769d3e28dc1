"""Smoke scripts: the target's and each rock's, and running one in the image."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from qjson_tasks.config.model import Target
from qjson_tasks.errors import ToolError, VerificationError
from qjson_tasks.host.buildah import Buildah
from qjson_tasks.verify.report import CheckResult

DEFAULT_SMOKE_SCRIPT = Path(__file__).parent / "smoke_scripts" / "default.lua"


def default_smoke_script() -> str:
    return DEFAULT_SMOKE_SCRIPT.read_text("utf-8")


def _read_smoke(target: Target, field: str, configured: str) -> str:
    path = (target.path.parent / configured).resolve()
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise VerificationError(
            f"{target.path}: {field}: cannot read '{path}': {exc.strerror}"
        ) from None


def smoke_script_for(target: Target) -> str:
    configured = target.config.verify.smoke_script
    if not configured:
        return default_smoke_script()
    return _read_smoke(target, "verify.smoke_script", configured)


def smoke_scripts(target: Target) -> list[tuple[str, str]]:
    """(check name, Lua script): the target's smoke test, then each rock's own."""
    scripts = [("smoke", smoke_script_for(target))]
    for index, rock in enumerate(target.config.rocks):
        if rock.smoke_script:
            field = target.config.rock_field(index, "smoke_script")
            scripts.append((f"smoke {rock.name}", _read_smoke(target, field, rock.smoke_script)))
    return scripts


def _lua_error(lines: Sequence[str]) -> str:
    """The error message of a failed Lua run, not the traceback that follows it."""
    for line in lines:
        if "luajit: " in line or line.startswith("lua: "):
            return line.strip()
    return lines[-1].strip() if lines else "no output"


def check_smoke(
    buildah: Buildah, container: str, luajit: str, script: str, user: str, name: str = "smoke"
) -> CheckResult:
    try:
        out = buildah.run(container, [luajit, "-e", script], stream=False)
    except ToolError as exc:
        lines = tuple(line for line in exc.output.splitlines() if line.strip())
        return CheckResult(name, False, f"{luajit} as {user} failed: {_lua_error(lines)}", lines)
    last = out.strip().splitlines()[-1] if out.strip() else "(no output)"
    return CheckResult(name, True, f"{luajit} as {user}: {last}")
