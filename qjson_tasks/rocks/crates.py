"""Vendored crates (`DIR/crates`, written by `cargo vendor` in the builder): which rocks need
them, the cargo config that makes them cargo's crates.io in an offline build, and the check
of every vendored crate against the lock and against its own file checksums."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

from qjson_tasks.config.lockfile import Lock, LockedCrate, LockedRock, lock_path
from qjson_tasks.config.model import Target
from qjson_tasks.errors import RockError

CRATES_SUBDIR = "crates"
# Where an offline build's builder sees DIR/crates, and the cargo config naming them. The
# config sits at /.cargo, an ancestor of every build directory, so it outranks the one in
# cargo's home that the builder image may carry.
CRATES_INSIDE = "/qjson-crates"
CARGO_CONFIG_INSIDE = "/.cargo/config.toml"


def rust_rocks(lock: Lock) -> tuple[LockedRock, ...]:
    """Locked rocks whose Cargo.lock pins registry crates."""
    return tuple(rock for rock in lock.rocks if rock.cargo is not None and rock.cargo.crates)


def offline_cargo_config(crates_dir: str = CRATES_INSIDE) -> str:
    return (
        "# Written by qjson-tasks for an offline build; mounted for the rock install only.\n"
        '[source.crates-io]\nreplace-with = "qjson-vendored"\n\n'
        f'[source.qjson-vendored]\ndirectory = "{crates_dir}"\n\n[net]\noffline = true\n'
    )


def unpack_source(rock_file: Path, into: Path) -> Path:
    """A packed .src.rock's source directory (the one holding Cargo.lock), unpacked."""
    with zipfile.ZipFile(rock_file) as archive:
        archive.extractall(into)
    found = sorted(p.parent for p in into.glob("*/Cargo.lock"))
    if len(found) != 1:
        raise RockError(f"{rock_file}: expected one source directory with a Cargo.lock")
    return found[0]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_crate(target: Target, rock: LockedRock, crate: LockedCrate, crates_dir: Path) -> None:
    where = crates_dir / f"{crate.name}-{crate.version}"
    label = f"{lock_path(target)}: {rock.label}: vendored crate {crate.name} {crate.version}"
    again = f"run `invoke vendor --target {target.name} {crates_dir.parent}` again"
    try:
        listed = json.loads((where / ".cargo-checksum.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise RockError(
            f"{label}: {where} is missing or has no .cargo-checksum.json; {again}"
        ) from None
    if listed.get("package") != crate.checksum:
        raise RockError(
            f"{label}: {where} has checksum {str(listed.get('package'))[:16]}…, the lock says"
            f" {crate.checksum[:16]}…; {again}"
        )
    for name, expected in sorted(listed.get("files", {}).items()):
        path = where / name
        actual = _sha256(path) if path.is_file() else "(missing)"
        if actual != expected:
            raise RockError(
                f"{label} was changed: {name} has sha256 {actual[:16]}…, its"
                f" .cargo-checksum.json says {expected[:16]}…; {again}"
            )


def check_vendored_crates(target: Target, lock: Lock, crates_dir: Path) -> None:
    """Every crate the lock pins is in crates_dir with the locked checksum, and no file of
    it differs from what cargo vendor recorded."""
    for rock in rust_rocks(lock):
        assert rock.cargo is not None
        for crate in rock.cargo.crates:
            _check_crate(target, rock, crate, crates_dir)
