"""Read Lua data files as luarocks writes and reads them: rockspecs and manifests.

Only data is read: `name = value` statements (and `local name = value`) whose values are
literals, table constructors, `..` joins of strings and numbers, and names assigned before.
Anything else (calls, operators, control flow) is an error naming the file and line.
"""

from __future__ import annotations

import re
from typing import NamedTuple, TypeAlias

from qjson_tasks.errors import RockError

LuaKey: TypeAlias = str | int | float
LuaValue: TypeAlias = "str | int | float | bool | LuaTable"
LuaTable: TypeAlias = dict[LuaKey, LuaValue]
"""A Lua table: positional entries have the int keys 1..n; insertion order is kept."""

_KEYWORDS = frozenset(
    ("and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if",
     "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while")
)  # fmt: skip
_MAX_DEPTH = 100  # nested tables (4 Python frames each); luarocks writes fewer than 10

# One token after any blanks and `--` line comments; a long comment (`--[[`, `--[==[`),
# a long string and a string with escapes are read by hand from where the match starts.
_TOKEN = re.compile(
    r"""
    (?:[ \t\r\n\f\v]+|--(?!\[=*\[)[^\n]*)*
    (?: (?P<end>\Z)
    | (?P<comment>--)
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<number>0[xX](?:[0-9a-fA-F]+(?:\.[0-9a-fA-F]*)?|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?
        | (?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
    | "(?P<plain2>[^"\\\n\r]*)"
    | '(?P<plain1>[^'\\\n\r]*)'
    | (?P<quote>["'])
    | (?P<long>\[=*\[)
    | (?P<punct>\.\.|[{}\[\]=,;().:+*/%^#<>~-])  # more than data needs: for clear errors
    )""",
    re.VERBOSE,
)
_NUMBER_TAIL = re.compile(r"[A-Za-z0-9_.]")
_PLAIN_RUN = {'"': re.compile(r'[^"\\\n\r]*'), "'": re.compile(r"[^'\\\n\r]*")}
_ESCAPES = {
    "a": b"\a",
    "b": b"\b",
    "f": b"\f",
    "n": b"\n",
    "r": b"\r",
    "t": b"\t",
    "v": b"\v",
    "\\": b"\\",
    '"': b'"',
    "'": b"'",
}
_DECIMAL_ESCAPE = re.compile(r"[0-9]{1,3}")
_HEX_ESCAPE = re.compile(r"[0-9a-fA-F]{2}")
_UNICODE_ESCAPE = re.compile(r"\{([0-9a-fA-F]+)\}")
_BLANKS = re.compile(r"[ \t\r\n\f\v]*")
_LONG_NEWLINES = re.compile(r"\r\n|\n\r|\r")
_LONG_OPEN = re.compile(r"\[=*\[")
_BLANKS_AND_COMMENTS = re.compile(r"(?:[ \t\r\n\f\v]+|--(?!\[=*\[)[^\n]*)*")


class _Token(NamedTuple):
    kind: str  # name, number, string, end, or the punctuation itself: '{', '=', '..' ...
    value: str | int | float
    pos: int


def _match_end(pattern: re.Pattern[str], text: str, pos: int) -> int:
    """Where a match of `pattern` at `pos` ends (`pos` when it doesn't match)."""
    match = pattern.match(text, pos)
    return match.end() if match else pos


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


class _Lexer:
    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source

    def error(self, pos: int, message: str) -> RockError:
        return RockError(f"{self.source}: line {_line_of(self.text, pos)}: {message}")

    def tokens(self) -> list[_Token]:
        text = self.text
        pos = 0
        if text.startswith("\ufeff"):
            pos = 1
        if text.startswith("#", pos):  # a `#!` first line, as luarocks skips it
            newline = text.find("\n", pos)
            pos = len(text) if newline < 0 else newline
        tokens: list[_Token] = []
        while True:
            match = _TOKEN.match(text, pos)
            if match is None:
                pos = _match_end(_BLANKS_AND_COMMENTS, text, pos)
                raise self.error(pos, f"unexpected character {text[pos]!r}")
            kind = match.lastgroup or ""
            pos = match.start(kind)
            if kind == "punct" or kind == "name":  # the common ones first
                word = match.group(kind)
                tokens.append(_Token("name" if kind == "name" else word, word, pos))
                pos = match.end()
            elif kind == "plain1" or kind == "plain2":
                tokens.append(_Token("string", match.group(kind), pos - 1))
                pos = match.end()
            elif kind == "number":
                tokens.append(_Token("number", _number(match.group(kind)), pos))
                if _NUMBER_TAIL.match(text, match.end()):
                    raise self.error(pos, f"malformed number near {text[pos : match.end() + 1]!r}")
                pos = match.end()
            elif kind == "quote":
                value, pos = self._quoted(pos)
                tokens.append(_Token("string", value, match.start(kind)))
            elif kind == "long":
                value, pos = self._long(pos, match.end(), "string")
                tokens.append(_Token("string", value, match.start(kind)))
            elif kind == "comment":  # a long one: the pattern took the others
                _, pos = self._long(pos + 2, _match_end(_LONG_OPEN, text, pos + 2), "comment")
            else:  # the end
                break
        tokens.append(_Token("end", "", len(text)))  # _Parser relies on it
        return tokens

    def _long(self, start: int, body: int, what: str) -> tuple[str, int]:
        """A long bracket [[...]] / [==[...]==] opening at `start`, its body at `body`."""
        level = body - start - 2
        close = self.text.find("]" + "=" * level + "]", body)
        if close < 0:
            raise self.error(start, f"unterminated long {what}")
        value = self.text[body:close]
        value = _LONG_NEWLINES.sub("\n", value)
        if value.startswith("\n"):  # Lua drops a newline right after the opening bracket
            value = value[1:]
        return value, close + level + 2

    def _quoted(self, start: int) -> tuple[str, int]:
        """A quoted string with escapes; Lua strings are bytes, so escapes give bytes."""
        text = self.text
        quote = text[start]
        plain = _PLAIN_RUN[quote]
        out = bytearray()
        pos = start + 1
        while True:
            end = _match_end(plain, text, pos)
            out += text[pos:end].encode("utf-8", "surrogatepass")
            pos = end
            char = text[pos : pos + 1]
            if char == quote:
                break
            if char in ("", "\n", "\r") or pos + 1 == len(text):  # a backslash at the end
                raise self.error(start, "unterminated string")
            pos = self._escape(pos + 1, out)
        try:
            return out.decode("utf-8"), pos + 1
        except UnicodeDecodeError:
            raise self.error(start, "string is not UTF-8 text") from None

    def _escape(self, pos: int, out: bytearray) -> int:
        """Append the escape after a backslash at `pos - 1`; return where reading goes on."""
        text = self.text
        char = text[pos : pos + 1]
        if char and char in _ESCAPES:
            out += _ESCAPES[char]
            return pos + 1
        if char in ("\n", "\r"):  # a backslash-newline is a newline; \r\n counts as one
            out += b"\n"
            pair = text[pos : pos + 2]
            return pos + 2 if pair in ("\r\n", "\n\r") else pos + 1
        if digits := _DECIMAL_ESCAPE.match(text, pos):
            code = int(digits.group())
            if code > 255:
                raise self.error(pos, f"decimal escape \\{digits.group()} is too large")
            out.append(code)
            return digits.end()
        if char == "x":
            if not (hex_digits := _HEX_ESCAPE.match(text, pos + 1)):
                raise self.error(pos, "\\x needs two hexadecimal digits")
            out.append(int(hex_digits.group(), 16))
            return hex_digits.end()
        if char == "z":
            return _match_end(_BLANKS, text, pos + 1)
        if char == "u":
            unicode = _UNICODE_ESCAPE.match(text, pos + 1)
            code = int(unicode.group(1), 16) if unicode else -1
            if unicode is None or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise self.error(pos, "\\u needs a code point like \\u{48}")
            out += chr(code).encode("utf-8")
            return unicode.end()
        raise self.error(pos, f"invalid escape \\{char} in a string")


def _number(literal: str) -> int | float:
    lowered = literal.lower()
    if lowered.startswith("0x"):
        if "." in lowered or "p" in lowered:
            return float.fromhex(lowered)
        return int(lowered, 16)
    if "." in lowered or "e" in lowered:
        return float(lowered)
    return int(lowered)


def _describe(token: _Token) -> str:
    if token.kind == "end":
        return "end of file"
    if token.kind == "string":
        return "a string"
    return repr(str(token.value))


def lua_type(value: object) -> str:
    """Lua's name for a parsed value's type, for messages."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "table"


def _concat_text(value: LuaValue | None) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None or isinstance(value, dict):
        return None
    if isinstance(value, int):
        return str(value)
    return f"{value:.14g}"  # as LuaJIT / Lua 5.1 print numbers


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self._lexer = _Lexer(text, source)
        self._tokens = self._lexer.tokens()
        self._pos = 0
        self._globals: dict[str, LuaValue] = {}
        self._locals: dict[str, LuaValue | None] = {}
        self._depth = 0

    def parse(self) -> dict[str, LuaValue]:
        while self._peek().kind != "end":
            self._statement()
        return self._globals

    # --- tokens --------------------------------------------------------------------------------

    # The last token is "end" and _next never goes past it.

    def _peek(self) -> _Token:
        return self._tokens[self._pos]

    def _next(self) -> _Token:
        token = self._tokens[self._pos]
        if token.kind != "end":
            self._pos += 1
        return token

    def _at(self, punct: str) -> bool:
        return self._tokens[self._pos].kind == punct

    def _error(self, token: _Token, message: str) -> RockError:
        return self._lexer.error(token.pos, message)

    def _expect(self, value: str) -> _Token:
        token = self._next()
        if token.kind != value:
            raise self._error(token, f"expected '{value}', got {_describe(token)}")
        return token

    def _is_name(self, token: _Token) -> bool:
        return token.kind == "name" and token.value not in _KEYWORDS

    # --- statements ----------------------------------------------------------------------------

    def _statement(self) -> None:
        token = self._next()
        if token.kind == ";":
            return
        local = token.kind == "name" and token.value == "local"
        if local:
            token = self._next()
        if not self._is_name(token):
            if token.kind == "name":
                raise self._error(token, f"'{token.value}' is not supported in a data file")
            raise self._error(token, f"expected a name to assign to, got {_describe(token)}")
        name = str(token.value)
        if local and not self._at("="):
            self._locals[name] = None
            return
        if not self._at("="):
            raise self._error(
                self._peek(),
                f"expected '=' after '{name}', got {_describe(self._peek())}"
                " (a data file only assigns values)",
            )
        self._next()
        value = self._expression()
        if local or name in self._locals:
            self._locals[name] = value
        else:
            if value is None:  # assigning nil removes a global
                self._globals.pop(name, None)
            else:
                self._globals[name] = value

    # --- expressions ---------------------------------------------------------------------------

    def _expression(self) -> LuaValue | None:
        first = self._peek()
        value = self._unary()
        if not self._at(".."):
            return value
        parts = [self._concat_operand(first, value)]
        while self._at(".."):
            self._next()
            token = self._peek()
            parts.append(self._concat_operand(token, self._unary()))
        return "".join(parts)

    def _concat_operand(self, token: _Token, value: LuaValue | None) -> str:
        text = _concat_text(value)
        if text is None:
            raise self._error(token, f"'..' joins strings and numbers, not a {lua_type(value)}")
        return text

    def _unary(self) -> LuaValue | None:
        negate = False
        start = self._peek()
        while self._at("-"):
            self._next()
            negate = not negate
        value = self._primary()
        if start.kind == "-":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise self._error(start, f"'-' applies to numbers, not a {lua_type(value)}")
            return -value if negate else value
        return value

    def _primary(self) -> LuaValue | None:
        token = self._peek()
        if token.kind in ("string", "number"):
            self._next()
            return token.value
        if token.kind == "name" and token.value in ("true", "false", "nil"):
            self._next()
            return {"true": True, "false": False, "nil": None}[str(token.value)]
        if self._at("{"):
            return self._table()
        if self._is_name(token):
            self._next()
            return self._variable(token)
        raise self._error(token, f"expected a value, got {_describe(token)}")

    def _variable(self, token: _Token) -> LuaValue | None:
        name = str(token.value)
        if name in self._locals:
            return self._locals[name]
        if name in self._globals:
            return self._globals[name]
        raise self._error(
            token, f"'{name}' is not defined (a data file can only use values assigned above)"
        )

    def _table(self) -> LuaTable:
        opening = self._expect("{")
        self._depth += 1
        if self._depth > _MAX_DEPTH:
            raise self._error(opening, f"tables nested deeper than {_MAX_DEPTH} levels")
        table: LuaTable = {}
        index = 1
        while not self._at("}"):
            token = self._peek()
            if self._at("["):
                self._next()
                key = self._key(token, self._expression())
                self._expect("]")
                self._expect("=")
                self._store(table, token, key, self._expression())
            elif self._is_name(token) and self._tokens[self._pos + 1].kind == "=":
                self._pos += 2
                self._store(table, token, str(token.value), self._expression())
            else:
                self._store(table, token, index, self._expression())
                index += 1
            if self._at(",") or self._at(";"):
                self._next()
            elif not self._at("}"):
                got = self._peek()
                raise self._error(got, f"expected ',' or '}}' in a table, got {_describe(got)}")
        self._next()
        self._depth -= 1
        return table

    def _key(self, token: _Token, key: LuaValue | None) -> LuaKey:
        if isinstance(key, bool) or key is None or isinstance(key, dict):
            raise self._error(
                token, f"a table key must be a string or a number, not a {lua_type(key)}"
            )
        if isinstance(key, float) and key.is_integer():
            return int(key)  # Lua: t[1.0] is t[1]
        return key

    def _store(self, table: LuaTable, token: _Token, key: LuaKey, value: LuaValue | None) -> None:
        if key in table:
            raise self._error(token, f"duplicate key {key!r} in a table")
        if value is not None:  # a nil entry is no entry
            table[key] = value


def parse_lua_data(text: str, source: str) -> dict[str, LuaValue]:
    """The global `name = value` assignments of a Lua data file; `source` names it in errors."""
    return _Parser(text, source).parse()


def sequence(table: LuaTable) -> list[LuaValue]:
    """The positional values t[1], t[2], ... up to the first missing index (Lua's ipairs)."""
    values = []
    index = 1
    while index in table:
        values.append(table[index])
        index += 1
    return values


def is_sequence(table: LuaTable) -> bool:
    """Whether the table holds only positional entries 1..n (an empty table does)."""
    return len(sequence(table)) == len(table)


def expect_table(value: object, where: str) -> LuaTable:
    """`value` as a table, or a RockError `where: expected a table, got ...`."""
    if not isinstance(value, dict):
        raise RockError(f"{where}: expected a table, got {lua_type(value)}")
    return value


def expect_string(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise RockError(f"{where}: expected a string, got {lua_type(value)}")
    return value


def expect_sequence(value: object, where: str) -> list[LuaValue]:
    """The values of a list-like table, or a RockError naming `where`."""
    table = expect_table(value, where)
    if not is_sequence(table):
        extra = next(key for key in table if key not in range(1, len(table) + 1))
        raise RockError(f"{where}: expected a list, got a table with key {extra!r}")
    return sequence(table)
