"""Reading rock servers: URLs and paths, manifests over file:// and HTTP.

Servers are temp directories, reached as paths, file:// URLs and through a small HTTP server
on localhost; nothing leaves the machine.
"""

from __future__ import annotations

import functools
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from qjson_tasks.errors import RockError
from qjson_tasks.luarocks.rockserver import ServerRock
from qjson_tasks.rocks.fetch import clear_manifest_cache, read_url, server_versions
from tests.unit.luarocks.test_rockserver import MANY_VERSIONS, SERVER_MANIFEST


@pytest.fixture(autouse=True)
def _fresh_manifest_cache() -> Iterator[None]:
    clear_manifest_cache()
    yield
    clear_manifest_cache()


def make_server(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A static HTTP server on localhost: (its base URL, the directory it serves)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    # A short poll so shutdown() returns quickly.
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# --- read_url ----------------------------------------------------------------------------------


def test_read_url_reads_paths_and_file_urls(tmp_path: Path) -> None:
    path = tmp_path / "with space" / "manifest"
    path.parent.mkdir()
    path.write_bytes(b"repository = {}\n")
    assert read_url(str(path)) == b"repository = {}\n"
    assert read_url(path.as_uri()) == b"repository = {}\n"  # percent-encoded space
    assert read_url(f"file://localhost{path}") == b"repository = {}\n"


def test_read_url_over_http(http_root: tuple[str, Path]) -> None:
    base, root = http_root
    (root / "manifest-5.1").write_bytes(b"commands = {}\n")
    assert read_url(f"{base}/manifest-5.1") == b"commands = {}\n"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("{tmp}/missing", "no such file"),
        ("file://{tmp}/missing", "no such file"),
        ("{tmp}", "can't read: Is a directory"),
        ("file://example.org/srv/manifest", "a file:// URL names no host (file:///path)"),
        ("relative/manifest", "can't read it: use an http(s):// or file:// URL, or an absolute"),
        ("ftp://example.org/manifest", "can't read it: use an http(s):// or file:// URL"),
    ],
)
def test_read_url_errors_name_the_url(tmp_path: Path, url: str, reason: str) -> None:
    url = url.format(tmp=tmp_path)
    with pytest.raises(RockError) as caught:
        read_url(url)
    assert str(caught.value).startswith(f"{url}: {reason}")


def test_read_url_http_404(http_root: tuple[str, Path]) -> None:
    base, _ = http_root
    with pytest.raises(RockError) as caught:
        read_url(f"{base}/nothing.rockspec")
    assert str(caught.value) == f"{base}/nothing.rockspec: HTTP 404 File not found"


def test_read_url_unreachable_host() -> None:
    with socket.socket() as probe:  # a port nobody listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/manifest"
    with pytest.raises(RockError) as caught:
        read_url(url, timeout=5)
    assert str(caught.value) == f"{url}: can't connect: Connection refused"


def test_read_url_timeout() -> None:
    with socket.socket() as silent:  # accepts connections (the backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/manifest"
        with pytest.raises(RockError) as caught:
            read_url(url, timeout=0.2)
    assert str(caught.value) == f"{url}: no answer within 0.2 s"


# --- server_versions ---------------------------------------------------------------------------


def test_server_versions_from_a_directory_and_a_file_url(tmp_path: Path) -> None:
    server = make_server(tmp_path / "rocks", {"manifest-5.1": SERVER_MANIFEST})
    expected = [ServerRock("cdemo", "1.0-1", ("src",))]
    assert server_versions(str(server), "cdemo") == expected
    assert server_versions(server.as_uri() + "/", "cdemo") == expected
    assert server_versions(str(server), "qjt-buildtool") == [
        ServerRock("qjt-buildtool", "1.0-1", ("src",))
    ]
    assert server_versions(str(server), "absent") == []


def test_server_versions_over_http(http_root: tuple[str, Path]) -> None:
    base, root = http_root
    make_server(root, {"manifest-5.1": MANY_VERSIONS})
    rocks = server_versions(base, "lpeg")
    # Sorted as text, as luarocks writes a manifest: Lua tables keep no order of their own.
    assert [rock.version for rock in rocks] == [
        "0.12.2-1",
        "1.0.2-1",
        "1.0.2-2",
        "1.1.0-1",
        "1.1.0-2",
        "scm-1",
    ]
    assert rocks[3] == ServerRock("lpeg", "1.1.0-1", ("rockspec", "src", "win32-x86"))


def test_manifest_for_the_lua_version_comes_first(tmp_path: Path) -> None:
    server = make_server(
        tmp_path,
        {
            "manifest": SERVER_MANIFEST,
            "manifest-5.1": 'repository = { cdemo = { ["2.0-1"] = { { arch = "src" } } } }',
            "manifest-5.4": "repository = {}",
        },
    )
    assert server_versions(str(server), "cdemo") == [ServerRock("cdemo", "2.0-1", ("src",))]
    # A rock missing from manifest-5.4 is absent: no fall back to `manifest` then.
    assert server_versions(str(server), "cdemo", lua_version="5.4") == []
    # Only a missing manifest-<version> falls back to `manifest`.
    assert server_versions(str(server), "cdemo", lua_version="5.3") == [
        ServerRock("cdemo", "1.0-1", ("src",))
    ]


def test_fall_back_to_manifest_over_http(http_root: tuple[str, Path]) -> None:
    base, root = http_root
    make_server(root, {"manifest": SERVER_MANIFEST})
    assert server_versions(base + "/", "cdemo") == [ServerRock("cdemo", "1.0-1", ("src",))]


def test_no_manifest_at_all(tmp_path: Path, http_root: tuple[str, Path]) -> None:
    with pytest.raises(RockError) as caught:
        server_versions(str(tmp_path), "cdemo")
    assert str(caught.value) == f"{tmp_path}/manifest: no such file"
    base, _ = http_root
    with pytest.raises(RockError) as caught:
        server_versions(base, "cdemo")
    assert str(caught.value) == f"{base}/manifest: HTTP 404 File not found"


def test_manifests_are_read_once_per_server(tmp_path: Path) -> None:
    server = make_server(tmp_path, {"manifest-5.1": SERVER_MANIFEST})
    assert server_versions(str(server), "cdemo")[0].version == "1.0-1"
    (server / "manifest-5.1").write_text(SERVER_MANIFEST.replace("1.0-1", "9.9-1"))
    # The same server spelled differently is the same server.
    assert server_versions(f"{server}/", "cdemo")[0].version == "1.0-1"
    clear_manifest_cache()
    assert server_versions(str(server), "cdemo")[0].version == "9.9-1"


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ("commands = {}", "manifest-5.1: not a luarocks manifest (no 'repository' table)"),
        ("repository = 1", "manifest-5.1: repository: expected a table, got number"),
        ("repository = {\n", "manifest-5.1: line 2: unexpected symbol near <eof>"),
        ("<html>\n</html>", "manifest-5.1: line 1: unexpected symbol near '<'"),
        (
            "repository = { cdemo = os.exit(1) }",
            "manifest-5.1: line 1: 'os' is not defined"
            " (a data file can only use values assigned above)",
        ),
        (
            'repository = { cdemo = "1.0-1" }',
            "manifest-5.1: repository['cdemo']: expected a table, got string",
        ),
        (
            "repository = { cdemo = { [1] = {} } }",
            "manifest-5.1: repository['cdemo']: a version: expected a string, got number",
        ),
        (
            'repository = { cdemo = { ["1.0-1"] = { arch = "src" } } }',
            "manifest-5.1: repository['cdemo']['1.0-1']: expected a list,"
            " got a table with key 'arch'",
        ),
        (
            'repository = { cdemo = { ["1.0-1"] = { "src" } } }',
            "manifest-5.1: repository['cdemo']['1.0-1']: expected a table, got string",
        ),
        (
            'repository = { cdemo = { ["1.0-1"] = { { arch = 5 } } } }',
            "manifest-5.1: repository['cdemo']['1.0-1']: arch: expected a string, got number",
        ),
    ],
)
def test_malformed_manifests(tmp_path: Path, manifest: str, message: str) -> None:
    make_server(tmp_path, {"manifest-5.1": manifest})
    with pytest.raises(RockError) as caught:
        server_versions(str(tmp_path), "cdemo")
    assert str(caught.value) == f"{tmp_path}/{message}"


def test_manifest_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "manifest-5.1").write_bytes(b"repository = { ['\xff'] = {} }")
    with pytest.raises(RockError) as caught:
        server_versions(str(tmp_path), "cdemo")
    assert str(caught.value) == f"{tmp_path}/manifest-5.1: not a luarocks manifest (not UTF-8 text)"


def test_a_malformed_entry_of_another_rock_does_not_matter(tmp_path: Path) -> None:
    manifest = SERVER_MANIFEST.replace('arch = "src"', "arch = 1", 1)  # cdemo's entry
    make_server(tmp_path, {"manifest-5.1": manifest})
    assert server_versions(str(tmp_path), "qjt-buildtool")[0].arches == ("src",)
    with pytest.raises(RockError, match=r"arch: expected a string, got number$"):
        server_versions(str(tmp_path), "cdemo")
