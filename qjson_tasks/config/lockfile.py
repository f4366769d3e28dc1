"""config/NAME.lock: every rock a target installs (and their dependencies), exactly.

Like luarocks' own lockfile it pins versions; unlike it, it also records a sha256 of each
rockspec and of each source (archive, rock file or directory contents), so a rebuild next
month installs the same bytes or fails saying which rock changed.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from qjson_tasks.config.model import Target
from qjson_tasks.errors import ConfigError

LOCK_FORMAT = 1
SHA256 = r"^([0-9a-f]{64})?$"
COMMIT = r"^[0-9a-f]{40}$"

LockKind = Literal["directory", "file", "server"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LockedGit(_Model):
    """A rock whose rockspec says `source.url = "git..."`: the tag and the exact commit it
    named when locked (the lock's source_sha256 is of the .src.rock qjson-tasks packs)."""

    url: str
    tag: str
    commit: str = Field(pattern=COMMIT)
    dir: str = Field(default="", description="the directory its source unpacks as")


class LockedCrate(_Model):
    name: str
    version: str
    checksum: str


class LockedCargo(_Model):
    """A Rust rock's Cargo.lock: its sha256 and every registry crate it pins."""

    lock_sha256: str = Field(pattern=SHA256)
    crates: tuple[LockedCrate, ...] = ()


class LockedRock(_Model):
    name: str
    version: str
    kind: LockKind
    source: str = Field(description="a directory or file (relative to the config) or a server")
    role: Literal["runtime", "build"] = "runtime"
    artifact: str = Field(default="", description="its file name in a vendor directory")
    url: str = Field(default="", description="where the artifact is downloaded from")
    rockspec_sha256: str = Field(pattern=SHA256)
    source_sha256: str = Field(pattern=SHA256)
    dependencies: tuple[str, ...] = ()
    git: LockedGit | None = None
    cargo: LockedCargo | None = None

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"


class Lock(_Model):
    format: Literal[1] = LOCK_FORMAT
    target: str
    rocks: tuple[LockedRock, ...]

    def entry(self, name: str) -> LockedRock | None:
        return next((rock for rock in self.rocks if rock.name == name), None)

    def hashed(self) -> list[dict[str, object]]:
        """What a unit's hash takes from the lock: the rocks and their content, not where
        the lock says they live on this machine."""
        return [
            rock.model_dump(include={"name", "version", "kind", "role"})
            | {"rockspec": rock.rockspec_sha256, "source": rock.source_sha256}
            # Only where present, so the locks of other rocks keep their hashes. (A Cargo.lock
            # is part of the source, so the source's sha256 covers it.)
            | ({"commit": rock.git.commit} if rock.git else {})
            for rock in self.rocks
        ]


def lock_path(target: Target) -> Path:
    return target.path.with_suffix(".lock")


def _again(target: Target) -> str:
    return f"run `invoke lock --target {target.name}` to write it again"


def read_lock(target: Target) -> Lock | None:
    """The target's lock, or None when it has none."""
    path = lock_path(target)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the lock ({exc}); {_again(target)}") from None
    try:
        return Lock.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = str(error["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{path}: {where}: {message}; {_again(target)}") from None


def write_lock(target: Target, lock: Lock) -> Path:
    """Write the lock next to the config, atomically."""
    path = lock_path(target)
    header = (
        f"# Written by `invoke lock --target {target.name}`: the exact rocks this target"
        " installs,\n# with sha256 of each rockspec and source. Commit it; do not edit it.\n\n"
    )
    data = lock.model_dump(mode="json", exclude_none=True)
    body = tomli_w.dumps(data)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(header + body, encoding="utf-8")
    temporary.replace(path)
    return path


def stale_reason(target: Target, lock: Lock) -> str | None:
    """Why the lock no longer fits the config's rocks (None when it fits)."""
    for rock in target.config.rocks:
        entry = lock.entry(rock.name)
        if entry is None:
            return f"it has no entry for rock '{rock.name}'"
        if not rock.requirement.allows_text(entry.version):
            return f"it has {entry.label}, which does not satisfy '{rock.version}'"
        kind = "server" if rock.where.kind == "default" else rock.where.kind
        if entry.kind != kind:
            return f"it has {entry.label} from a {entry.kind}, the config a {kind}"
        if entry.role != "runtime":
            return f"it has {entry.label} as a build-only dependency"
    if lock.target != target.name:
        return f"it was written for target '{lock.target}'"
    return None


def checked_lock(target: Target) -> Lock | None:
    """The lock when there is one and it still fits the config; an error when it doesn't."""
    lock = read_lock(target)
    if lock is None:
        return None
    reason = stale_reason(target, lock)
    if reason:
        raise ConfigError(
            f"{lock_path(target)}: out of date with {target.path.name}: {reason}; run"
            f" `invoke lock --target {target.name}` or build with --update-lock"
        )
    return lock
