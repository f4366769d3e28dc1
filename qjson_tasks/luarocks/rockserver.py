"""luarocks rock servers' layout: static trees of `manifest-<luaver>`, rockspecs and rocks.

A server is an http(s):// or file:// URL or a local directory. Its manifest lists every
rock's versions and the arches each is available as: `src` (a .src.rock), `rockspec`,
`all` (a pure-Lua binary rock) or a platform such as `linux-x86_64`. Pure: reading a server
over the network is rocks.fetch's.
"""

from __future__ import annotations

import posixpath
import urllib.parse
from dataclasses import dataclass

from qjson_tasks.errors import RockError
from qjson_tasks.luarocks.luadata import (
    LuaTable,
    expect_sequence,
    expect_string,
    expect_table,
    parse_lua_data,
)
from qjson_tasks.luarocks.rockspec import Dependency
from qjson_tasks.luarocks.versions import Version

SERVER_FORMS = "an http(s):// or file:// URL, or an absolute directory path"
# Arches a builder can install from anywhere, in order of preference: sources first.
INSTALLABLE_ARCHES = ("src", "rockspec", "all")


def server_url(server: str) -> str:
    """A server as URL or directory, without a trailing slash, so files join with '/'."""
    parts = urllib.parse.urlsplit(server)
    if parts.scheme in ("http", "https") and parts.netloc:
        return server.rstrip("/")
    if parts.scheme == "file" and parts.netloc in ("", "localhost") and parts.path[:1] == "/":
        return server.rstrip("/")
    if not parts.scheme and server.startswith("/"):
        return posixpath.normpath(server)
    raise RockError(f"rock server '{server}': use {SERVER_FORMS}")


@dataclass(frozen=True)
class ServerRock:
    """One version of a rock on a server, with the arches it is there as."""

    name: str
    version: str
    arches: tuple[str, ...]

    @property
    def install_arch(self) -> str | None:
        """The arch to fetch: the first of INSTALLABLE_ARCHES the server has, else None."""
        return next((arch for arch in INSTALLABLE_ARCHES if arch in self.arches), None)


def parse_repository(data: bytes, url: str) -> LuaTable:
    """The `repository` table of a server manifest's bytes (read from url)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise RockError(f"{url}: not a luarocks manifest (not UTF-8 text)") from None
    manifest = parse_lua_data(text, url)
    if "repository" not in manifest:
        raise RockError(f"{url}: not a luarocks manifest (no 'repository' table)")
    return expect_table(manifest["repository"], f"{url}: repository")


def rock_versions(repository: LuaTable, url: str, name: str) -> list[ServerRock]:
    """Every version of rock `name` in a manifest's repository; [] when it has none."""
    if name not in repository:
        return []
    where = f"{url}: repository[{name!r}]"
    rocks = []
    for version, entries in expect_table(repository[name], where).items():
        version_text = expect_string(version, f"{where}: a version")
        entry_where = f"{where}[{version_text!r}]"
        arches = tuple(
            expect_string(expect_table(entry, entry_where).get("arch"), f"{entry_where}: arch")
            for entry in expect_sequence(entries, entry_where)
        )
        rocks.append(ServerRock(name, version_text, arches))
    return rocks


def artifact_url(server: str, name: str, version: str, arch: str) -> str:
    """Where a server keeps a rock's rockspec (arch 'rockspec') or `.<arch>.rock`."""
    base = server_url(server)
    if arch == "rockspec":
        return f"{base}/{name}-{version}.rockspec"
    return f"{base}/{name}-{version}.{arch}.rock"


def best_version(rocks: list[ServerRock], dependency: Dependency) -> ServerRock | None:
    """The highest version the dependency allows that comes as an installable arch.

    Versions Version can't read (scm-1, dev-1) are never picked: they move.
    """
    best: tuple[Version, ServerRock] | None = None
    for rock in rocks:
        if rock.install_arch is None or not dependency.allows(rock.version):
            continue
        try:
            version = Version.parse(rock.version)
        except ValueError:
            continue
        if best is None or version > best[0]:
            best = (version, rock)
    return best[1] if best else None
