"""Vendored crates: the check against the lock and cargo vendor's file checksums, the
offline cargo config, the cargo vendor command."""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path

import pytest

from qjson_tasks.build.cratevendor import cargo_vendor_argv
from qjson_tasks.config.lockfile import Lock, LockedCargo, LockedCrate, LockedRock
from qjson_tasks.config.model import Target
from qjson_tasks.errors import RockError
from qjson_tasks.rocks.crates import check_vendored_crates, offline_cargo_config, rust_rocks
from tests.unit.rockfiles import write_target

SOURCE = b"pub fn f() {}\n"
CHECKSUM = "c" * 64


@pytest.fixture
def target(tmp_path: Path) -> Target:
    return write_target(tmp_path / "config", [{"name": "r", "version": "1.0", "source": "./r"}])


def lock_with(*crates: LockedCrate) -> Lock:
    rock = LockedRock(
        name="r", version="1.0-1", kind="directory", source="r", rockspec_sha256="a" * 64,
        source_sha256="b" * 64, cargo=LockedCargo(lock_sha256="d" * 64, crates=crates),
    )  # fmt: skip
    return Lock(target="t", rocks=(rock,))


def vendored(crates: Path, name: str = "memchr-2.5.0", package: str = CHECKSUM) -> Path:
    crate = crates / name
    (crate / "src").mkdir(parents=True)
    (crate / "src" / "lib.rs").write_bytes(SOURCE)
    files = {"src/lib.rs": hashlib.sha256(SOURCE).hexdigest()}
    (crate / ".cargo-checksum.json").write_text(json.dumps({"files": files, "package": package}))
    return crate


MEMCHR = LockedCrate(name="memchr", version="2.5.0", checksum=CHECKSUM)


def test_vendored_crates_matching_the_lock_pass(target: Target, tmp_path: Path) -> None:
    vendored(tmp_path / "crates")
    check_vendored_crates(target, lock_with(MEMCHR), tmp_path / "crates")


def test_a_tampered_file_names_the_crate_and_the_file(target: Target, tmp_path: Path) -> None:
    crate = vendored(tmp_path / "crates")
    (crate / "src" / "lib.rs").write_bytes(SOURCE + b"//\n")
    with pytest.raises(RockError) as caught:
        check_vendored_crates(target, lock_with(MEMCHR), tmp_path / "crates")
    message = str(caught.value)
    assert "\n" not in message
    assert "r 1.0-1: vendored crate memchr 2.5.0 was changed: src/lib.rs has sha256" in message
    assert "run `invoke vendor --target t" in message


@pytest.mark.parametrize(
    ("name", "package", "expected"),
    [
        (
            "memchr-2.5.0",
            "e" * 64,
            "has checksum eeeeeeeeeeeeeeee…, the lock says cccccccccccccccc…",
        ),
        ("memchr-2.4.0", CHECKSUM, "is missing or has no .cargo-checksum.json"),
    ],
)
def test_a_crate_other_than_the_locked_one_is_refused(
    target: Target, tmp_path: Path, name: str, package: str, expected: str
) -> None:
    vendored(tmp_path / "crates", name, package)
    with pytest.raises(RockError, match=r"vendored crate memchr 2\.5\.0") as caught:
        check_vendored_crates(target, lock_with(MEMCHR), tmp_path / "crates")
    assert expected in str(caught.value)


def test_only_rocks_pinning_crates_are_rust_rocks() -> None:
    assert rust_rocks(lock_with()) == ()
    assert [r.name for r in rust_rocks(lock_with(MEMCHR))] == ["r"]


def test_offline_cargo_config_replaces_crates_io_and_goes_offline() -> None:
    config = tomllib.loads(offline_cargo_config("/v"))
    assert config["source"]["crates-io"] == {"replace-with": "qjson-vendored"}
    assert config["source"]["qjson-vendored"] == {"directory": "/v"}
    assert config["net"] == {"offline": True}


def test_cargo_vendor_is_locked_uses_the_builders_registry_and_keeps_earlier_rocks() -> None:
    first = cargo_vendor_argv(first=True)
    assert first[:3] == ("cargo", "vendor", "--locked")
    assert "--respect-source-config" in first and "--no-delete" not in first
    assert "--no-delete" in cargo_vendor_argv(first=False)
