"""Rock sources and rock servers, classified once from the config's text.

A source string is read here into a RockSource (what kind it is, where it lives on this
machine, whether it is a rock server here); every consumer reads that value instead of
looking at the string again. Pure: nothing here touches the disk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

DEFAULT_SOURCE = "default"
SOURCE_FORMS = (
    "'default', an http(s):// or file:// server URL, a local directory with a rockspec,"
    " or a local .rock/.src.rock file"
)
SERVER_FORMS = "an http(s):// or file:// URL, or a local directory holding a luarocks manifest"
ROCK_FILE_SUFFIXES = (".src.rock", ".rock")
URL = re.compile(r"^(https?|file)://\S+$")
_REMOTE = re.compile(r"^https?://")

SourceKind = Literal["default", "server", "directory", "file"]


@dataclass(frozen=True)
class RockSource:
    """Where a rock (or the dependency server) comes from.

    kind: `default` (luarocks' servers or luarocks.server), `server` (a rock server URL or,
    for luarocks.server, a directory), `directory` (a rock directory with a rockspec) or
    `file` (a .rock/.src.rock). host_path: the path on this machine of a directory, a file or a
    local server, else None.
    """

    text: str
    kind: SourceKind
    host_path: str | None = None

    @property
    def is_local_server(self) -> bool:
        """A rock server on this machine (a directory or file:// URL): copied into the builder."""
        return self.kind == "server" and self.host_path is not None

    @property
    def is_local(self) -> bool:
        """Its content is on this machine, so its digest is a build input."""
        return self.host_path is not None

    @property
    def is_remote_server(self) -> bool:
        return self.kind == "server" and self.host_path is None


def rock_source(text: str) -> RockSource:
    """A `rock.source` value: 'default', a server URL, a rock directory or a rock file."""
    if text == DEFAULT_SOURCE:
        return RockSource(text, "default")
    if URL.fullmatch(text):
        return server_source(text)
    kind: SourceKind = "file" if text.endswith(ROCK_FILE_SUFFIXES) else "directory"
    return RockSource(text, kind, text)


def server_source(text: str) -> RockSource:
    """A rock server: remote (http/https), or on this machine (file:// URL or directory)."""
    if _REMOTE.match(text):
        return RockSource(text, "server")
    return RockSource(text, "server", text.removeprefix("file://"))


def check_rock_source(value: str) -> str:
    if value == DEFAULT_SOURCE or URL.fullmatch(value):
        return value
    if "://" in value or not value.strip() or "\n" in value:
        raise ValueError(f"{value!r} is not a rock source: use {SOURCE_FORMS}")
    return value


def check_rock_server(value: str) -> str:
    if URL.fullmatch(value):
        return value
    if "://" in value or not value.strip() or "\n" in value:
        raise ValueError(f"{value!r} is not a rock server: use {SERVER_FORMS}")
    return value
