"""Rockspecs: dependency strings, the fields a resolver needs, the rockspec inside a rock."""

from __future__ import annotations

import io
import zipfile

import pytest

from qjson_tasks.errors import RockError
from qjson_tasks.luarocks.rockspec import (
    Dependency,
    Rockspec,
    parse_dependency,
    parse_rockspec,
    rockspec_in_archive,
)
from qjson_tasks.luarocks.versions import Requirement

SOURCE = "rocks/cdemo-1.0-1.rockspec"

CDEMO = """-- A rockspec as people write them.
rockspec_format = "3.0"
package = "cdemo"
version = "1.0-1"
source = {
   url = "git+https://example.org/cdemo.git",
   tag = "v1.0",
}
description = {
   summary = "A C module for tests",
   detailed = [[
      Longer text.
   ]],
   license = "MIT",
}
dependencies = {
   "lua >= 5.1, < 5.5",
   "lpeg ~> 1.0",
   "LuaFileSystem",
}
build_dependencies = {
   "qjt-buildtool 1.0",
}
build = {
   type = "builtin",
   modules = {
      cdemo = { sources = { "src/cdemo.c" }, incdirs = { "src" } },
   },
   platforms = { windows = { modules = { cdemo = { libraries = { "ws2_32" } } } } },
}
"""


def requirement(text: str) -> Requirement:
    return Requirement.parse(text)


# --- dependencies ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name", "constraint"),
    [
        ("lua >= 5.1", "lua", ">= 5.1"),
        ("foo ~> 1.0", "foo", "~> 1.0"),
        ("bar", "bar", None),
        ("baz >= 1.2, < 2.0", "baz", ">= 1.2, < 2.0"),
        ("qux 1.0", "qux", "== 1.0"),
        ("lua == 5.1", "lua", "== 5.1"),
        ("lua >= 5.1 < 5.4", "lua", ">= 5.1, < 5.4"),  # luarocks also splits on blanks
        ("lua>=5.1,<5.4", "lua", ">= 5.1, < 5.4"),
        ("foo = 1.0", "foo", "== 1.0"),  # luarocks' convenience spellings
        ("foo != 1.0", "foo", "~= 1.0"),
        ("foo ~= 1.0-2", "foo", "~= 1.0-2"),
        ("  lua-cjson   >=   2.1.0.10-1  ", "lua-cjson", ">= 2.1.0.10-1"),
        ("LuaFileSystem >= 1.8", "luafilesystem", ">= 1.8"),  # luarocks lowercases names
        ("lua_sys.x-1", "lua_sys.x-1", None),
    ],
)
def test_parse_dependency(text: str, name: str, constraint: str | None) -> None:
    dependency = parse_dependency(text, SOURCE)
    expected = None if constraint is None else requirement(constraint)
    assert dependency == Dependency(name, expected)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("bar", "bar"),
        ("lua >= 5.1", "lua >= 5.1"),
        ("qux 1.0", "qux == 1.0"),
        ("baz >= 1.2,< 2.0", "baz >= 1.2, < 2.0"),
    ],
)
def test_dependency_str(text: str, shown: str) -> None:
    assert str(parse_dependency(text, SOURCE)) == shown


@pytest.mark.parametrize(
    ("text", "version", "allowed"),
    [
        ("lua >= 5.1", "5.1", True),
        ("lua >= 5.1", "5.4.6", True),
        ("lua >= 5.1", "5.0", False),
        ("foo ~> 1.0", "1.0.7-1", True),
        ("foo ~> 1.0", "1.1-1", False),
        ("baz >= 1.2, < 2.0", "1.9.9-3", True),
        ("baz >= 1.2, < 2.0", "2.0-1", False),
        ("qux 1.0", "1.0-3", True),
        ("qux 1.0", "1.0.1-1", False),
        ("bar", "0.1-1", True),
        ("bar", "scm-1", True),  # no requirement: anything goes
        ("foo >= 1.0", "scm-1", False),  # a requirement never allows what it can't compare
        ("foo ~= 1.0", "dev-1", False),
        ("foo >= 1.0", "", False),
    ],
)
def test_dependency_allows(text: str, version: str, allowed: bool) -> None:
    assert parse_dependency(text, SOURCE).allows(version) is allowed


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "expected a rock name and constraints"),
        (">= 1.0", "expected a rock name and constraints"),
        ("foo => 1.0", "unknown operator '=>'"),
        ("foo >>= 1.0", "unknown operator '>>='"),
        ("foo >=", "can't read '>='"),
        ("foo >= 1.0, <", "can't read '<'"),
        ("foo >= 1.0 @", "can't read '@'"),
        ("foo >= 3.0rc1", "can't compare version '3.0rc1' (use numbers and dots"),
        ("foo == scm-1", "can't compare version 'scm-1'"),
    ],
)
def test_bad_dependency(text: str, reason: str) -> None:
    with pytest.raises(RockError) as caught:
        parse_dependency(text, SOURCE)
    message = str(caught.value)
    assert message.startswith(f"{SOURCE}: dependency '{text}': ")
    assert reason in message
    assert "\n" not in message


# --- rockspecs ---------------------------------------------------------------------------------


def test_parse_rockspec() -> None:
    assert parse_rockspec(CDEMO, SOURCE) == Rockspec(
        package="cdemo",
        version="1.0-1",
        dependencies=(
            Dependency("lua", requirement(">= 5.1, < 5.5")),
            Dependency("lpeg", requirement("~> 1.0")),
            Dependency("luafilesystem", None),
        ),
        build_dependencies=(Dependency("qjt-buildtool", requirement("1.0")),),
        source_url="git+https://example.org/cdemo.git",
        source_tag="v1.0",
    )


def test_minimal_rockspec() -> None:
    spec = parse_rockspec('package = "tiny"\nversion = "0.1-1"\n', SOURCE)
    assert spec == Rockspec("tiny", "0.1-1", (), (), "")


def test_rockspec_with_a_shared_dependency_list() -> None:
    text = """
local deps = { "lua >= 5.1", "lpeg ~> 1.0" }
package = "demo"
version = "1.0-1"
dependencies = deps
build_dependencies = deps
"""
    spec = parse_rockspec(text, SOURCE)
    expected = (
        Dependency("lua", requirement(">= 5.1")),
        Dependency("lpeg", requirement("~> 1.0")),
    )
    assert spec.dependencies == spec.build_dependencies == expected


def test_rockspec_with_locals_and_platform_overrides() -> None:
    text = """
local package_version = "2.1.0"
package = "demo"
version = package_version .. "-1"
source = { url = "https://example.org/demo-" .. package_version .. ".tar.gz" }
dependencies = {
   "lua >= 5.1",
   platforms = { windows = { "winapi" } },
}
build_dependencies = {}
"""
    spec = parse_rockspec(text, SOURCE)
    assert spec.version == "2.1.0-1"
    assert spec.source_url == "https://example.org/demo-2.1.0.tar.gz"
    assert spec.dependencies == (Dependency("lua", requirement(">= 5.1")),)
    assert spec.build_dependencies == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('version = "1.0-1"', "missing 'package': a rockspec needs package = \"...\""),
        ('package = "a"', "missing 'version': a rockspec needs version = \"...\""),
        ('package = 1\nversion = "1.0-1"', "package: expected a string, got number"),
        ('package = "a"\nversion = {}', "version: expected a string, got table"),
        ('package = "a"\nversion = "1"\nsource = "x"', "source: expected a table, got string"),
        (
            'package = "a"\nversion = "1"\nsource = { url = true }',
            "source.url: expected a string, got boolean",
        ),
        (
            'package = "a"\nversion = "1"\ndependencies = "lua"',
            "dependencies: expected a table, got string",
        ),
        (
            'package = "a"\nversion = "1"\ndependencies = { lua = ">= 5.1" }',
            "dependencies: expected a list of dependency strings",
        ),
        (
            'package = "a"\nversion = "1"\nbuild_dependencies = { "x", { "y" } }',
            "build_dependencies[2]: expected a string, got table",
        ),
        (
            'package = "a"\nversion = "1"\ndependencies = { "lua >> 5.1" }',
            "dependency 'lua >> 5.1': unknown operator '>>'",
        ),
        ('package = "a"\nversion = "1"\nbuild = {', "line 3: unexpected symbol near <eof>"),
        (
            'package = "a"\nversion = "1"\nbuild = { install = io.popen("id") }',
            "line 3: 'io' is not defined (a data file can only use values assigned above)",
        ),
        (
            'package = "a"\nversion = "1"\nbuild = { hook = function() end }',
            "build['hook']: a function is not data (strings, numbers, booleans and tables are)",
        ),
    ],
)
def test_bad_rockspecs(text: str, message: str) -> None:
    with pytest.raises(RockError) as caught:
        parse_rockspec(text, SOURCE)
    assert str(caught.value) == f"{SOURCE}: {message}"


# --- the rockspec in a rock --------------------------------------------------------------------


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_rockspec_in_a_src_rock() -> None:
    rock = zip_bytes(
        {
            "cdemo-1.0-1.rockspec": CDEMO.encode(),
            "cdemo-1.0.tar.gz": b"\x1f\x8b not really",
            "cdemo/rockspecs/old-0.9-1.rockspec": b"ignored: not at the top",
        }
    )
    name, data = rockspec_in_archive(rock, "cdemo-1.0-1.src.rock")
    assert name == "cdemo-1.0-1.rockspec"
    assert parse_rockspec(data.decode(), name).package == "cdemo"


def test_rockspec_in_a_binary_rock() -> None:
    rock = zip_bytes(
        {
            "rock_manifest": b"rock_manifest = {}",
            "lib/cdemo.so": b"\x7fELF",
            "cdemo-1.0-1.rockspec": b'package = "cdemo"',
        }
    )
    assert rockspec_in_archive(rock, "cdemo-1.0-1.linux-x86_64.rock") == (
        "cdemo-1.0-1.rockspec",
        b'package = "cdemo"',
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a readable rock (a zip archive): File is not a zip file"),
        (b"<html>404</html>", "not a readable rock (a zip archive): File is not a zip file"),
        (zip_bytes({"a.tar.gz": b""}), "a rock holds one top-level .rockspec, this one has none"),
        (
            zip_bytes({"a-1-1.rockspec": b"", "b-1-1.rockspec": b""}),
            "a rock holds one top-level .rockspec, this one has a-1-1.rockspec, b-1-1.rockspec",
        ),
    ],
)
def test_bad_rocks(data: bytes, message: str) -> None:
    with pytest.raises(RockError) as caught:
        rockspec_in_archive(data, "x.src.rock")
    assert str(caught.value) == f"x.src.rock: {message}"


def test_corrupt_rock_member() -> None:
    rock = bytearray(zip_bytes({"a-1-1.rockspec": b"package = 'a'\n" * 50}))
    offset = rock.index(b"a-1-1.rockspec") + len("a-1-1.rockspec")  # the compressed data
    rock[offset + 5 : offset + 15] = b"\xff" * 10
    with pytest.raises(RockError, match=r"^x.rock: not a readable rock \(a zip archive\): "):
        rockspec_in_archive(bytes(rock), "x.rock")
