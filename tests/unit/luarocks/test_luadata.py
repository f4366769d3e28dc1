"""Lua data files as luarocks reads them: values, tables, comments, the sandbox, and one-line
errors naming the file."""

from __future__ import annotations

import re
import subprocess
import sys

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
from tests.conftest import PROJECT_DIR
from tests.unit.luarocks.test_rockserver import SERVER_MANIFEST
from tests.unit.luarocks.test_treemanifest import TREE_MANIFEST


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
        ('"f" .. 2.0', "f2.0"),  # as Lua 5.4 prints a float (LuaJIT would print "f2")
        # Real Lua: what evaluates to data is data.
        ("1 + 2 * 3", 7),
        ("7 // 2", 3),
        ("2 ^ 10", 1024.0),
        ("#'abc'", 3),
        ("(1 + 1) .. '-1'", "2-1"),
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


def test_multiple_assignment() -> None:
    assert parse_lua_data("a, b = 1, 2", "f") == {"a": 1, "b": 2}


def test_nil_assignment_removes_a_name() -> None:
    assert parse_lua_data("a = 1\nb = 2\na = nil\nc = nil\n", "f") == {"b": 2}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "-- nothing here\n--[[ nor here ]]",
        "local unused = 1",
        "local function helper() end",
        "return { a = 1 }",  # luarocks ignores what a data file returns
    ],
)
def test_files_that_assign_no_global(text: str) -> None:
    assert parse_lua_data(text, "f") == {}


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


@pytest.mark.parametrize("text", ["#!/usr/bin/env lua\na = 1\n", "\ufeffa = 1\n"])
def test_shebang_and_byte_order_mark_are_skipped(text: str) -> None:
    assert parse_lua_data(text, "f") == {"a": 1}


def test_a_skipped_shebang_line_still_counts_in_line_numbers() -> None:
    with pytest.raises(RockError, match=r"^f: line 3: 'b' is not defined"):
        parse_lua_data("#!/usr/bin/env lua\n\na = b\n", "f")


def test_string_concatenation() -> None:
    text = """
local name, major, minor = "demo", 2, 1
package = name .. "-lib"
version = major .. "." .. minor .. ".0-" .. 1
source = { url = "https://example.org/" .. package .. "/v" .. version .. ".tar.gz" }
"""
    assert parse_lua_data(text, "f") == {
        "package": "demo-lib",
        "version": "2.1.0-1",
        "source": {"url": "https://example.org/demo-lib/v2.1.0-1.tar.gz"},
    }


def test_a_local_table_reused_in_two_places() -> None:
    text = """
local common = { "lua >= 5.1", "lpeg" }
dependencies = common
build_dependencies = common
nested = { first = common, second = { common } }
"""
    data = parse_lua_data(text, "f")
    expected = {1: "lua >= 5.1", 2: "lpeg"}
    assert data["dependencies"] == data["build_dependencies"] == expected
    assert data["nested"] == {"first": expected, "second": {1: expected}}


def test_shared_tables_are_read_once() -> None:
    # 2^60 paths to the innermost table: it must be read once, not once per path.
    text = "local t = {}\nfor i = 1, 60 do t = { t, t } end\nx = t\n"
    table = parse_lua_data(text, "f")["x"]
    for _ in range(60):
        assert isinstance(table, dict)
        assert table[1] is table[2]
        table = table[1]
    assert table == {}


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
    # Lua keeps no order of keys: they come as luarocks writes them, numbers then strings.
    assert list(table) == [1, 1.5, 2, 4, 10, "concat", "dashed-key", "long key", "name"]


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
        ("{x = 1, x = 2}", {"x": 2}),  # the last one wins, as in luarocks
        ('{"one", [1] = "two"}', {1: "one"}),  # Lua stores positional entries last
        ("{[true and 'k' or 'j'] = 1}", {"k": 1}),
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
        ('a = "open\nb = 1', 1, "unfinished string near '\"open'"),
        ("a = 'open", 1, "unfinished string near <eof>"),
        ('a = 1\nb = "x\\', 2, "unfinished string near <eof>"),
        ("a = 1\nb = [[open\n\n", 4, "unfinished long string (starting at line 2) near <eof>"),
        ("a = [==[open]=]", 1, "unfinished long string (starting at line 1) near <eof>"),
        ("--[[ open\na = 1", 2, "unfinished long comment (starting at line 1) near <eof>"),
        ('a = "\\q"', 1, "invalid escape sequence near '\"\\q'"),
        ('a = "\\256"', 1, "decimal escape too large near '\"\\256\"'"),
        ('a = "\\xZ1"', 1, "hexadecimal digit expected near '\"\\xZ'"),
        ("a = 12abc", 1, "malformed number near '12abc'"),
        ("a = 0x", 1, "malformed number near '0x'"),
        ("a = 1..2", 1, "malformed number near '1..2'"),
        ("\n\na = @", 3, "unexpected symbol near '@'"),
        ("a = 1\nprint('x')", 2, "'print' is not defined"),
        ("a.b = 1", 1, "'a' is not defined"),
        ("if x then end", 1, "'x' is not defined"),
        ("= 1", 1, "unexpected symbol near '='"),
        ("a = ", 1, "unexpected symbol near <eof>"),
        ("a = }", 1, "unexpected symbol near '}'"),
        ("\na = os.getenv('HOME')", 2, "'os' is not defined"),
        ("a = b", 1, "'b' is not defined (a data file can only use values assigned above)"),
        ("a = {\n  1,\n  2\n  3\n}", 4, "'}' expected (to close '{' at line 1) near '3'"),
        ("a = {\n x = 1,", 2, "unexpected symbol near <eof>"),
        ("a = { [nil] = 1 }", 1, "table index is nil"),
        ("a = { [1 = 2 }", 1, "']' expected near '='"),
        ("a = { end = 1 }", 1, "unexpected symbol near 'end'"),
        ('a = "x" .. {}', 1, "attempt to concatenate a table value"),
        ('a = "x" .. nil', 1, "attempt to concatenate a nil value"),
        ("a = true .. 'x'", 1, "attempt to concatenate a boolean value"),
        ("a = -'x'", 1, "attempt to perform arithmetic on a string value"),
        ("a = -{}", 1, "attempt to perform arithmetic on a table value"),
        ("a = [[\nline 2\nline 3]] b", 3, "syntax error near <eof>"),
        ("a = 1 [[x\ny]]", 2, "unexpected symbol near '[[x\\ny]]'"),  # the newline escaped
    ],
)
def test_errors_name_the_file_and_line(text: str, line: int, message: str) -> None:
    got = error(text)
    assert got.startswith(f"dir/file.rockspec: line {line}: ")
    assert message in got


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('a = "\\255"', "a: string is not UTF-8 text"),
        ('a = { b = { "\\u{110000}" } }', "a['b'][1]: string is not UTF-8 text"),
        ('a = "\\u{D800}"', "a: string is not UTF-8 text"),
        ('a = { ["\\xff"] = 1 }', "a: a key is not UTF-8 text"),
        ("a = { [true] = 1 }", "a: a table key must be a string or a number, not a boolean"),
        (
            "a = { b = { [{}] = 1 } }",
            "a['b']: a table key must be a string or a number, not a table",
        ),
        ("local t = {}\nt.self = t\na = { t }", "a[1]['self']: a table that holds itself"),
        ("a = _ENV", "a: a table that holds itself"),
        ("_ENV[1] = 2", "a global name must be a string, not number"),
    ],
)
def test_values_that_are_not_data_name_where_they_are(text: str, message: str) -> None:
    assert error(text) == f"dir/file.rockspec: {message}"


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    depth = 5_000  # Lua's parser stops at 200 levels
    assert error("a = " + "{" * depth + "}" * depth) == "dir/file.rockspec: C stack overflow"
    built = "local t = {}\nfor i = 1, 5000 do t = { t } end\na = t\n"  # no parser limit
    assert error(built) == "dir/file.rockspec: a: tables nested deeper than 100 levels"
    assert error("a = " + "{" * 101 + "}" * 101).endswith("tables nested deeper than 100 levels")


def test_nesting_as_deep_as_manifests_go_is_fine() -> None:
    assert value("{" * 100 + "}" * 100) is not None


# --- the sandbox -------------------------------------------------------------------------------

# What a hostile or broken file might try. Nothing of Lua's standard library is there, a loop
# stops, memory is capped, and bytecode is refused: each is a one-line error naming the file.
# (test_rock_manifest runs them too, hence the name of the function values.)
HOSTILE = [
    ('os.execute("touch /tmp/qjson-pwned")', r"line 1: 'os' is not defined \(.*\)"),
    ('x = io.open("/etc/passwd"):read("a")', r"line 1: 'io' is not defined \(.*\)"),
    ('require "x"', r"line 1: 'require' is not defined \(.*\)"),
    ("x = load('return 1')()", r"line 1: 'load' is not defined \(.*\)"),
    ("debug.sethook()", r"line 1: 'debug' is not defined \(.*\)"),
    ('x = dofile("/etc/passwd")', r"line 1: 'dofile' is not defined \(.*\)"),
    ('x = string.rep("x", 2^40)', r"line 1: 'string' is not defined \(.*\)"),
    ("x = _G", r"line 1: '_G' is not defined \(.*\)"),
    ("collectgarbage('stop')", r"line 1: 'collectgarbage' is not defined \(.*\)"),
    ('x = ("x"):rep(2^40)', r"line 1: attempt to index a string value \(constant 'x'\)"),
    (
        "while true do end",
        r"still running after \d+ Lua instructions \(a data file only assigns values\)",
    ),
    (
        'local s = "x"\nfor i = 1, 40 do s = s .. s end\nx = s',
        r"needs more than \d+ MiB of memory to read",
    ),
    ("local t = {}\nfor i = 1, 1e9 do t[i] = i end", r"needs more than \d+ MiB of memory to read"),
    ("\x1bLuaT\x00\x19\x93\r\n\x1a\n", r"attempt to load a binary chunk \(mode is 't'\)"),
    (
        "rock_manifest = { hook = function() end }",
        r"rock_manifest\['hook'\]: a function is not data \(.*\)",
    ),
    (
        "function rock_manifest() end",
        r"rock_manifest: a function is not data \(strings, numbers, booleans and tables are\)",
    ),
]


@pytest.mark.parametrize(("text", "message"), HOSTILE)
def test_hostile_files_are_one_line_errors(text: str, message: str) -> None:
    got = error(text)
    assert re.fullmatch(f"dir/file\\.rockspec: {message}", got), got


def test_a_function_in_a_rockspec_field() -> None:
    got = error('package = "a"\nbuild = { type = "builtin", hook = function() end }')
    assert got == (
        "dir/file.rockspec: build['hook']: a function is not data"
        " (strings, numbers, booleans and tables are)"
    )


def test_a_file_may_run_code_that_ends() -> None:
    text = "local n = 0\nfor i = 1, 1000 do n = n + i end\ntotal = n\n"
    assert parse_lua_data(text, "f") == {"total": 500500}


def test_each_file_runs_in_a_fresh_sandbox() -> None:
    parse_lua_data("a = 1", "first")
    with pytest.raises(RockError, match=r"^second: line 1: 'a' is not defined"):
        parse_lua_data("b = a", "second")


def test_importing_the_readers_does_not_import_lupa() -> None:
    code = (
        "import sys\n"
        "import qjson_tasks.luarocks.rock_manifest, qjson_tasks.luarocks.rockserver\n"
        "import qjson_tasks.luarocks.rockspec, qjson_tasks.luarocks.treemanifest\n"
        "assert not [m for m in sys.modules if m.startswith('lupa')], 'lupa imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PROJECT_DIR)
