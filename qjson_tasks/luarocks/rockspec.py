"""Rockspecs: the package, version, source URL and (build) dependencies luarocks reads."""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from dataclasses import dataclass

from qjson_tasks.errors import RockError
from qjson_tasks.luarocks.luadata import (
    LuaValue,
    expect_string,
    expect_table,
    is_sequence,
    parse_lua_data,
    sequence,
)
from qjson_tasks.luarocks.versions import OPERATORS, Constraint, Requirement, Version

# As luarocks' queries.from_dep_string: an optional `namespace/`, then the name.
_DEPENDENCY = re.compile(r"\s*([a-zA-Z0-9._-]*/?[a-zA-Z0-9][a-zA-Z0-9._-]*)\s*(.*?)\s*", re.DOTALL)
_CONSTRAINT = re.compile(r"([<>=~!]*)\s*([A-Za-z0-9_.-]+)[\s,]*")
# luarocks also takes `=` and `!=`, and a bare version means `==`.
_OPERATOR_ALIASES = {"": "==", "=": "==", "!=": "~=", **{op: op for op in OPERATORS}}


@dataclass(frozen=True)
class Dependency:
    """A rockspec dependency: a rock name and the versions it accepts."""

    name: str
    requirement: Requirement | None  # None: any version

    def allows(self, version_text: str) -> bool:
        """Whether a version (e.g. '1.0-1') satisfies this dependency; versions Version
        can't read (scm-1, dev-1) only satisfy a dependency without a requirement."""
        return self.requirement is None or self.requirement.allows_text(version_text)

    def __str__(self) -> str:
        return self.name if self.requirement is None else f"{self.name} {self.requirement}"


def parse_dependency(text: str, source: str) -> Dependency:
    """A luarocks dependency string: 'lua >= 5.1', 'foo ~> 1.0', 'bar', 'qux 1.0' (==)."""
    match = _DEPENDENCY.fullmatch(text)
    if match is None:
        raise RockError(f"{source}: dependency '{text}': expected a rock name and constraints")
    name, rest = match.group(1).lower(), match.group(2)  # luarocks lowercases names too
    if not rest:
        return Dependency(name, None)
    constraints = []
    pos = 0
    while pos < len(rest):
        found = _CONSTRAINT.match(rest, pos)
        if found is None:
            raise RockError(f"{source}: dependency '{text}': can't read '{rest[pos:]}'")
        operator, version = _OPERATOR_ALIASES.get(found.group(1)), found.group(2)
        if operator is None:
            raise RockError(f"{source}: dependency '{text}': unknown operator '{found.group(1)}'")
        try:
            constraints.append(Constraint(operator, Version.parse(version)))
        except ValueError:
            raise RockError(
                f"{source}: dependency '{text}': can't compare version '{version}'"
                " (use numbers and dots with an optional -revision, like 1.2.3-1)"
            ) from None
        pos = found.end()
    return Dependency(name, Requirement(tuple(constraints)))


@dataclass(frozen=True)
class Rockspec:
    package: str
    version: str
    dependencies: tuple[Dependency, ...]
    build_dependencies: tuple[Dependency, ...]
    source_url: str  # '' when the rockspec has no source.url (luarocks would refuse it)
    source_tag: str = ""  # source.tag: for a git source, the tag luarocks clones
    source_dir: str = ""  # source.dir: the directory the source unpacks as, if given


def _dependencies(data: dict[str, LuaValue], key: str, source: str) -> tuple[Dependency, ...]:
    value = data.get(key)
    if value is None:
        return ()
    table = expect_table(value, f"{source}: {key}")
    # A `platforms = {...}` override may sit beside the list; overrides are ignored.
    entries = {k: v for k, v in table.items() if k != "platforms"}
    if not is_sequence(entries):
        raise RockError(f"{source}: {key}: expected a list of dependency strings")
    return tuple(
        parse_dependency(expect_string(entry, f"{source}: {key}[{index}]"), source)
        for index, entry in enumerate(sequence(entries), 1)
    )


def parse_rockspec(text: str, source: str) -> Rockspec:
    """Read a rockspec's text; `source` names it in errors."""
    data = parse_lua_data(text, source)
    for key in ("package", "version"):
        if key not in data:
            raise RockError(f"{source}: missing '{key}': a rockspec needs {key} = \"...\"")
    package = expect_string(data["package"], f"{source}: package")
    version = expect_string(data["version"], f"{source}: version")
    fields = {"url": "", "tag": "", "dir": ""}
    if "source" in data:
        source_table = expect_table(data["source"], f"{source}: source")
        for key in fields:
            if key in source_table:
                fields[key] = expect_string(source_table[key], f"{source}: source.{key}")
    return Rockspec(
        package=package,
        version=version,
        dependencies=_dependencies(data, "dependencies", source),
        build_dependencies=_dependencies(data, "build_dependencies", source),
        source_url=fields["url"],
        source_tag=fields["tag"],
        source_dir=fields["dir"],
    )


def rockspec_in_archive(data: bytes, source: str) -> tuple[str, bytes]:
    """The (member name, bytes) of the one top-level *.rockspec in a .rock or .src.rock."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [
                name
                for name in archive.namelist()
                if "/" not in name and name.endswith(".rockspec")
            ]
            if len(names) != 1:
                found = ", ".join(names) if names else "none"
                raise RockError(
                    f"{source}: a rock holds one top-level .rockspec, this one has {found}"
                )
            return names[0], archive.read(names[0])
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as error:
        raise RockError(f"{source}: not a readable rock (a zip archive): {error}") from None
