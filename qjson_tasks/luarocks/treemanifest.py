"""Read the manifest luarocks keeps in an installed tree (lib/luarocks/rocks-<luaver>/manifest):
which rocks are installed and which of them the requested rocks need at run time."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from qjson_tasks.errors import RockError
from qjson_tasks.luarocks.luadata import (
    LuaTable,
    LuaValue,
    expect_sequence,
    expect_string,
    expect_table,
    parse_lua_data,
)

LUA = "lua"  # a dependency every rockspec may name; the interpreter, never a rock in the tree


def _installed(manifest: dict[str, LuaValue], source: str) -> dict[str, str]:
    if "repository" not in manifest:
        raise RockError(f"{source}: not a luarocks tree manifest (no 'repository' table)")
    rocks: dict[str, str] = {}
    for name, versions in expect_table(manifest["repository"], f"{source}: repository").items():
        name_text = expect_string(name, f"{source}: repository: a rock name")
        found = list(expect_table(versions, f"{source}: repository[{name_text!r}]"))
        if len(found) > 1:
            listed = ", ".join(str(version) for version in found)
            raise RockError(
                f"{source}: {name_text} is installed in several versions ({listed});"
                " a runtime tree holds one of each rock"
            )
        if found:
            rocks[name_text] = expect_string(found[0], f"{source}: {name_text}: a version")
    return rocks


def installed_rocks(manifest_text: str, source: str) -> dict[str, str]:
    """Rock name -> installed version, from a tree manifest's `repository` table."""
    return _installed(parse_lua_data(manifest_text, source), source)


def _needs(dependencies: LuaTable, name: str, version: str, source: str) -> list[str]:
    """The rock names `name version` depends on, per the manifest's `dependencies`."""
    by_version = expect_table(dependencies.get(name, {}), f"{source}: dependencies[{name!r}]")
    where = f"{source}: dependencies[{name!r}][{version!r}]"
    return [
        expect_string(expect_table(entry, where).get("name"), f"{where}: name")
        for entry in expect_sequence(by_version.get(version, {}), where)
    ]


def runtime_closure(
    manifest_text: str, requested: Iterable[str], source: str
) -> tuple[dict[str, str], dict[str, str]]:
    """(kept, build_only): the requested rocks plus all they depend on, and every other
    installed rock, such as build dependencies luarocks installed into the same tree.

    'lua' is skipped wherever it appears. A rock that is needed but not installed is an error.
    """
    manifest = parse_lua_data(manifest_text, source)
    installed = _installed(manifest, source)
    dependencies = expect_table(manifest.get("dependencies", {}), f"{source}: dependencies")
    kept: dict[str, str] = {}
    queue = deque((name, "requested") for name in requested if name != LUA)
    while queue:
        name, wanted_by = queue.popleft()
        if name in kept:
            continue
        if name not in installed:
            have = ", ".join(sorted(installed)) or "none"
            raise RockError(f"{source}: {name} ({wanted_by}) is not installed (installed: {have})")
        kept[name] = installed[name]
        for needed in _needs(dependencies, name, installed[name], source):
            if needed != LUA:
                queue.append((needed, f"needed by {name} {installed[name]}"))
    build_only = {name: version for name, version in installed.items() if name not in kept}
    return kept, build_only
