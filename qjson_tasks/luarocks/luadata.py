"""Read Lua data files (rockspecs, manifests) by running them as luarocks does, in a sandbox.

luarocks loads these files with `load(text, name, "t", env)` and an empty table as the
environment: whatever globals the chunk assigns are the data. Here the chunk runs in a real
Lua 5.4 (lupa) with that empty environment, a memory limit and an instruction limit, and its
globals come back as plain Python values. Reading a name the file never assigned is an error
(luarocks would see nil), and so is a value that is not data (a function).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any, TypeAlias

from qjson_tasks.errors import RockError

LuaKey: TypeAlias = str | int | float
LuaValue: TypeAlias = "str | int | float | bool | LuaTable"
LuaTable: TypeAlias = dict[LuaKey, LuaValue]
"""A Lua table: positional entries have the int keys 1..n.

Keys come in the order luarocks writes them (numbers ascending, then strings), which is the
file's order for every file luarocks writes; a file's globals keep the order of assignment.
A table the file uses in two places is one dict in both."""

_MIB = 1 << 20
# A manifest like luarocks.org's (10 MB) needs about 7 times its size, its listing included.
_MEMORY_BASE = 64 * _MIB
_MEMORY_PER_BYTE = 16
# luarocks' files take well under one instruction per byte; an endless loop stops in ~0.1 s.
_STEPS_BASE = 20_000_000
_STEPS_PER_BYTE = 4
_MAX_DEPTH = 100  # nested tables; luarocks writes fewer than 10
_SLICE = 30_000  # values fetched from Lua per call: a multiple of 3, well below Lua's stack
_PLAIN, _TABLE, _END = 0, 1, 2  # the kinds of (key, kind, value) triples the sandbox hands out

# Trusted code, run before any file: it keeps what it needs in locals, so the file's chunk,
# whose only environment is a fresh empty table, never reaches `debug`, `load` or the globals.
_SANDBOX = r"""
local load, pcall, error, setmetatable, rawset, next, type, tostring =
      load, pcall, error, setmetatable, rawset, next, type, tostring
local sethook, utf8len, unpack = debug.sethook, utf8.len, table.unpack
local format, gsub = string.format, string.gsub
local MAX_DEPTH, PLAIN, TABLE, END = ...
-- Strings lose their methods: ("x"):rep(2^40) must not reach the string library.
debug.setmetatable("", nil)

local UNDEFINED = "'%s' is not defined (a data file can only use values assigned above)"
local TOO_DEEP = format("tables nested deeper than %d levels", MAX_DEPTH)
local NOT_DATA = "a %s is not data (strings, numbers, booleans and tables are)"

local function clean(message)  -- Lua's message, made UTF-8 for Python
  message = tostring(message)
  if utf8len(message) then return message end
  return (gsub(message, "[\128-\255]", "?"))
end

local function run(text, steps)
  local order, assigned = {}, 0
  local env = setmetatable({}, {
    __index = function(_, name) error(format(UNDEFINED, tostring(name)), 2) end,
    __newindex = function(globals, name, value)
      assigned = assigned + 1
      order[assigned] = name
      rawset(globals, name, value)
    end,
  })
  local chunk, message = load(text, "=data", "t", env)
  if not chunk then return "error", clean(message) end
  local stopped = false
  sethook(function() stopped = true error("stopped", 0) end, "", steps)
  local ok, failure = pcall(chunk)
  sethook()
  if stopped then return "steps" end
  if not ok then return "error", clean(failure) end
  return "ok", env, unpack(order, 1, assigned)
end

-- The tables in post-order (a table after those it holds), as (key, kind, value) triples
-- ending with an END triple; a TABLE value is the number of a table already listed.
local function flatten(root)
  local flat, size, numbers, done, path = {}, 0, {}, 0, {}
  local function fail(depth, problem) error({problem, unpack(path, 1, depth)}, 0) end
  local walk
  local function entry(key, value, depth)  -- the kind and value to list for tbl[key]
    local key_type, value_type = type(key), type(value)
    if key_type ~= "string" and key_type ~= "number" then
      fail(depth - 1, "a table key must be a string or a number, not a " .. key_type)
    end
    if key_type == "string" and not utf8len(key) then fail(depth - 1, "a key is not UTF-8 text") end
    path[depth] = key
    if value_type == "table" then
      if numbers[value] == false then fail(depth, "a table that holds itself") end
      if depth > MAX_DEPTH then fail(1, TOO_DEEP) end
      return TABLE, numbers[value] or walk(value, depth + 1)
    elseif value_type == "string" then
      if not utf8len(value) then fail(depth, "string is not UTF-8 text") end
    elseif value_type ~= "number" and value_type ~= "boolean" then
      fail(depth, format(NOT_DATA, value_type))
    end
    return PLAIN, value
  end
  walk = function(tbl, depth)
    numbers[tbl] = false  -- open: meeting it again inside itself is a cycle
    local own, count = {}, 0
    for key, value in next, tbl do
      own[count + 1], own[count + 2], own[count + 3] = key, entry(key, value, depth)
      count = count + 3
    end
    for index = 1, count do flat[size + index] = own[index] end
    flat[size + count + 1], flat[size + count + 2], flat[size + count + 3] = 0, END, 0
    size = size + count + 3
    done = done + 1
    numbers[tbl] = done
    return done
  end
  local ok, failure = pcall(walk, root, 1)
  if not ok then
    if type(failure) == "table" then return "data", unpack(failure) end
    return "error", clean(failure)
  end
  return "ok", function(first, last) return unpack(flat, first, last) end, size
end

return run, flatten
"""


def parse_lua_data(text: str, source: str) -> dict[str, LuaValue]:
    """The globals a Lua data file assigns; `source` names it in errors.

    Every error is a RockError `<source>: <what is wrong>` on one line, with `line N:` when
    Lua tells where.
    """
    import lupa.lua54  # here, not at the top: importing lupa is slow and most tasks don't read

    data = _lua_text(text)
    memory = _MEMORY_BASE + _MEMORY_PER_BYTE * len(data)
    steps = _STEPS_BASE + _STEPS_PER_BYTE * len(data)
    # The sandbox hands out only UTF-8 strings, so lupa's decoding never fails.
    runtime = lupa.lua54.LuaRuntime(
        max_memory=memory, encoding="utf-8", register_eval=False, register_builtins=False
    )
    try:
        run, flatten = runtime.execute(_SANDBOX, _MAX_DEPTH, _PLAIN, _TABLE, _END, mode="t")
        env, *order = _answer(run(data, steps), source, memory, steps)
        fetch, size = _answer(flatten(env), source, memory, steps)
        return _globals(_tables(_triples(fetch, size)), order, source)
    except lupa.lua54.LuaMemoryError:
        raise _memory_error(source, memory) from None
    except lupa.lua54.LuaError as error:  # the sandbox's own code failed (C stack, ...)
        raise RockError(f"{source}: {_one_line(str(error))}") from None


def _lua_text(text: str) -> bytes:
    """The text as Lua gets it: a byte order mark and a `#!` line dropped (the line stays
    empty, so Lua's line numbers are the file's)."""
    text = text.removeprefix("\ufeff")
    if text.startswith("#"):
        newline = text.find("\n")
        text = "" if newline < 0 else text[newline:]
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate fails Lua's UTF-8 check


def _answer(answer: Any, source: str, memory: int, steps: int) -> tuple[Any, ...]:
    """The values after a sandbox function's status "ok", or the RockError its answer means."""
    status, *values = answer if isinstance(answer, tuple) else (answer,)
    if status == "ok":
        return tuple(values)
    if status == "steps":
        raise RockError(
            f"{source}: still running after {steps} Lua instructions"
            " (a data file only assigns values)"
        )
    if status == "data":
        problem, *keys = values
        where = _path(keys, source)
        raise RockError(f"{source}: {where + ': ' if where else ''}{problem}")
    message = str(values[0]) if values else "failed"
    if message == "not enough memory":
        raise _memory_error(source, memory)
    raise RockError(f"{source}: {_one_line(message)}")


def _memory_error(source: str, memory: int) -> RockError:
    return RockError(f"{source}: needs more than {memory // _MIB} MiB of memory to read")


_POSITION = re.compile(r"data:(\d+): ")


def _one_line(message: str) -> str:
    """Lua's message without a traceback, `data:N: ` as `line N: `, controls escaped."""
    message = message.split("\nstack traceback:", 1)[0]
    message = _POSITION.sub(r"line \1: ", message, count=1)
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in message)


def _path(keys: list[LuaKey], source: str) -> str:
    """Where a value sits, as `name['key'][2]`."""
    if not keys:
        return ""
    if not isinstance(keys[0], str):
        raise RockError(f"{source}: a global name must be a string, not {lua_type(keys[0])}")
    return keys[0] + "".join(f"[{key!r}]" for key in keys[1:])


def _triples(fetch: Callable[[int, int], tuple[Any, ...]], size: int) -> Iterator[tuple[Any, ...]]:
    for first in range(1, size + 1, _SLICE):
        values = fetch(first, min(first + _SLICE - 1, size))
        yield from zip(values[0::3], values[1::3], values[2::3], strict=True)


def _tables(triples: Iterator[tuple[Any, ...]]) -> list[LuaTable]:
    """The tables of `flatten`, in its order (the file's globals last)."""
    tables: list[LuaTable] = []
    entries: list[tuple[LuaKey, LuaValue]] = []
    for key, kind, value in triples:
        if kind == _PLAIN:
            entries.append((key, value))
        elif kind == _TABLE:
            entries.append((key, tables[value - 1]))
        else:
            tables.append(dict(sorted(entries, key=_key_order) if len(entries) > 1 else entries))
            entries = []
    return tables


def _key_order(entry: tuple[LuaKey, LuaValue]) -> tuple[bool, LuaKey]:
    """Numbers ascending, then strings, as luarocks' util.sortedpairs writes tables."""
    return isinstance(entry[0], str), entry[0]


def _globals(tables: list[LuaTable], order: list[str], source: str) -> dict[str, LuaValue]:
    """The file's globals in the order of assignment; a name assigned nil and then again
    comes where it was assigned last."""
    env = tables[-1]
    last = {name: index for index, name in enumerate(order)}
    result: dict[str, LuaValue] = {}
    for name in sorted(env, key=lambda name: last.get(name, len(last))):
        if not isinstance(name, str):
            raise RockError(f"{source}: a global name must be a string, not {lua_type(name)}")
        result[name] = env[name]
    return result


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
