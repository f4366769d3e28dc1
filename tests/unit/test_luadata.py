"""Lua data files as luarocks writes them: values, tables, comments, and one-line errors."""

from __future__ import annotations

import pytest

from qjson_tasks.errors import RockError
from qjson_tasks.luarocks.luadata import (
    LuaValue,
    expect_sequence,
    expect_string,
    expect_table,
    is_sequence,
    parse_lua_data,
    sequence,
)
from tests.unit.test_rockserver import SERVER_MANIFEST
from tests.unit.test_treemanifest import TREE_MANIFEST


def value(expression: str) -> LuaValue:
    return parse_lua_data(f"x = {expression}\n", "test.lua")["x"]


def error(text: str) -> str:
    with pytest.raises(RockError) as caught:
        parse_lua_data(text, "dir/file.rockspec")
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- values ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('"double"', "double"),
        ("'single'", "single"),
        ('"it\'s"', "it's"),
        ("'say \"hi\"'", 'say "hi"'),
        ('""', ""),
        (r'"a\nb\tc\\d\"e\'f"', "a\nb\tc\\d\"e'f"),
        (r'"\a\b\f\r\v"', "\a\b\f\r\v"),
        (r'"\65\066\0677"', "ABC7"),  # at most three digits
        (r'"\0"', "\0"),
        (r'"\x41\x62"', "Ab"),
        (r'"\u{48}\u{e9}\u{1F600}"', "H\u00e9\U0001f600"),
        (r'"\195\169"', "\u00e9"),  # UTF-8 bytes spelled as decimal escapes
        ('"line\\\nnext"', "line\nnext"),  # a backslash-newline is a newline
        ('"a\\z   \n   b"', "ab"),  # \z skips the blanks after it
        ('"caf\u00e9"', "caf\u00e9"),
        ("[[long]]", "long"),
        ("[[\nfirst newline dropped\n]]", "first newline dropped\n"),
        ("[==[has ]] and ]=] inside]==]", "has ]] and ]=] inside"),
        ("[[no \\n escapes]]", "no \\n escapes"),
        ("[[crlf\r\nline]]", "crlf\nline"),
        ("42", 42),
        ("0", 0),
        ("3.5", 3.5),
        ("5.", 5.0),
        (".5", 0.5),
        ("1e3", 1000.0),
        ("2.5E-1", 0.25),
        ("0x1F", 31),
        ("0XfF", 255),
        ("0x1.8p1", 3.0),
        ("-7", -7),
        ("- 2.5", -2.5),
        ("- -3", 3),
        ("true", True),
        ("false", False),
        ('"v" .. "1.0"', "v1.0"),
        ('"a" .. "b" .. [[c]]', "abc"),
        ('"v" .. 1 .. "." .. 2.5', "v1.2.5"),
        ('"n" .. -1', "n-1"),
        ('"f" .. 2.0', "f2"),  # as LuaJIT prints numbers
    ],
)
def test_values(expression: str, expected: LuaValue) -> None:
    result = value(expression)
    assert result == expected
    assert type(result) is type(expected)


def test_assignments_separated_by_newlines_semicolons_or_nothing() -> None:
    text = 'a = 1; b = "two"\nc = {} d = true;;\n\n e = 5'
    assert parse_lua_data(text, "f") == {"a": 1, "b": "two", "c": {}, "d": True, "e": 5}


def test_assignments_keep_file_order_and_later_ones_win() -> None:
    assert list(parse_lua_data("b = 1\na = 2\nb = 3\n", "f").items()) == [("b", 3), ("a", 2)]


def test_nil_assignment_removes_a_name() -> None:
    assert parse_lua_data("a = 1\nb = 2\na = nil\nc = nil\n", "f") == {"b": 2}


def test_empty_and_comment_only_files() -> None:
    assert parse_lua_data("", "f") == {}
    assert parse_lua_data("-- nothing here\n--[[ nor here ]]", "f") == {}


def test_locals_and_earlier_names_can_be_used() -> None:
    text = """
local package_version = "0.3.0"
local rockspec_revision = "1"
local unset
package = "lua-demo"
version = package_version .. "-" .. rockspec_revision
source = {
   url = "https://example.org/" .. package .. "/v" .. package_version .. ".tar.gz",
   tag = package_version,
}
alias = source
"""
    data = parse_lua_data(text, "demo.rockspec")
    assert data["version"] == "0.3.0-1"
    assert data["source"] == {
        "url": "https://example.org/lua-demo/v0.3.0.tar.gz",
        "tag": "0.3.0",
    }
    assert data["alias"] == data["source"]
    # Locals are not part of the result; assigning to a local changes the local.
    assert set(data) == {"package", "version", "source", "alias"}
    assert parse_lua_data("local a = 1\na = 2\nb = a\n", "f") == {"b": 2}


def test_shebang_and_byte_order_mark_are_skipped() -> None:
    assert parse_lua_data("#!/usr/bin/env lua\na = 1\n", "f") == {"a": 1}
    assert parse_lua_data("\ufeffa = 1\n", "f") == {"a": 1}


# --- tables ------------------------------------------------------------------------------------


def test_table_constructor_forms() -> None:
    table = value(
        """{
        "first",
        name = "n",
        ["dashed-key"] = 1,
        [ [[long key]] ] = 2,
        [10] = "ten",
        [4.0] = "four",
        [1.5] = "one and a half",
        ["con" .. "cat"] = true;
        {nested = {}},
    }"""
    )
    assert table == {
        1: "first",
        "name": "n",
        "dashed-key": 1,
        "long key": 2,
        10: "ten",
        4: "four",
        1.5: "one and a half",
        "concat": True,
        2: {"nested": {}},
    }
    assert list(table) == [1, "name", "dashed-key", "long key", 10, 4, 1.5, "concat", 2]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("{}", {}),
        ("{ }", {}),
        ("{1, 2, 3}", {1: 1, 2: 2, 3: 3}),
        ("{1; 2; 3;}", {1: 1, 2: 2, 3: 3}),
        ("{1, 2, 3,}", {1: 1, 2: 2, 3: 3}),
        ("{a = 1; b = 2,}", {"a": 1, "b": 2}),
        ("{nil, 2}", {2: 2}),  # a nil entry is no entry, but it takes its place
        ("{a = nil}", {}),
        ("{{}, {{}}}", {1: {}, 2: {1: {}}}),
    ],
)
def test_table_separators_and_nil(expression: str, expected: LuaValue) -> None:
    assert value(expression) == expected


def test_sequence_and_is_sequence() -> None:
    assert sequence({1: "a", 2: "b", 3: "c"}) == ["a", "b", "c"]
    assert sequence({2: "b", 1: "a"}) == ["a", "b"]  # by index, not by insertion
    assert sequence({1: "a", 3: "c", "k": "v"}) == ["a"]  # stops at the first gap, as ipairs
    assert sequence({}) == []
    assert is_sequence({}) is True
    assert is_sequence({1: "a", 2: "b"}) is True
    assert is_sequence({1: "a", 3: "c"}) is False
    assert is_sequence({1: "a", "platforms": {}}) is False
    table = value('{"x", "y", z = 1}')
    assert isinstance(table, dict)
    assert sequence(table) == ["x", "y"]


def test_expect_helpers() -> None:
    assert expect_table({"a": 1}, "f: t") == {"a": 1}
    assert expect_string("s", "f: s") == "s"
    assert expect_sequence({1: "a"}, "f: l") == ["a"]
    with pytest.raises(RockError, match=r"^f: source: expected a table, got string$"):
        expect_table("x", "f: source")
    with pytest.raises(RockError, match=r"^f: url: expected a string, got nil$"):
        expect_string(None, "f: url")
    with pytest.raises(RockError, match=r"^f: version: expected a string, got number$"):
        expect_string(1, "f: version")
    with pytest.raises(RockError, match=r"^f: flag: expected a string, got boolean$"):
        expect_string(True, "f: flag")
    with pytest.raises(RockError, match=r"^f: deps: expected a list, got a table with key 'x'$"):
        expect_sequence({1: "a", "x": "b"}, "f: deps")


# --- comments ----------------------------------------------------------------------------------


def test_comments() -> None:
    text = """-- a line comment
a = 1 -- after a value
--[[ a long
comment ]] b = 2
--[==[ with ]] inside
]==]
c = --[[ between ]] 3
--[ not long: a line comment ]]
d = "-- not a comment"
e = 4 -- no newline at the end"""
    assert parse_lua_data(text, "f") == {"a": 1, "b": 2, "c": 3, "d": "-- not a comment", "e": 4}


# --- what luarocks writes ----------------------------------------------------------------------


def test_tree_manifest_written_by_luarocks() -> None:
    data = parse_lua_data(TREE_MANIFEST, "rocks-5.1/manifest")
    assert list(data) == ["commands", "dependencies", "modules", "repository"]
    assert data["commands"] == {}
    assert data["dependencies"] == {
        "cdemo": {
            "1.0-1": {
                1: {
                    "constraints": {1: {"op": ">=", "version": {1: 5, 2: 1, "string": "5.1"}}},
                    "name": "lua",
                }
            }
        },
        "qjt-buildtool": {"1.0-1": {}},
    }
    assert data["modules"] == {
        "cdemo": {1: "cdemo/1.0-1"},
        "qjt_buildtool": {1: "qjt-buildtool/1.0-1"},
    }
    repository = data["repository"]
    assert isinstance(repository, dict)
    assert repository["cdemo"] == {
        "1.0-1": {
            1: {
                "arch": "installed",
                "commands": {},
                "dependencies": {},
                "modules": {"cdemo": "cdemo.so"},
            }
        }
    }


def test_server_manifest_written_by_luarocks_admin() -> None:
    data = parse_lua_data(SERVER_MANIFEST, "manifest")
    assert data == {
        "commands": {},
        "modules": {},
        "repository": {
            "cdemo": {"1.0-1": {1: {"arch": "src"}}},
            "qjt-buildtool": {"1.0-1": {1: {"arch": "src"}}},
        },
    }


def test_luarocks_q_format_escapes() -> None:
    # Lua 5.1's %q, which luarocks' persist uses, writes a newline as a backslash-newline.
    text = 'description = { summary = "one\\\ntwo", detailed = "tab\\9 and \\0 nul" }\n'
    assert parse_lua_data(text, "f")["description"] == {
        "summary": "one\ntwo",
        "detailed": "tab\t and \0 nul",
    }


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('a = "open\nb = 1', 1, "unterminated string"),
        ("a = 'open", 1, "unterminated string"),
        ('a = 1\nb = "x\\', 2, "unterminated string"),
        ("a = 1\nb = [[open\n\n", 2, "unterminated long string"),
        ("a = [==[open]=]", 1, "unterminated long string"),
        ("--[[ open\na = 1", 1, "unterminated long comment"),
        ('a = "\\q"', 1, "invalid escape \\q in a string"),
        ('a = "\\256"', 1, "decimal escape \\256 is too large"),
        ('a = "\\xZ1"', 1, "\\x needs two hexadecimal digits"),
        ('a = "\\u{110000}"', 1, "\\u needs a code point"),
        ('a = "\\255"', 1, "string is not UTF-8 text"),
        ("a = 12abc", 1, "malformed number near '12a'"),
        ("a = 0x", 1, "malformed number"),
        ("a = 1..2", 1, "malformed number"),
        ("\n\na = @", 3, "unexpected character '@'"),
        ("a = 1\nprint('x')", 2, "expected '=' after 'print', got '('"),
        ("a.b = 1", 1, "expected '=' after 'a', got '.'"),
        ("return { a = 1 }", 1, "'return' is not supported in a data file"),
        ("local function f() end", 1, "'function' is not supported in a data file"),
        ("if x then end", 1, "'if' is not supported in a data file"),
        ("a, b = 1, 2", 1, "expected '=' after 'a', got ','"),
        ("= 1", 1, "expected a name to assign to, got '='"),
        ("a = 1 + 2", 1, "expected a name to assign to, got '+'"),
        ("a = ", 1, "expected a value, got end of file"),
        ("a = }", 1, "expected a value, got '}'"),
        ("\na = os.getenv('HOME')", 2, "'os' is not defined"),
        ("a = b", 1, "'b' is not defined (a data file can only use values assigned above)"),
        ("a = {\n  1,\n  2\n  3\n}", 4, "expected ',' or '}' in a table, got '3'"),
        ("a = {\n x = 1,", 2, "expected a value, got end of file"),
        ("a = {\n x = 1,\n x = 2 }", 3, "duplicate key 'x' in a table"),
        ('a = { "one", [1] = "two" }', 1, "duplicate key 1 in a table"),
        ("a = { [nil] = 1 }", 1, "a table key must be a string or a number, not a nil"),
        ("a = { [true] = 1 }", 1, "a table key must be a string or a number, not a boolean"),
        ("a = { [{}] = 1 }", 1, "a table key must be a string or a number, not a table"),
        ("a = { [1 = 2 }", 1, "expected ']', got '='"),
        ("a = { end = 1 }", 1, "expected a value, got 'end'"),
        ('a = "x" .. {}', 1, "'..' joins strings and numbers, not a table"),
        ('a = "x" .. nil', 1, "'..' joins strings and numbers, not a nil"),
        ("a = true .. 'x'", 1, "'..' joins strings and numbers, not a boolean"),
        ("a = -'x'", 1, "'-' applies to numbers, not a string"),
        ("a = -{}", 1, "'-' applies to numbers, not a table"),
        ("a = [[\nline 2\nline 3]] b", 3, "expected '=' after 'b', got end of file"),
    ],
)
def test_errors_name_the_file_and_line(text: str, line: int, message: str) -> None:
    got = error(text)
    assert got.startswith(f"dir/file.rockspec: line {line}: ")
    assert message in got


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    depth = 5_000
    got = error("a = " + "{" * depth + "}" * depth)
    assert got == "dir/file.rockspec: line 1: tables nested deeper than 100 levels"


def test_nesting_as_deep_as_manifests_go_is_fine() -> None:
    assert value("{" * 50 + "}" * 50) is not None
