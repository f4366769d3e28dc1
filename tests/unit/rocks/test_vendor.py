"""Locked rocks on this machine: fetching each file and checking it against the lock."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from qjson_tasks.config.lockfile import Lock, lock_path
from qjson_tasks.config.model import Target
from qjson_tasks.errors import RockError
from qjson_tasks.rocks.fetch import clear_manifest_cache
from qjson_tasks.rocks.resolve import resolve
from qjson_tasks.rocks.source import rock_facts
from qjson_tasks.rocks.vendor import check_local_rocks, fetch_locked
from tests.unit.rockfiles import copy_multi, serve_http, write_server, write_target

MULTI_FILES = ["qjt-buildtool-1.0-1.src.rock", "cdemo-1.0-1.src.rock"]


@pytest.fixture(autouse=True)
def _fresh_manifest_cache() -> Iterator[None]:
    clear_manifest_cache()
    yield
    clear_manifest_cache()


@pytest.fixture
def multi(tmp_path: Path) -> tuple[Target, Lock]:
    """The multi target copied into tmp_path, and its lock resolved from the copy."""
    target = copy_multi(tmp_path)
    return target, resolve(target)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def mismatch_error(
    target: Target, label: str, what: str, where: object, expected: str, path: Path
) -> str:
    actual = sha256(path.read_bytes())
    return (
        f"{lock_path(target)}: {label}: the {what} at {where} has sha256 {actual[:16]}…,"
        f" the lock says {expected[:16]}…; if that change is intended, run"
        f" `invoke lock --target {target.name}` (or build with --update-lock)"
    )


# --- fetch_locked ----------------------------------------------------------------------------


def test_fetch_writes_every_locked_file_and_returns_the_names(
    multi: tuple[Target, Lock], tmp_path: Path
) -> None:
    target, lock = multi
    dest = tmp_path / "vendor"
    dest.mkdir()
    assert fetch_locked(target, lock, dest) == MULTI_FILES  # not the directory rock
    rocks = tmp_path / "rocks"
    assert sorted(p.name for p in dest.iterdir()) == sorted(MULTI_FILES)
    assert (dest / MULTI_FILES[0]).read_bytes() == (rocks / "server" / MULTI_FILES[0]).read_bytes()
    assert (dest / MULTI_FILES[1]).read_bytes() == (rocks / "cdemo" / MULTI_FILES[1]).read_bytes()


def test_a_changed_rock_file_is_refused_and_not_written(
    multi: tuple[Target, Lock], tmp_path: Path
) -> None:
    target, lock = multi
    rock = tmp_path / "rocks" / "cdemo" / "cdemo-1.0-1.src.rock"
    flip_a_byte(rock)
    dest = tmp_path / "vendor"
    dest.mkdir()
    with pytest.raises(RockError) as caught:
        fetch_locked(target, lock, dest)
    expected = lock.entry("cdemo").source_sha256  # type: ignore[union-attr]
    assert str(caught.value) == mismatch_error(
        target, "cdemo 1.0-1", "rock file", rock, expected, rock
    )
    assert not (dest / "cdemo-1.0-1.src.rock").exists()


def test_a_changed_server_rock_is_refused_and_not_written(
    multi: tuple[Target, Lock], tmp_path: Path
) -> None:
    target, lock = multi
    rock = tmp_path / "rocks" / "server" / "qjt-buildtool-1.0-1.src.rock"
    flip_a_byte(rock)
    dest = tmp_path / "vendor"
    dest.mkdir()
    with pytest.raises(RockError) as caught:
        fetch_locked(target, lock, dest)
    expected = lock.entry("qjt-buildtool").source_sha256  # type: ignore[union-attr]
    message = str(caught.value)
    assert message == mismatch_error(
        target, "qjt-buildtool 1.0-1", "rock file", rock, expected, rock
    )
    assert list(dest.iterdir()) == []


def test_a_missing_local_rock_file(multi: tuple[Target, Lock], tmp_path: Path) -> None:
    target, lock = multi
    rock = tmp_path / "rocks" / "cdemo" / "cdemo-1.0-1.src.rock"
    rock.unlink()
    with pytest.raises(RockError) as caught:
        fetch_locked(target, lock, tmp_path)
    assert str(caught.value) == f"{rock}: cannot read cdemo 1.0-1: No such file or directory"


def test_fetch_from_a_vendor_directory(multi: tuple[Target, Lock], tmp_path: Path) -> None:
    target, lock = multi
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    fetch_locked(target, lock, vendor)
    # The originals are gone: only the vendor directory has them now.
    (tmp_path / "rocks" / "cdemo" / "cdemo-1.0-1.src.rock").unlink()
    (tmp_path / "rocks" / "server" / "qjt-buildtool-1.0-1.src.rock").unlink()
    dest = tmp_path / "dest"
    dest.mkdir()
    assert fetch_locked(target, lock, dest, from_dir=vendor) == MULTI_FILES
    assert sorted(p.name for p in dest.iterdir()) == sorted(MULTI_FILES)
    # Fetching into the vendor directory itself leaves it as it is.
    assert fetch_locked(target, lock, vendor, from_dir=vendor) == MULTI_FILES


def test_a_file_missing_from_the_vendor_directory(
    multi: tuple[Target, Lock], tmp_path: Path
) -> None:
    target, lock = multi
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    fetch_locked(target, lock, vendor)
    (vendor / "cdemo-1.0-1.src.rock").unlink()
    with pytest.raises(RockError) as caught:
        fetch_locked(target, lock, tmp_path, from_dir=vendor)
    assert str(caught.value) == (
        f"{vendor / 'cdemo-1.0-1.src.rock'}: missing: the vendor directory has no"
        f" cdemo-1.0-1.src.rock for cdemo 1.0-1; run `invoke vendor --target multi {vendor}`"
        " again"
    )


def test_a_changed_file_in_the_vendor_directory(multi: tuple[Target, Lock], tmp_path: Path) -> None:
    target, lock = multi
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    fetch_locked(target, lock, vendor)
    rock = vendor / "qjt-buildtool-1.0-1.src.rock"
    flip_a_byte(rock)
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(RockError) as caught:
        fetch_locked(target, lock, dest, from_dir=vendor)
    expected = lock.entry("qjt-buildtool").source_sha256  # type: ignore[union-attr]
    assert str(caught.value) == mismatch_error(
        target, "qjt-buildtool 1.0-1", "rock file", rock, expected, rock
    )
    assert list(dest.iterdir()) == []


def test_a_rockspec_only_rock_is_checked_by_its_rockspec_hash(tmp_path: Path) -> None:
    server = write_server(tmp_path / "server", {"foo": {"1.0-1": ((), ())}}, ["foo"])
    target = write_target(tmp_path / "config", [{"name": "foo", "version": "1.0"}], "../server")
    lock = resolve(target)
    dest = tmp_path / "dest"
    dest.mkdir()
    assert fetch_locked(target, lock, dest) == ["foo-1.0-1.rockspec"]
    spec = server / "foo-1.0-1.rockspec"
    assert (dest / "foo-1.0-1.rockspec").read_bytes() == spec.read_bytes()

    spec.write_text(spec.read_text() + "-- changed\n")
    (dest / "foo-1.0-1.rockspec").unlink()
    with pytest.raises(RockError) as caught:
        fetch_locked(target, lock, dest)
    expected = lock.rocks[0].rockspec_sha256
    assert str(caught.value) == mismatch_error(
        target, "foo 1.0-1", "rockspec", spec, expected, spec
    )
    assert list(dest.iterdir()) == []


def test_fetch_over_http_and_a_changed_download(tmp_path: Path) -> None:
    root = write_server(tmp_path / "www", {"foo": {"1.0-1": ((), ())}})
    dest = tmp_path / "dest"
    dest.mkdir()
    with serve_http(root) as base:
        target = write_target(tmp_path / "config", [{"name": "foo", "version": "1.0"}], base)
        lock = resolve(target)
        assert fetch_locked(target, lock, dest) == ["foo-1.0-1.src.rock"]
        rock = root / "foo-1.0-1.src.rock"
        assert (dest / "foo-1.0-1.src.rock").read_bytes() == rock.read_bytes()

        (dest / "foo-1.0-1.src.rock").unlink()
        flip_a_byte(rock)
        with pytest.raises(RockError) as caught:
            fetch_locked(target, lock, dest)
    url = f"{base}/foo-1.0-1.src.rock"
    expected = lock.rocks[0].source_sha256
    assert str(caught.value) == mismatch_error(
        target, "foo 1.0-1", "rock file", url, expected, rock
    )
    assert list(dest.iterdir()) == []


# --- check_local_rocks -----------------------------------------------------------------------


def test_unchanged_local_rocks_pass(multi: tuple[Target, Lock]) -> None:
    target, lock = multi
    check_local_rocks(target, rock_facts(target), lock)


def test_a_changed_rock_directory_is_refused(multi: tuple[Target, Lock], tmp_path: Path) -> None:
    target, lock = multi
    directory = tmp_path / "rocks" / "qjson-demo"
    (directory / "src" / "lib.rs").write_text("// changed\n", encoding="utf-8")
    facts = rock_facts(target)
    with pytest.raises(RockError) as caught:
        check_local_rocks(target, facts, lock)
    actual = facts[0].digest
    expected = lock.entry("qjson-demo").source_sha256  # type: ignore[union-attr]
    assert actual != expected
    assert str(caught.value) == (
        f"{lock_path(target)}: qjson-demo 0.1.0-1: the directory at {directory} has sha256"
        f" {actual[:16]}…, the lock says {expected[:16]}…; if that change is intended, run"
        " `invoke lock --target multi` (or build with --update-lock)"
    )


def test_a_build_output_in_a_rock_directory_does_not_count(
    multi: tuple[Target, Lock], tmp_path: Path
) -> None:
    target, lock = multi
    build = tmp_path / "rocks" / "qjson-demo" / "target" / "release"
    build.mkdir(parents=True)
    (build / "libqjson.so").write_bytes(b"\x7fELF")
    check_local_rocks(target, rock_facts(target), lock)


def test_a_changed_local_rock_file_is_refused(multi: tuple[Target, Lock], tmp_path: Path) -> None:
    target, lock = multi
    rock = tmp_path / "rocks" / "cdemo" / "cdemo-1.0-1.src.rock"
    flip_a_byte(rock)
    with pytest.raises(RockError) as caught:
        check_local_rocks(target, rock_facts(target), lock)
    expected = lock.entry("cdemo").source_sha256  # type: ignore[union-attr]
    assert str(caught.value) == mismatch_error(
        target, "cdemo 1.0-1", "rock file", rock, expected, rock
    )
