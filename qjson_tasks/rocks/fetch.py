"""Reading rock servers and rock files: http(s):// and file:// URLs and local paths.

The only network reads qjson-tasks does itself; luarocks.rockserver says what they mean.
"""

from __future__ import annotations

import functools
import http.client
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from qjson_tasks.errors import RockError
from qjson_tasks.luarocks.luadata import LuaTable
from qjson_tasks.luarocks.rockserver import (
    SERVER_FORMS,
    ServerRock,
    parse_repository,
    rock_versions,
    server_url,
)


class NotFoundError(RockError):
    """The URL answered, but there is nothing there (HTTP 404/410, no such file)."""


def _read_http(url: str, timeout: float) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "qjson-tasks"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as error:
        error.close()
        kind = NotFoundError if error.code in (404, 410) else RockError
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
        raise NotFoundError(f"{url}: no such file") from None
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


@functools.cache
def _repository(server: str, lua_version: str) -> tuple[str, LuaTable]:
    """The manifest's URL and its `repository` table; read once per server in a process."""
    url = f"{server}/manifest-{lua_version}"
    try:
        data = read_url(url)
    except NotFoundError:
        url = f"{server}/manifest"
        data = read_url(url)
    return url, parse_repository(data, url)


def clear_manifest_cache() -> None:
    """Forget the manifests read so far (the next look-up reads them again)."""
    _repository.cache_clear()


def server_versions(server: str, name: str, lua_version: str = "5.1") -> list[ServerRock]:
    """Every version of rock `name` on a server, sorted as text; [] when it has none."""
    url, repository = _repository(server_url(server), lua_version)
    return rock_versions(repository, url, name)
