"""Locked rocks on this machine: fetch each one's file, check it against the lock's sha256.

Used for every locked build (into a temporary directory the builder installs from, as its
only server) and by `invoke vendor` (into a directory kept for offline builds).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from qjson_tasks.build.plan import RockFacts
from qjson_tasks.config.lockfile import Lock, LockedRock, lock_path
from qjson_tasks.config.model import Target
from qjson_tasks.errors import RockError
from qjson_tasks.rocks.fetch import read_url


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def locked_path(target: Target, entry: LockedRock) -> Path:
    """A lock's local path (relative ones are relative to the config's directory)."""
    return (target.path.parent / entry.source).resolve()


def _mismatch(target: Target, entry: LockedRock, what: str, where: str, actual: str) -> RockError:
    expected = entry.source_sha256 if what != "rockspec" else entry.rockspec_sha256
    return RockError(
        f"{lock_path(target)}: {entry.label}: the {what} at {where} has sha256 {actual[:16]}…,"
        f" the lock says {expected[:16]}…; if that change is intended, run"
        f" `invoke lock --target {target.name}` (or build with --update-lock)"
    )


def check_local_rocks(target: Target, facts: Sequence[RockFacts], lock: Lock) -> None:
    """Local directories and files must still have the contents the lock recorded."""
    for rock, fact in zip(target.config.rocks, facts, strict=True):
        entry = lock.entry(rock.name)
        if entry is None or entry.kind not in ("directory", "file"):
            continue
        if fact.digest != entry.source_sha256:
            what = "directory" if entry.kind == "directory" else "rock file"
            raise _mismatch(target, entry, what, rock.source, fact.digest)


def _artifact_bytes(target: Target, entry: LockedRock, from_dir: Path | None) -> tuple[bytes, str]:
    if from_dir is not None:
        path = from_dir / entry.artifact
        try:
            return path.read_bytes(), str(path)
        except OSError:
            raise RockError(
                f"{path}: missing: the vendor directory has no {entry.artifact} for"
                f" {entry.label}; run `invoke vendor --target {target.name} {from_dir}` again"
            ) from None
    if entry.kind == "file" or not entry.url:
        # A rock file, or a server on this machine (kept relative to the config).
        path = locked_path(target, entry)
        if entry.kind == "server":
            path = path / entry.artifact
        try:
            return path.read_bytes(), str(path)
        except OSError as exc:
            raise RockError(f"{path}: cannot read {entry.label}: {exc.strerror}") from None
    return read_url(entry.url), entry.url


def fetch_locked(target: Target, lock: Lock, dest: Path, from_dir: Path | None = None) -> list[str]:
    """Put every locked rock file (not local directories) into dest, each checked against
    the lock; returns the file names. Nothing is written for a rock whose hash differs."""
    names = []
    for entry in lock.rocks:
        if entry.kind == "directory":
            continue
        data, where = _artifact_bytes(target, entry, from_dir)
        rockspec_only = entry.artifact.endswith(".rockspec")
        expected = entry.rockspec_sha256 if rockspec_only else entry.source_sha256
        if sha256(data) != expected:
            what = "rockspec" if rockspec_only else "rock file"
            raise _mismatch(target, entry, what, where, sha256(data))
        names.append(entry.artifact)
        if (dest / entry.artifact).resolve() != Path(where).resolve():
            (dest / entry.artifact).write_bytes(data)
    return names
