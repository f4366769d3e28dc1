"""Rocks, rock servers and targets made in a temp directory for the lock/resolve/vendor tests.

A rock here is a real `.src.rock` zip holding one top-level rockspec (what the resolver reads)
and a dummy source archive; a server is a directory with `manifest-5.1`, reachable as a path,
a file:// URL or over HTTP on 127.0.0.1. Nothing leaves the machine.
"""

from __future__ import annotations

import functools
import http.server
import io
import shutil
import threading
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import tomli_w

from qjson_tasks.config.load import load_target
from qjson_tasks.config.model import Target

PROJECT_DIR = Path(__file__).resolve().parents[2]

BASE_CONFIG: dict[str, Any] = {
    "runtime": {"base_image": "docker.io/library/debian:bookworm", "luajit": "/usr/bin/luajit"},
    "builder": {"image": "docker.io/library/rust:1-bookworm"},
    "output": {"image": "localhost/qjson-tasks/test"},
}


def rockspec_text(
    name: str, version: str, deps: Sequence[str] = (), build_deps: Sequence[str] = ()
) -> str:
    def listed(items: Sequence[str]) -> str:
        return "{ " + ", ".join(f'"{item}"' for item in items) + " }"

    return (
        f'package = "{name}"\nversion = "{version}"\n'
        f'source = {{ url = "https://example.invalid/{name}-{version}.tar.gz" }}\n'
        f"dependencies = {listed(['lua >= 5.1', *deps])}\n"
        f"build_dependencies = {listed(build_deps)}\n"
    )


def src_rock(
    name: str, version: str, deps: Sequence[str] = (), build_deps: Sequence[str] = ()
) -> bytes:
    """A .src.rock: the rockspec at the top level plus a (dummy) source archive."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            zipfile.ZipInfo(f"{name}-{version}.rockspec", date_time=(2000, 1, 1, 0, 0, 0)),
            rockspec_text(name, version, deps, build_deps),
        )
        archive.writestr(
            zipfile.ZipInfo(f"{name}-{version}.tar.gz", date_time=(2000, 1, 1, 0, 0, 0)),
            f"sources of {name} {version}",
        )
    return buffer.getvalue()


# name -> version -> (runtime dependencies, build dependencies)
ServerRocks = Mapping[str, Mapping[str, tuple[Sequence[str], Sequence[str]]]]


def write_server(directory: Path, rocks: ServerRocks, rockspec_only: Sequence[str] = ()) -> Path:
    """A static rock server: a manifest-5.1 and one `.src.rock` per version (a bare
    `.rockspec` for the rocks named in rockspec_only)."""
    directory.mkdir(parents=True, exist_ok=True)
    entries = []
    for name, versions in rocks.items():
        arch = "rockspec" if name in rockspec_only else "src"
        listed = []
        for version, (deps, build_deps) in versions.items():
            if arch == "rockspec":
                text = rockspec_text(name, version, deps, build_deps)
                (directory / f"{name}-{version}.rockspec").write_text(text)
            else:
                data = src_rock(name, version, deps, build_deps)
                (directory / f"{name}-{version}.src.rock").write_bytes(data)
            listed.append(f'["{version}"] = {{ {{ arch = "{arch}" }} }}')
        entries.append(f'   ["{name}"] = {{ ' + ", ".join(listed) + " }")
    manifest = "commands = {}\nmodules = {}\nrepository = {\n" + ",\n".join(entries) + "\n}\n"
    (directory / "manifest-5.1").write_text(manifest)
    return directory


def write_target(
    config_dir: Path,
    rocks: Sequence[Mapping[str, str]],
    server: str | None = None,
    name: str = "t",
) -> Target:
    """config_dir/<name>.toml with these [[rocks]] (and [luarocks] server), loaded."""
    data: dict[str, Any] = {**BASE_CONFIG, "rocks": [dict(rock) for rock in rocks]}
    if server is not None:
        data["luarocks"] = {"server": server}
    config_dir.mkdir(parents=True, exist_ok=True)
    path = config_dir / f"{name}.toml"
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return load_target(path)


def copy_multi(tmp_path: Path) -> Target:
    """The shipped multi target with its rocks, copied under tmp_path (config/ and rocks/)."""
    (tmp_path / "config").mkdir()
    shutil.copy(PROJECT_DIR / "config" / "multi.toml", tmp_path / "config")
    for name in ("qjson-demo", "cdemo", "server"):
        shutil.copytree(
            PROJECT_DIR / "rocks" / name,
            tmp_path / "rocks" / name,
            ignore=shutil.ignore_patterns("target"),
        )
    return load_target(tmp_path / "config" / "multi.toml")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve_http(directory: Path) -> Iterator[str]:
    """A static HTTP server for directory on 127.0.0.1; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
