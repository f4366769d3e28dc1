"""Locked rocks on this machine: fetch each one's file, check it against the lock's sha256.

Used for every locked build (into a temporary directory the builder installs from, as its
only server) and by `invoke vendor` (into a directory kept for offline builds).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from qjson_tasks.build.plan import RockFacts
from qjson_tasks.config.lockfile import Lock, LockedCargo, LockedGit, LockedRock, lock_path
from qjson_tasks.config.model import Target
from qjson_tasks.errors import RockError
from qjson_tasks.host.runner import Runner, ShRunner
from qjson_tasks.luarocks.rockspec import parse_rockspec
from qjson_tasks.rocks.fetch import read_url
from qjson_tasks.rocks.gitsource import cargo_facts, clone_and_pack, remote_commit


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


def _again(target: Target) -> str:
    return f"if that change is intended, run `invoke lock --target {target.name}`"


def _check_cargo(target: Target, entry: LockedRock, where: str, found: LockedCargo | None) -> None:
    if entry.cargo is None:
        return
    actual = found.lock_sha256 if found else "(none)"
    if actual != entry.cargo.lock_sha256:
        raise RockError(
            f"{lock_path(target)}: {entry.label}: the Cargo.lock of {where} has sha256"
            f" {actual[:16]}…, the lock says {entry.cargo.lock_sha256[:16]}…; {_again(target)}"
        )


def check_local_rocks(target: Target, facts: Sequence[RockFacts], lock: Lock) -> None:
    """Local directories and files must still have the contents the lock recorded."""
    for rock, fact in zip(target.config.rocks, facts, strict=True):
        entry = lock.entry(rock.name)
        if entry is None or entry.kind not in ("directory", "file"):
            continue
        if entry.kind == "directory":
            _check_cargo(target, entry, rock.source, cargo_facts(Path(rock.source)))
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


def _locked_rockspec(target: Target, entry: LockedRock) -> tuple[bytes, str]:
    """A git rock's rockspec, from the server the lock names, checked against the lock."""
    if entry.url:
        data, where = read_url(entry.url), entry.url
    else:
        path = locked_path(target, entry) / f"{entry.name}-{entry.version}.rockspec"
        try:
            data, where = path.read_bytes(), str(path)
        except OSError as exc:
            raise RockError(f"{path}: cannot read {entry.label}: {exc.strerror}") from None
    if sha256(data) != entry.rockspec_sha256:
        raise _mismatch(target, entry, "rockspec", where, sha256(data))
    return data, where


def _git_rock_bytes(target: Target, entry: LockedRock, git: LockedGit, runner: Runner) -> bytes:
    """The .src.rock of a git rock, packed again from the locked commit: refused when the
    tag now names another commit or the Cargo.lock differs from the locked one."""
    data, where = _locked_rockspec(target, entry)
    spec = parse_rockspec(data.decode("utf-8", "replace"), where)
    commit = remote_commit(runner, entry.label, git.url, git.tag)
    if commit != git.commit:
        raise RockError(
            f"{lock_path(target)}: {entry.label}: tag {git.tag} of {git.url} now names commit"
            f" {commit[:12]}, the lock says {git.commit[:12]}; {_again(target)}"
        )
    name = f"{entry.name}-{entry.version}.rockspec"
    packed = clone_and_pack(runner, entry.label, spec, (name, data), commit)
    _check_cargo(target, entry, f"{git.url} at {commit[:12]}", packed.cargo)
    return packed.packed


def fetch_locked(
    target: Target,
    lock: Lock,
    dest: Path,
    from_dir: Path | None = None,
    runner: Runner | None = None,
) -> list[str]:
    """Put every locked rock file (not local directories) into dest, each checked against
    the lock; returns the file names. Nothing is written for a rock whose hash differs.
    A git rock's .src.rock is packed again from its locked commit (git runs on the host)."""
    names = []
    for entry in lock.rocks:
        if entry.kind == "directory":
            continue
        if entry.git is not None and from_dir is None:
            git = entry.git
            data = _git_rock_bytes(target, entry, git, runner or ShRunner())
            where = f"{git.url} at {git.commit[:12]}"
        else:
            data, where = _artifact_bytes(target, entry, from_dir)
        rockspec_only = entry.artifact.endswith(".rockspec")
        expected = entry.rockspec_sha256 if rockspec_only else entry.source_sha256
        if sha256(data) != expected:
            what = "rockspec" if rockspec_only else "rock file"
            raise _mismatch(target, entry, what, where, sha256(data))
        names.append(entry.artifact)
        if entry.git is not None or (dest / entry.artifact).resolve() != Path(where).resolve():
            (dest / entry.artifact).write_bytes(data)
    return names
