import hashlib
from pathlib import Path, PurePosixPath

import pytest

from qjson_tasks.errors import VerificationError
from qjson_tasks.luarocks.rock_manifest import (
    InstalledRock,
    ManifestFile,
    check_files,
    deployed_path,
    find_installed_rocks,
    parse_rock_manifest,
)

TREE = PurePosixPath("/usr/local")
ROCK_DIR = TREE / "lib/luarocks/rocks-5.1/qjson-demo/0.1.0-1"

CONTENTS = {
    "lib/qjson.so": b"\x7fELF not really",
    "lua/qjson.lua": b"return require('qjson.lib')\n",
    "lua/qjson/lib.lua": b"return {}\n",
    "lua/qjson/table.lua": b"return {table = true}\n",
    "doc/README.md": b"# qjson\n",
    "qjson-demo-0.1.0-1.rockspec": b'package = "qjson-demo"\n',
}
INSTALLED_AT = {
    "lib/qjson.so": "/usr/local/lib/lua/5.1/qjson.so",
    "lua/qjson.lua": "/usr/local/share/lua/5.1/qjson.lua",
    "lua/qjson/lib.lua": "/usr/local/share/lua/5.1/qjson/lib.lua",
    "lua/qjson/table.lua": "/usr/local/share/lua/5.1/qjson/table.lua",
    "doc/README.md": f"{ROCK_DIR}/doc/README.md",
    "qjson-demo-0.1.0-1.rockspec": f"{ROCK_DIR}/qjson-demo-0.1.0-1.rockspec",
}


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def manifest_text() -> str:
    """A rock_manifest for CONTENTS, written the way luarocks writes it."""
    m = {entry: md5(data) for entry, data in CONTENTS.items()}
    return f"""rock_manifest = {{
   doc = {{
      ["README.md"] = "{m["doc/README.md"]}"
   }},
   lib = {{
      ["qjson.so"] = "{m["lib/qjson.so"]}"
   }},
   lua = {{
      ["qjson.lua"] = "{m["lua/qjson.lua"]}",
      qjson = {{
         ["lib.lua"] = '{m["lua/qjson/lib.lua"]}',
         ["table.lua"] = "{m["lua/qjson/table.lua"]}"
      }}
   }},
   ["qjson-demo-0.1.0-1.rockspec"] = "{m["qjson-demo-0.1.0-1.rockspec"]}"
}}
"""


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


# -- parsing ------------------------------------------------------------------


def test_parse_nested_and_both_quote_styles() -> None:
    parsed = parse_rock_manifest(manifest_text(), "rock_manifest")
    assert set(parsed) == {"doc", "lib", "lua", "qjson-demo-0.1.0-1.rockspec"}
    assert parsed["lua"]["qjson"]["lib.lua"] == md5(CONTENTS["lua/qjson/lib.lua"])
    assert parsed["lib"] == {"qjson.so": md5(CONTENTS["lib/qjson.so"])}


def test_parse_separators_and_empty_tables() -> None:
    text = 'rock_manifest={lua={};bin={x=\'1\';};["a b"]="2",}'
    assert parse_rock_manifest(text, "m") == {"lua": {}, "bin": {"x": "1"}, "a b": "2"}


def test_parse_escapes() -> None:
    text = r'rock_manifest = { ["it\'s \"q\"\\"] = "\65\066\0671", [' + "'\\n'] = '' }"
    assert parse_rock_manifest(text, "m") == {'it\'s "q"\\': "ABC1", "\n": ""}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "line 1: expected 'rock_manifest', got end of file"),
        ("manifest = {}", "expected 'rock_manifest'"),
        ("rock_manifest = {", "expected a key, got end of file"),
        ('rock_manifest = {}\nx = "1"', "line 2: expected end of file, got name 'x'"),
        ("rock_manifest = { a = 1 }", "unexpected character '1'"),
        ("rock_manifest = { a = b }", "expected a string or a table, got name 'b'"),
        ('rock_manifest = { "a" }', "expected a key, got string 'a'"),
        ('rock_manifest = { a = "1" b = "2" }', "expected ',' or '}', got name 'b'"),
        ('rock_manifest = { a = "1", a = "2" }', "duplicate key 'a'"),
        ('rock_manifest = { [a] = "1" }', "expected a string key"),
        ('rock_manifest = { end = "1" }', "expected a key, got name 'end'"),
        ('rock_manifest = { [".."] = "1" }', "bad file name '..'"),
        ('rock_manifest = { ["a/b"] = "1" }', "bad file name 'a/b'"),
        ('rock_manifest = {\n a = "unterminated }', "line 2: unterminated string"),
        ('rock_manifest = { a = "x\\q" }', "unsupported escape \\q"),
        ('rock_manifest = { a = "\\300" }', "bad escape \\300"),
        ("rock_manifest = {} -- comment", "unexpected character '-'"),
        ("rock_manifest = { a = [[long]] }", "expected a string or a table"),
    ],
)
def test_parse_rejects_malformed(text: str, message: str) -> None:
    with pytest.raises(VerificationError) as caught:
        parse_rock_manifest(text, "/x/rock_manifest")
    assert str(caught.value).startswith("/x/rock_manifest: line ")
    assert message in str(caught.value)


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


def test_find_installed_rocks_names_a_malformed_manifest(root: Path) -> None:
    write(root, ROCK_DIR / "rock_manifest", b"rock_manifest = { lua = 5 }")
    with pytest.raises(VerificationError, match=f"^{ROCK_DIR}/rock_manifest: line 1: "):
        find_installed_rocks(root, TREE, "5.1")


def test_find_installed_rocks_names_a_binary_manifest(root: Path) -> None:
    write(root, ROCK_DIR / "rock_manifest", b"rock_manifest = { lua = '\xff' }")
    with pytest.raises(VerificationError, match=f"^{ROCK_DIR}/rock_manifest: not UTF-8"):
        find_installed_rocks(root, TREE, "5.1")


# -- checking -----------------------------------------------------------------


def test_check_files_clean(root: Path) -> None:
    assert check_files(root, installed_rock(root)) == []


def test_check_files_missing(root: Path) -> None:
    (root / INSTALLED_AT["lua/qjson/table.lua"].lstrip("/")).unlink()
    [problem] = check_files(root, installed_rock(root))
    assert problem.problem == "missing"
    assert problem.file.entry == "lua/qjson/table.lua"
    assert problem.actual_md5 is None
    assert problem.message == (
        "/usr/local/share/lua/5.1/qjson/table.lua (lua/qjson/table.lua): missing"
    )


def test_check_files_md5_mismatch(root: Path) -> None:
    write(root, INSTALLED_AT["lib/qjson.so"], b"stripped")
    [problem] = check_files(root, installed_rock(root))
    expected, actual = md5(CONTENTS["lib/qjson.so"]), md5(b"stripped")
    assert (problem.problem, problem.expected_md5, problem.actual_md5) == (
        "md5 mismatch",
        expected,
        actual,
    )
    assert expected in problem.message
    assert actual in problem.message
    assert "/usr/local/lib/lua/5.1/qjson.so" in problem.message


def test_check_files_directory_instead_of_file(root: Path) -> None:
    host = root / INSTALLED_AT["doc/README.md"].lstrip("/")
    host.unlink()
    host.mkdir()
    [problem] = check_files(root, installed_rock(root))
    assert problem.problem == "not a file"


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
