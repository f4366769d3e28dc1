"""Rock servers: reading URLs and paths, manifests, artifact URLs and picking a version.

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
from qjson_tasks.luarocks.rockserver import (
    ServerRock,
    artifact_url,
    best_version,
    clear_manifest_cache,
    read_url,
    server_url,
    server_versions,
)
from qjson_tasks.luarocks.rockspec import parse_dependency

# Written by `luarocks-admin make-manifest`.
SERVER_MANIFEST = """commands = {}
modules = {}
repository = {
   cdemo = {
      ["1.0-1"] = {
         {
            arch = "src"
         }
      }
   },
   ["qjt-buildtool"] = {
      ["1.0-1"] = {
         {
            arch = "src"
         }
      }
   }
}
"""

# Shaped like https://luarocks.org/manifest-5.1: several versions and arches per rock.
MANY_VERSIONS = """commands = {}
modules = {}
repository = {
   lpeg = {
      ["0.12.2-1"] = { { arch = "rockspec" }, { arch = "src" } },
      ["1.0.2-1"] = { { arch = "rockspec" }, { arch = "src" } },
      ["1.1.0-1"] = { { arch = "rockspec" }, { arch = "src" }, { arch = "win32-x86" } },
      ["1.1.0-2"] = { { arch = "linux-x86_64" } },
      ["scm-1"] = { { arch = "rockspec" } },
      ["1.0.2-2"] = { { arch = "all" } },
   },
}
"""


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


# --- server_url and artifact_url ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("server", "normalized"),
    [
        ("https://luarocks.org", "https://luarocks.org"),
        ("https://luarocks.org/", "https://luarocks.org"),
        ("https://luarocks.org/dev//", "https://luarocks.org/dev"),
        ("http://127.0.0.1:8080/rocks/", "http://127.0.0.1:8080/rocks"),
        ("file:///srv/rocks/", "file:///srv/rocks"),
        ("/srv/rocks/", "/srv/rocks"),
        ("/srv//rocks/./", "/srv/rocks"),
        ("/", "/"),
    ],
)
def test_server_url(server: str, normalized: str) -> None:
    assert server_url(server) == normalized


@pytest.mark.parametrize(
    "server", ["rocks", "./rocks", "", "https://", "ftp://example.org/", "file://relative/x"]
)
def test_server_url_rejects(server: str) -> None:
    with pytest.raises(RockError) as caught:
        server_url(server)
    assert str(caught.value) == (
        f"rock server '{server}': use an http(s):// or file:// URL, or an absolute directory path"
    )


@pytest.mark.parametrize(
    ("server", "arch", "url"),
    [
        ("https://luarocks.org/", "src", "https://luarocks.org/lpeg-1.1.0-1.src.rock"),
        ("https://luarocks.org", "rockspec", "https://luarocks.org/lpeg-1.1.0-1.rockspec"),
        ("https://luarocks.org", "all", "https://luarocks.org/lpeg-1.1.0-1.all.rock"),
        (
            "https://luarocks.org",
            "linux-x86_64",
            "https://luarocks.org/lpeg-1.1.0-1.linux-x86_64.rock",
        ),
        ("file:///srv/rocks/", "src", "file:///srv/rocks/lpeg-1.1.0-1.src.rock"),
        ("/srv/rocks", "rockspec", "/srv/rocks/lpeg-1.1.0-1.rockspec"),
    ],
)
def test_artifact_url(server: str, arch: str, url: str) -> None:
    assert artifact_url(server, "lpeg", "1.1.0-1", arch) == url


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


# --- best_version ------------------------------------------------------------------------------


def lpeg_rocks(tmp_path: Path) -> list[ServerRock]:
    make_server(tmp_path, {"manifest-5.1": MANY_VERSIONS})
    return server_versions(str(tmp_path), "lpeg")


@pytest.mark.parametrize(
    ("dependency", "version"),
    [
        # 1.1.0-2 is higher but only a linux-x86_64 binary; scm-1 can't be compared.
        ("lpeg", "1.1.0-1"),
        ("lpeg >= 1.0", "1.1.0-1"),
        ("lpeg ~> 1.0", "1.0.2-2"),  # an `all` rock is installable too
        ("lpeg < 1.0.2-2", "1.0.2-1"),
        ("lpeg 0.12.2", "0.12.2-1"),
        ("lpeg >= 2.0", None),
        ("lpeg 1.1.0-2", None),  # binary only
    ],
)
def test_best_version(tmp_path: Path, dependency: str, version: str | None) -> None:
    best = best_version(lpeg_rocks(tmp_path), parse_dependency(dependency, "test"))
    assert (best.version if best else None) == version


def test_best_version_of_nothing() -> None:
    assert best_version([], parse_dependency("lpeg", "test")) is None
    only_scm = [ServerRock("lpeg", "scm-1", ("rockspec",)), ServerRock("lpeg", "dev-1", ("src",))]
    assert best_version(only_scm, parse_dependency("lpeg", "test")) is None


def test_install_arch_prefers_sources() -> None:
    assert ServerRock("a", "1-1", ("rockspec", "src", "all")).install_arch == "src"
    assert ServerRock("a", "1-1", ("all", "rockspec")).install_arch == "rockspec"
    assert ServerRock("a", "1-1", ("linux-x86_64", "all")).install_arch == "all"
    assert ServerRock("a", "1-1", ("linux-x86_64",)).install_arch is None
