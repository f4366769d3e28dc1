"""Read luarocks rock servers: static trees of `manifest-<luaver>`, rockspecs and rocks.

A server is an http(s):// or file:// URL or a local directory. Its manifest lists every
rock's versions and the arches each is available as: `src` (a .src.rock), `rockspec`,
`all` (a pure-Lua binary rock) or a platform such as `linux-x86_64`.
"""

from __future__ import annotations

import functools
import http.client
import posixpath
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

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


class _NotFoundError(RockError):
    """The URL answered, but there is nothing there (HTTP 404/410, no such file)."""


def _read_http(url: str, timeout: float) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "qjson-tasks"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as error:
        error.close()
        kind = _NotFoundError if error.code in (404, 410) else RockError
        raise kind(f"{url}: HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, TimeoutError):
            raise RockError(f"{url}: no answer within {timeout:g} s") from None
        shown = reason.strerror if isinstance(reason, OSError) and reason.strerror else reason
        raise RockError(f"{url}: can't connect: {shown}") from None
    except TimeoutError:
        raise RockError(f"{url}: no answer within {timeout:g} s") from None
    except (http.client.HTTPException, OSError) as error:
        raise RockError(f"{url}: reading failed: {error}") from None


def _read_file(url: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise _NotFoundError(f"{url}: no such file") from None
    except OSError as error:
        raise RockError(f"{url}: can't read: {error.strerror or error}") from None


def read_url(url: str, timeout: float = 30) -> bytes:
    """The bytes at an http(s):// or file:// URL or an absolute local path."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme in ("http", "https"):
        return _read_http(url, timeout)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise RockError(f"{url}: a file:// URL names no host (file:///path)")
        return _read_file(url, Path(urllib.request.url2pathname(parts.path)))
    if not parts.scheme and url.startswith("/"):
        return _read_file(url, Path(url))
    raise RockError(f"{url}: can't read it: use {SERVER_FORMS}")


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


@functools.cache
def _repository(server: str, lua_version: str) -> tuple[str, LuaTable]:
    """The manifest's URL and its `repository` table; read once per server in a process."""
    url = f"{server}/manifest-{lua_version}"
    try:
        data = read_url(url)
    except _NotFoundError:
        url = f"{server}/manifest"
        data = read_url(url)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise RockError(f"{url}: not a luarocks manifest (not UTF-8 text)") from None
    manifest = parse_lua_data(text, url)
    if "repository" not in manifest:
        raise RockError(f"{url}: not a luarocks manifest (no 'repository' table)")
    return url, expect_table(manifest["repository"], f"{url}: repository")


def clear_manifest_cache() -> None:
    """Forget the manifests read so far (the next look-up reads them again)."""
    _repository.cache_clear()


def server_versions(server: str, name: str, lua_version: str = "5.1") -> list[ServerRock]:
    """Every version of rock `name` on a server, sorted as text; [] when it has none."""
    url, repository = _repository(server_url(server), lua_version)
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
