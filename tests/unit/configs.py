"""Shared config fixtures: a minimal target config as data, changed copies of it as TOML,
and the fixed texts the config errors use."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import tomli_w

MINIMAL: dict[str, Any] = {
    "runtime": {
        "base_image": "docker.io/library/debian:bookworm-slim",
        "luajit": "/usr/bin/luajit",
    },
    "builder": {"image": "docker.io/library/rust:1-bookworm"},
    "rock": {"name": "qjson-demo", "version": "==0.1.0"},
    "output": {"image": "localhost/qjson-tasks/test"},
}

DELETE = object()
OPERATORS = "==, ~=, <=, >=, ~>, <, >"
ABSOLUTE = "must be an absolute POSIX path without '..'"
IMAGE_FORM = "[registry/]name[:tag][@sha256:<64 hex>]"
SOURCE_FORM = "'default', an http(s):// or file:// server URL, a local directory with a rockspec"
TOP_KEYS = (
    "allowed: buildah, builder, cache, description, luarocks, output, rock, rocks, runtime,"
    " staging, verify"
)
RUNTIME_KEYS = "allowed: base_image, bootstrap, lua_version, luajit, prefix, user"


def mutated(*changes: tuple[str, Any]) -> str:
    """MINIMAL as TOML with dotted keys set (or deleted with DELETE)."""
    data = copy.deepcopy(MINIMAL)
    for dotted, value in changes:
        *parents, key = dotted.split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        if value is DELETE:
            del node[key]
        else:
            node[key] = value
    return tomli_w.dumps(data)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
