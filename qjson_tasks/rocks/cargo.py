"""What a Rust rock's Cargo.lock says: its format version (which cargo can read it) and the
crates it pins. Pure: text in, facts out."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass

from qjson_tasks.errors import RockError

# The first cargo that reads lockfile version 4. Versions 1 to 3 are read by every cargo a
# supported builder ships (v3 needs 1.53), so only 4 and newer are checked.
CHECKED_FROM = 4
MIN_CARGO = (1, 78)
TOO_OLD_FIX = (
    "use a builder with a newer cargo (on Debian 12: the packages cargo-web and rustc-web"
    " instead of cargo and rustc)"
)
CRATES_IO = "registry+https://github.com/rust-lang/crates.io-index"


@dataclass(frozen=True)
class PinnedCrate:
    name: str
    version: str
    checksum: str


def _load(text: str, where: str) -> dict[str, object]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RockError(f"{where}: not a Cargo.lock: {exc}") from None


def lockfile_version(text: str, where: str) -> int:
    """The `version` of a Cargo.lock; 1 when absent (v1 and v2 files carry none)."""
    version = _load(text, where).get("version", 1)
    if not isinstance(version, int):
        raise RockError(f"{where}: version = {version!r} is not a lockfile version")
    return version


def pinned_crates(text: str, where: str) -> tuple[PinnedCrate, ...]:
    """The registry crates a Cargo.lock pins, sorted (the workspace's own packages, which
    have no source, are not crates anyone downloads)."""
    packages = _load(text, where).get("package", [])
    crates = [
        PinnedCrate(str(p["name"]), str(p["version"]), str(p.get("checksum", "")))
        for p in packages  # type: ignore[union-attr]
        if isinstance(p, dict) and str(p.get("source", "")).startswith("registry+")
    ]
    return tuple(sorted(crates, key=lambda c: (c.name, c.version)))


def cargo_version(text: str) -> tuple[int, int, int]:
    """`cargo 1.85.0 (...)` -> (1, 85, 0)."""
    match = re.search(r"cargo (\d+)\.(\d+)\.(\d+)", text)
    if match is None:
        raise RockError(f"could not read a cargo version from {text.strip()!r}")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def check_cargo(rock: str, lock_version: int, cargo: str) -> None:
    """One line, before any build, when the builder's cargo cannot read the rock's lockfile."""
    needed = MIN_CARGO
    found = cargo_version(cargo)
    if lock_version >= CHECKED_FROM and found[:2] < needed:
        raise RockError(
            f"{rock}: its Cargo.lock is lockfile version {lock_version}, which needs cargo"
            f" {needed[0]}.{needed[1]} or newer, but the builder has cargo"
            f" {'.'.join(map(str, found))}; {TOO_OLD_FIX}"
        )
