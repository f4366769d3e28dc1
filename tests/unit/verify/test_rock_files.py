"""The files of installed rocks: where luarocks put them and whether their md5s still match."""

from collections.abc import Callable
from pathlib import Path, PurePosixPath

import pytest

from qjson_tasks.errors import VerificationError
from qjson_tasks.verify.rock_files import (
    InstalledRock,
    ManifestFile,
    check_files,
    deployed_path,
    find_installed_rocks,
)
from tests.unit.luarocks.test_rock_manifest import CONTENTS, manifest_text, md5

TREE = PurePosixPath("/usr/local")
ROCK_DIR = TREE / "lib/luarocks/rocks-5.1/qjson-demo/0.1.0-1"

INSTALLED_AT = {
    "lib/qjson.so": "/usr/local/lib/lua/5.1/qjson.so",
    "lua/qjson.lua": "/usr/local/share/lua/5.1/qjson.lua",
    "lua/qjson/lib.lua": "/usr/local/share/lua/5.1/qjson/lib.lua",
    "lua/qjson/table.lua": "/usr/local/share/lua/5.1/qjson/table.lua",
    "doc/README.md": f"{ROCK_DIR}/doc/README.md",
    "qjson-demo-0.1.0-1.rockspec": f"{ROCK_DIR}/qjson-demo-0.1.0-1.rockspec",
}


def write(root: Path, image: str | PurePosixPath, data: bytes) -> Path:
    host = root / str(image).lstrip("/")
    host.parent.mkdir(parents=True, exist_ok=True)
    host.write_bytes(data)
    return host


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An image with the rock installed in /usr/local, as luarocks deploys it."""
    root = tmp_path / "root"
    write(root, ROCK_DIR / "rock_manifest", manifest_text().encode())
    for entry, data in CONTENTS.items():
        write(root, INSTALLED_AT[entry], data)
    write(root, TREE / "lib/luarocks/rocks-5.1/manifest", b"commands = {}\n")
    return root


def installed_rock(root: Path) -> InstalledRock:
    [rock] = find_installed_rocks(root, TREE, "5.1")
    return rock


def by_entry(rock: InstalledRock) -> dict[str, ManifestFile]:
    return {file.entry: file for file in rock.files}


# -- path mapping -------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "relative", "expected"),
    [
        ("lua", "qjson/lib.lua", "/usr/local/share/lua/5.1/qjson/lib.lua"),
        ("lib", "qjson.so", "/usr/local/lib/lua/5.1/qjson.so"),
        ("bin", "qjson-tool", "/usr/local/bin/qjson-tool"),
        ("doc", "README.md", f"{ROCK_DIR}/doc/README.md"),
        ("", "qjson-demo-0.1.0-1.rockspec", f"{ROCK_DIR}/qjson-demo-0.1.0-1.rockspec"),
    ],
)
def test_deployed_path(kind: str, relative: str, expected: str) -> None:
    assert deployed_path(kind, relative, TREE, "5.1", ROCK_DIR) == PurePosixPath(expected)


def test_find_installed_rocks(root: Path) -> None:
    rock = installed_rock(root)
    assert (rock.name, rock.version) == ("qjson-demo", "0.1.0-1")
    assert rock.manifest_path == ROCK_DIR / "rock_manifest"
    files = by_entry(rock)
    assert {e: str(f.tree_path) for e, f in files.items()} == INSTALLED_AT
    assert files["lua/qjson/lib.lua"].kind == "lua"
    assert files["lua/qjson/lib.lua"].relative == "qjson/lib.lua"
    assert files["qjson-demo-0.1.0-1.rockspec"].kind == ""
    assert files["lib/qjson.so"].md5 == md5(CONTENTS["lib/qjson.so"])


def test_find_installed_rocks_through_symlinked_tree(root: Path, tmp_path: Path) -> None:
    moved = tmp_path / "root" / "opt" / "local"
    moved.parent.mkdir()
    (root / "usr" / "local").rename(moved)
    (root / "usr" / "local").symlink_to("/opt/local")
    assert check_files(root, installed_rock(root)) == []


def test_find_installed_rocks_without_tree(tmp_path: Path) -> None:
    assert find_installed_rocks(tmp_path, TREE, "5.1") == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b"rock_manifest = { lua = 5 }",
            "rock_manifest['lua']: expected an md5 string or a table, got number",
        ),
        (b"rock_manifest = { lua = {", "line 1: unexpected symbol near <eof>"),
        (b"rock_manifest = { lua = '\xff' }", "not UTF-8 text: 'utf-8' codec can't decode"),
        (b'os.execute("reboot")', "line 1: 'os' is not defined"),
    ],
)
def test_find_installed_rocks_names_a_bad_manifest(root: Path, data: bytes, message: str) -> None:
    write(root, ROCK_DIR / "rock_manifest", data)
    with pytest.raises(VerificationError) as caught:
        find_installed_rocks(root, TREE, "5.1")
    assert str(caught.value).startswith(f"{ROCK_DIR}/rock_manifest: {message}")


# -- checking -----------------------------------------------------------------


def test_check_files_clean(root: Path) -> None:
    assert check_files(root, installed_rock(root)) == []


def _remove(host: Path) -> None:
    host.unlink()


def _make_directory(host: Path) -> None:
    host.unlink()
    host.mkdir()


def _strip(host: Path) -> None:
    host.write_bytes(b"stripped")


@pytest.mark.parametrize(
    ("entry", "fault", "problem", "actual", "message"),
    [
        (
            "lua/qjson/table.lua",
            _remove,
            "missing",
            None,
            "/usr/local/share/lua/5.1/qjson/table.lua (lua/qjson/table.lua): missing",
        ),
        (
            "doc/README.md",
            _make_directory,
            "not a file",
            None,
            f"{ROCK_DIR}/doc/README.md (doc/README.md): not a file",
        ),
        (
            "lib/qjson.so",
            _strip,
            "md5 mismatch",
            md5(b"stripped"),
            "/usr/local/lib/lua/5.1/qjson.so (lib/qjson.so): md5 mismatch: rock_manifest says"
            f" {md5(CONTENTS['lib/qjson.so'])}, the file has {md5(b'stripped')}",
        ),
    ],
)
def test_check_files_finds_a_planted_fault(
    root: Path,
    entry: str,
    fault: Callable[[Path], None],
    problem: str,
    actual: str | None,
    message: str,
) -> None:
    fault(root / INSTALLED_AT[entry].lstrip("/"))
    [found] = check_files(root, installed_rock(root))
    assert found.file.entry == entry
    assert (found.problem, found.expected_md5, found.actual_md5) == (
        problem,
        md5(CONTENTS[entry]),
        actual,
    )
    assert found.message == message


def test_check_files_accepts_wrapped_bin_script(root: Path) -> None:
    script = b"#!/usr/bin/env lua\nprint('hi')\n"
    bin_table = f'bin = {{ tool = "{md5(script)}" }},\n   doc = {{'
    text = manifest_text().replace("doc = {", bin_table, 1)
    write(root, ROCK_DIR / "rock_manifest", text.encode())
    write(root, ROCK_DIR / "bin" / "tool", script)  # luarocks keeps the original here
    write(root, TREE / "bin" / "tool", b"#!/bin/sh\nexec lua /usr/local/.../tool\n")
    assert check_files(root, installed_rock(root)) == []

    write(root, ROCK_DIR / "bin" / "tool", b"changed")
    [problem] = check_files(root, installed_rock(root))
    assert (problem.file.entry, problem.problem) == ("bin/tool", "md5 mismatch")
