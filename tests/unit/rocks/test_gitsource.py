"""Pinning a git-sourced rock: the tag's commit from `git ls-remote` (recorded argv, fake
answers), and a byte-reproducible .src.rock of a checkout."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from qjson_tasks.errors import RockError, ToolError
from qjson_tasks.host.runner import ShRunner
from qjson_tasks.luarocks.rockspec import parse_rockspec
from qjson_tasks.rocks.gitsource import (
    clone_and_pack,
    git_url,
    pack_src_rock,
    remote_commit,
    tag_commit,
)
from tests.fixtures.upstream import TAG, make_repository, server_rockspec

LIGHT = "1" * 40
TAG_OBJECT = "2" * 40
PEELED = "3" * 40


@dataclass
class AnsweringRunner:
    answer: str = ""
    fail: bool = False
    calls: list[list[str]] = field(default_factory=list)

    def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        stream: bool = False,
        cwd: Path | None = None,
    ) -> str:
        self.calls.append(list(argv))
        if self.fail:
            raise ToolError("command failed (exit 128): git ls-remote", output="unreachable")
        return self.answer


def test_git_url_drops_luarocks_prefix() -> None:
    assert git_url("git+https://github.com/api7/lua-qjson") == "https://github.com/api7/lua-qjson"
    assert git_url("git://127.0.0.1:9/r.git") == "git://127.0.0.1:9/r.git"


def test_annotated_tag_resolves_to_the_peeled_commit() -> None:
    listing = f"{TAG_OBJECT}\trefs/tags/v1\n{PEELED}\trefs/tags/v1^{{}}\n"
    assert tag_commit(listing, "v1") == PEELED
    assert tag_commit(f"{LIGHT}\trefs/tags/v1\n", "v1") == LIGHT
    assert tag_commit(f"{LIGHT}\trefs/tags/v10\n", "v1") is None


def test_remote_commit_asks_git_for_the_tag_only() -> None:
    runner = AnsweringRunner(f"{LIGHT}\trefs/tags/v0.1.0\n")
    assert remote_commit(runner, "rock", "git+http://127.0.0.1:1/r", "v0.1.0") == LIGHT
    assert runner.calls == [
        ["git", "ls-remote", "http://127.0.0.1:1/r", "refs/tags/v0.1.0", "refs/tags/v0.1.0^{}"]
    ]


def test_missing_tag_and_unreachable_server_are_one_line_naming_rock_and_url() -> None:
    with pytest.raises(RockError, match=r"^rock: git://h/r\.git has no tag 'v9'$"):
        remote_commit(AnsweringRunner(""), "rock", "git://h/r.git", "v9")
    with pytest.raises(RockError) as caught:
        remote_commit(AnsweringRunner(fail=True), "rock", "git://h/r.git", "v1")
    assert str(caught.value) == "rock: could not reach its git server at git://h/r.git"


def checkout(root: Path) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "src" / "lib.rs").write_text("fn main() {}\n")
    (root / "build.sh").write_text("#!/bin/sh\n")
    (root / "build.sh").chmod(0o755)
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    return root


def test_packed_rock_is_byte_reproducible_and_laid_out_for_luarocks(tmp_path: Path) -> None:
    first = checkout(tmp_path / "a")
    second = checkout(tmp_path / "b")
    os.utime(second / "src" / "lib.rs", (1, 1))  # times and paths don't count
    packed = [
        pack_src_rock(c, "r-1.0-1.rockspec", b"package = 'r'\n", "r") for c in (first, second)
    ]
    assert hashlib.sha256(packed[0]).digest() == hashlib.sha256(packed[1]).digest()
    path = tmp_path / "r.src.rock"
    path.write_bytes(packed[0])
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        modes = {i.filename: i.external_attr >> 16 for i in archive.infolist()}
    assert names == ["r-1.0-1.rockspec", "r/build.sh", "r/src/lib.rs"]  # no .git
    assert modes["r/build.sh"] == 0o100755 and modes["r/src/lib.rs"] == 0o100644


def test_a_changed_file_changes_the_packed_rock(tmp_path: Path) -> None:
    root = checkout(tmp_path / "a")
    before = pack_src_rock(root, "r.rockspec", b"", "r")
    (root / "src" / "lib.rs").write_text("fn main() { }\n")
    assert pack_src_rock(root, "r.rockspec", b"", "r") != before


def test_a_real_repository_packs_to_the_same_bytes_twice(tmp_path: Path) -> None:
    """git on this machine, a git+file:// URL: clone at the tag, check the commit, pack."""
    base = tmp_path / "repos"
    base.mkdir()
    bare = make_repository(base)
    url = f"git+file://{bare}"
    spec = parse_rockspec(server_rockspec(url), "rockspec")
    assert (spec.source_url, spec.source_tag) == (url, TAG)
    runner = ShRunner()
    commit = remote_commit(runner, "qjson-crates", url, TAG)
    rockspec = ("qjson-crates-0.1.0-1.rockspec", b"spec")
    first = clone_and_pack(runner, "qjson-crates", spec, rockspec, commit)
    again = clone_and_pack(runner, "qjson-crates", spec, rockspec, commit)
    assert first.packed == again.packed
    assert first.cargo is not None
    assert [c.name for c in first.cargo.crates] == ["memchr", "once_cell"]
    with zipfile.ZipFile(io.BytesIO(first.packed)) as archive:
        assert "qjson-crates/Cargo.lock" in archive.namelist()  # source_dir_name: URL's last part
    with pytest.raises(RockError, match="moved to"):
        clone_and_pack(runner, "qjson-crates", spec, rockspec, "0" * 40)
