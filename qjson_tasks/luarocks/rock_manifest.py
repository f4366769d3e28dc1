"""Read luarocks' per-rock `rock_manifest` files: the md5 of each file a rock installs.

A rock_manifest is Lua data, `rock_manifest = { lua = { ["x.lua"] = "<md5>" }, ... }`: tables
are directories, strings the md5s of files. luarocks loads it as any data file, so it is read
by the same sandboxed reader as rockspecs; only its shape is checked here.
"""

from __future__ import annotations

from typing import TypeAlias

from qjson_tasks.errors import RockError, VerificationError
from qjson_tasks.luarocks.luadata import LuaTable, LuaValue, lua_type, parse_lua_data

ManifestTree: TypeAlias = dict[str, "str | ManifestTree"]

# A table used in two places is listed in both: a few shared tables nested deep would make
# billions of entries out of a small file, so the count is capped (rocks list hundreds).
MAX_ENTRIES = 100_000


def parse_rock_manifest(text: str, source: str) -> ManifestTree:
    """Read a rock_manifest's text; `source` names the file in errors (VerificationError)."""
    try:
        data = parse_lua_data(text, source)
    except RockError as error:
        raise VerificationError(str(error)) from None
    for name in data:
        if name != "rock_manifest":
            raise VerificationError(
                f"{source}: unexpected global '{name}' (a rock_manifest sets only rock_manifest)"
            )
    if "rock_manifest" not in data:
        raise VerificationError(f"{source}: not a rock_manifest (no 'rock_manifest' table)")
    return _Reader(source).tree(data["rock_manifest"], "rock_manifest")


class _Reader:
    def __init__(self, source: str) -> None:
        self._source = source
        self._entries = 0

    def _error(self, where: str, message: str) -> VerificationError:
        return VerificationError(f"{self._source}: {where}: {message}")

    def tree(self, value: LuaValue, where: str) -> ManifestTree:
        if not isinstance(value, dict):
            raise self._error(where, f"expected a table, got {lua_type(value)}")
        tree: ManifestTree = {}
        for name, entry in self._named(value, where):
            self._entries += 1
            if self._entries > MAX_ENTRIES:
                raise VerificationError(f"{self._source}: more than {MAX_ENTRIES} entries")
            if isinstance(entry, dict):
                tree[name] = self.tree(entry, f"{where}[{name!r}]")
            elif isinstance(entry, str):
                tree[name] = entry
            else:
                raise self._error(
                    f"{where}[{name!r}]",
                    f"expected an md5 string or a table, got {lua_type(entry)}",
                )
        return tree

    def _named(self, table: LuaTable, where: str) -> list[tuple[str, LuaValue]]:
        """The table's entries; each key is a file name that stays in its directory."""
        for key in table:
            if not isinstance(key, str):
                raise self._error(where, f"expected file names as keys, got the number {key!r}")
            if key in ("", ".", "..") or "/" in key or "\0" in key:
                raise self._error(where, f"bad file name {key!r}")
        return [(str(key), value) for key, value in table.items()]
