"""Gathering the facts: files with sha256 under a tree as image paths, the crates of the
project's real Cargo.lock files and locks, the content-addressed store."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path, PurePosixPath

from qjson_tasks.app.targets import resolve_target
from qjson_tasks.config.lockfile import read_lock
from qjson_tasks.rocks.cargo import pinned_crates
from qjson_tasks.sbom.collect import added_files, known_crates, tree_files
from qjson_tasks.sbom.facts import AddedFile, Crate
from qjson_tasks.sbom.store import store, stored_path
from tests.conftest import PROJECT_DIR


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha1(data: bytes) -> str:
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def test_tree_files_are_the_regular_files_under_the_prefix(tmp_path: Path) -> None:
    tree = tmp_path / "qjson-rock"
    (tree / "lib" / "lua" / "5.1").mkdir(parents=True)
    (tree / "lib" / "lua" / "5.1" / "qjson.so").write_bytes(b"elf")
    (tree / "share").mkdir()
    (tree / "share" / "link").symlink_to("../lib")
    assert tree_files(tmp_path, "/qjson-rock", "/usr/local") == [
        AddedFile("/usr/local/lib/lua/5.1/qjson.so", sha(b"elf"), sha1(b"elf"))
    ]


def test_added_files_skip_directories(tmp_path: Path) -> None:
    (tmp_path / "usr").mkdir()
    (tmp_path / "usr" / "a.lua").write_bytes(b"x")
    entries = [
        (PurePosixPath("/usr"), os.lstat(tmp_path / "usr")),
        (PurePosixPath("/usr/a.lua"), os.lstat(tmp_path / "usr" / "a.lua")),
    ]
    assert added_files(tmp_path, entries) == [AddedFile("/usr/a.lua", sha(b"x"), sha1(b"x"))]


def test_crates_of_the_crate_dependent_rock_from_its_cargo_lock() -> None:
    target = resolve_target("crates")
    crates = known_crates(target, None)
    text = (PROJECT_DIR / "rocks" / "qjson-crates" / "Cargo.lock").read_text()
    expected = tuple(Crate(c.name, c.version, c.checksum) for c in pinned_crates(text, "x"))
    assert [c.name for c in expected] == ["memchr", "once_cell"]
    assert crates == {"qjson-crates": expected}


def test_the_multi_lock_gives_no_crates_for_the_c_rock() -> None:
    target = resolve_target("multi")
    crates = known_crates(target, read_lock(target))
    assert crates["qjson-demo"] == ()  # a Cargo.lock without dependencies
    assert "cdemo" not in crates  # unknown: the SBOM warns


def test_the_store_is_addressed_by_content(tmp_path: Path) -> None:
    digest, path = store(b"{}\n", tmp_path / "sbom")
    assert digest == sha(b"{}\n") and path == stored_path(digest, tmp_path / "sbom")
    assert path.read_bytes() == b"{}\n"
    assert store(b"{}\n", tmp_path / "sbom") == (digest, path)
    assert [p.name for p in (tmp_path / "sbom").iterdir()] == [path.name]
