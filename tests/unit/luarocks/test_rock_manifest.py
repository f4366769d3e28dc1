"""rock_manifest files: the md5 of each file of a rock, read as the Lua data luarocks writes."""

import hashlib
import re

import pytest

from qjson_tasks.errors import VerificationError
from qjson_tasks.luarocks.rock_manifest import MAX_ENTRIES, parse_rock_manifest
from tests.unit.luarocks.test_luadata import HOSTILE

CONTENTS = {
    "lib/qjson.so": b"\x7fELF not really",
    "lua/qjson.lua": b"return require('qjson.lib')\n",
    "lua/qjson/lib.lua": b"return {}\n",
    "lua/qjson/table.lua": b"return {table = true}\n",
    "doc/README.md": b"# qjson\n",
    "qjson-demo-0.1.0-1.rockspec": b'package = "qjson-demo"\n',
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


def test_parse_nested_and_both_quote_styles() -> None:
    parsed = parse_rock_manifest(manifest_text(), "rock_manifest")
    assert list(parsed) == ["doc", "lib", "lua", "qjson-demo-0.1.0-1.rockspec"]
    lua = parsed["lua"]
    assert isinstance(lua, dict)
    assert lua["qjson"] == {
        "lib.lua": md5(CONTENTS["lua/qjson/lib.lua"]),
        "table.lua": md5(CONTENTS["lua/qjson/table.lua"]),
    }
    assert parsed["lib"] == {"qjson.so": md5(CONTENTS["lib/qjson.so"])}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'rock_manifest={lua={};bin={x=\'1\';};["a b"]="2",}',
            {"lua": {}, "bin": {"x": "1"}, "a b": "2"},
        ),
        (
            r'rock_manifest = { ["it\'s \"q\"\\"] = "\65\066\0671", [' + "'\\n'] = '' }",
            {'it\'s "q"\\': "ABC1", "\n": ""},
        ),
        # Lua that luarocks reads as well: comments, long strings, a repeated key (the last
        # one wins), names and joins.
        ("rock_manifest = {} -- comment", {}),
        ("rock_manifest = { a = [[long]] }", {"a": "long"}),
        ('rock_manifest = { a = "1", a = "2" }', {"a": "2"}),
        (
            'local md5 = "0123"\nrock_manifest = { a = md5 .. "4", b = md5 }',
            {"a": "01234", "b": "0123"},
        ),
    ],
)
def test_parse_lua_forms(text: str, expected: dict[str, object]) -> None:
    assert parse_rock_manifest(text, "m") == expected


def test_a_directory_table_used_twice_is_listed_twice() -> None:
    text = 'local docs = { ["README.md"] = "1" }\nrock_manifest = { doc = docs, other = docs }'
    assert parse_rock_manifest(text, "m") == {
        "doc": {"README.md": "1"},
        "other": {"README.md": "1"},
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not a rock_manifest (no 'rock_manifest' table)"),
        ("manifest = {}", "unexpected global 'manifest' (a rock_manifest sets only rock_manifest)"),
        (
            'rock_manifest = {}\nx = "1"',
            "unexpected global 'x' (a rock_manifest sets only rock_manifest)",
        ),
        ('rock_manifest = "x"', "rock_manifest: expected a table, got string"),
        ("rock_manifest = {", "line 1: unexpected symbol near <eof>"),
        (
            "rock_manifest = { a = 1 }",
            "rock_manifest['a']: expected an md5 string or a table, got number",
        ),
        (
            "rock_manifest = { a = { b = true } }",
            "rock_manifest['a']['b']: expected an md5 string or a table, got boolean",
        ),
        (
            "rock_manifest = { a = b }",
            "line 1: 'b' is not defined (a data file can only use values assigned above)",
        ),
        ('rock_manifest = { "a" }', "rock_manifest: expected file names as keys, got the number 1"),
        ('rock_manifest = { a = "1" b = "2" }', "line 1: '}' expected near 'b'"),
        (
            'rock_manifest = { [a] = "1" }',
            "line 1: 'a' is not defined (a data file can only use values assigned above)",
        ),
        ('rock_manifest = { end = "1" }', "line 1: unexpected symbol near 'end'"),
        ('rock_manifest = { [".."] = "1" }', "rock_manifest: bad file name '..'"),
        ('rock_manifest = { ["a/b"] = "1" }', "rock_manifest: bad file name 'a/b'"),
        ('rock_manifest = { lua = { [""] = "1" } }', "rock_manifest['lua']: bad file name ''"),
        ('rock_manifest = { ["a\\0b"] = "1" }', "rock_manifest: bad file name 'a\\x00b'"),
        ('rock_manifest = {\n a = "unterminated }', "line 2: unfinished string near <eof>"),
        ('rock_manifest = { a = "x\\q" }', "line 1: invalid escape sequence near '\"x\\q'"),
        ('rock_manifest = { a = "\\300" }', "line 1: decimal escape too large near '\"\\300\"'"),
        ('rock_manifest = { a = "\\255" }', "rock_manifest['a']: string is not UTF-8 text"),
    ],
)
def test_parse_rejects_malformed(text: str, message: str) -> None:
    with pytest.raises(VerificationError) as caught:
        parse_rock_manifest(text, "/x/rock_manifest")
    assert str(caught.value) == f"/x/rock_manifest: {message}"


def test_shared_tables_cannot_make_a_huge_listing() -> None:
    # 2^30 files from a few lines: listing them would never end.
    text = 'local d = { a = "1" }\nfor i = 1, 30 do d = { a = d, b = d } end\nrock_manifest = d'
    with pytest.raises(VerificationError) as caught:
        parse_rock_manifest(text, "/x/rock_manifest")
    assert str(caught.value) == f"/x/rock_manifest: more than {MAX_ENTRIES} entries"


@pytest.mark.parametrize(("text", "message"), HOSTILE)
def test_hostile_rock_manifests_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(VerificationError) as caught:
        parse_rock_manifest(text, "/x/rock_manifest")
    assert re.fullmatch(f"/x/rock_manifest: {message}", str(caught.value)), str(caught.value)
