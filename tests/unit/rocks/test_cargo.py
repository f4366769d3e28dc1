"""Reading a Rust rock's Cargo.lock: its lockfile version, its crates, which cargo reads it."""

from __future__ import annotations

import pytest

from qjson_tasks.errors import RockError
from qjson_tasks.rocks.cargo import (
    PinnedCrate,
    cargo_version,
    check_cargo,
    lockfile_version,
    pinned_crates,
)
from tests.conftest import PROJECT_DIR

CRATES_LOCK = (PROJECT_DIR / "rocks" / "qjson-crates" / "Cargo.lock").read_text()
DEMO_LOCK = (PROJECT_DIR / "rocks" / "qjson-demo" / "Cargo.lock").read_text()


def test_lockfile_versions_of_the_demo_rocks() -> None:
    assert lockfile_version(CRATES_LOCK, "Cargo.lock") == 4
    assert lockfile_version(DEMO_LOCK, "Cargo.lock") == 3
    assert lockfile_version('[[package]]\nname = "x"\nversion = "1.0.0"\n', "v1") == 1


def test_pinned_crates_are_the_registry_packages_sorted() -> None:
    crates = pinned_crates(CRATES_LOCK, "Cargo.lock")
    assert [(c.name, c.version) for c in crates] == [("memchr", "2.5.0"), ("once_cell", "1.17.0")]
    assert all(len(c.checksum) == 64 for c in crates)
    assert pinned_crates(DEMO_LOCK, "Cargo.lock") == ()


def test_not_a_cargo_lock_names_the_file() -> None:
    with pytest.raises(RockError, match=r"^rock/Cargo\.lock: not a Cargo\.lock"):
        lockfile_version("version = [", "rock/Cargo.lock")


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("cargo 1.65.0\n", (1, 65, 0)),
        ("cargo 1.85.0 (d73d2caf9 2024-12-31) (built from a source tarball)", (1, 85, 0)),
    ],
)
def test_cargo_version(text: str, version: tuple[int, int, int]) -> None:
    assert cargo_version(text) == version


def test_cargo_too_old_for_lockfile_v4_is_one_line_with_the_fix() -> None:
    with pytest.raises(RockError) as caught:
        check_cargo("qjson-crates", 4, "cargo 1.65.0")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("qjson-crates: its Cargo.lock is lockfile version 4")
    assert "needs cargo 1.78 or newer" in message and "the builder has cargo 1.65.0" in message
    assert "cargo-web and rustc-web" in message


@pytest.mark.parametrize(
    ("lock", "cargo"), [(4, "cargo 1.78.0"), (4, "cargo 1.85.0"), (3, "cargo 1.65.0")]
)
def test_cargo_new_enough_passes(lock: int, cargo: str) -> None:
    check_cargo("rock", lock, cargo)


def test_unreadable_cargo_version() -> None:
    with pytest.raises(RockError, match="could not read a cargo version"):
        check_cargo("rock", 4, "bash: cargo: not found")


def test_pinned_crate_is_a_value() -> None:
    assert PinnedCrate("a", "1", "x") == PinnedCrate("a", "1", "x")
