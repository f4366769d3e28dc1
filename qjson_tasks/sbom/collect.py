"""Gathering an SBOM's facts from the disk: files and their sha256, which rock owns which
file (the rocks' rock_manifests), and each rock's crates (the lock, or a local rock's
Cargo.lock)."""

from __future__ import annotations

import hashlib
import os
import stat
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath

from qjson_tasks.config.lockfile import Lock
from qjson_tasks.config.model import Target
from qjson_tasks.sbom.facts import AddedFile, Crate

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def tool_version() -> str:
    try:
        return str(tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def file_sha256(path: Path) -> str:
    return _digests(path)[0]


def _digests(path: Path) -> tuple[str, str]:
    """(sha256, sha1) of a file, read once."""
    sha256, sha1 = hashlib.sha256(), hashlib.sha1(usedforsecurity=False)
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            sha256.update(block)
            sha1.update(block)
    return sha256.hexdigest(), sha1.hexdigest()


def _added(path: str, host: Path) -> AddedFile:
    sha256, sha1 = _digests(host)
    return AddedFile(path, sha256, sha1)


def tree_files(root: Path, tree: str, prefix: str) -> list[AddedFile]:
    """The regular files under the tree in a mounted rock-tree unit, as the image paths
    they get under the prefix (the runtime copies the tree there and nothing else)."""
    top = root / tree.lstrip("/")
    found = []
    for dirpath, _dirs, names in os.walk(top):
        for name in names:
            host = Path(dirpath) / name
            if stat.S_ISREG(host.lstat().st_mode):
                relative = host.relative_to(top).as_posix()
                found.append(_added(str(PurePosixPath(prefix) / relative), host))
    return sorted(found)


def added_files(
    root: Path, entries: Iterable[tuple[PurePosixPath, os.stat_result]]
) -> list[AddedFile]:
    """The regular files among the paths an image added over its base, with their sha256."""
    return sorted(
        _added(str(path), root / str(path).lstrip("/"))
        for path, info in entries
        if stat.S_ISREG(info.st_mode)
    )


def owned_files(root: Path, tree: str, prefix: str, lua_version: str) -> dict[str, list[str]]:
    """Each installed rock's files (its rock_manifest and its rock directory) as image
    paths under the prefix."""
    from qjson_tasks.verify.rock_files import find_installed_rocks

    base = PurePosixPath(tree)
    owned: dict[str, list[str]] = {}
    for rock in find_installed_rocks(root, base, lua_version):
        paths = [file.tree_path for file in rock.files]
        rock_dir = root / str(rock.rock_dir).lstrip("/")
        if rock_dir.is_dir():
            paths += [
                PurePosixPath(rock.rock_dir) / p.relative_to(rock_dir).as_posix()
                for p in rock_dir.rglob("*")
                if p.is_file()
            ]
        owned[rock.name] = sorted(
            {str(PurePosixPath(prefix) / path.relative_to(base)) for path in paths}
        )
    return owned


def _crates(pinned: Sequence[object]) -> tuple[Crate, ...]:
    return tuple(Crate(c.name, c.version, c.checksum) for c in pinned)  # type: ignore[attr-defined]


def known_crates(target: Target, lock: Lock | None) -> dict[str, tuple[Crate, ...]]:
    """The crates of every rock whose Cargo.lock is known: the lock's (a locked Rust rock),
    else a local rock directory's own Cargo.lock. A rock missing here has unknown crates."""
    from qjson_tasks.rocks.cargo import pinned_crates

    found: dict[str, tuple[Crate, ...]] = {}
    for entry in lock.rocks if lock else ():
        if entry.cargo is not None:
            found[entry.name] = _crates(entry.cargo.crates)
    for rock in target.config.rocks:
        where = rock.where
        if rock.name in found or where.kind != "directory" or where.host_path is None:
            continue
        path = Path(where.host_path)
        if not path.is_absolute():
            path = target.path.parent / path
        cargo_lock = path / "Cargo.lock"
        if cargo_lock.is_file():
            text = cargo_lock.read_text(encoding="utf-8")
            found[rock.name] = _crates(pinned_crates(text, str(cargo_lock)))
    return found
