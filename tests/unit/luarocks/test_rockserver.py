"""Rock servers' layout: server URLs, artifact URLs and picking a version (reading servers
is tests/unit/rocks/test_fetch.py's)."""

from __future__ import annotations

import pytest

from qjson_tasks.errors import RockError
from qjson_tasks.luarocks.rockserver import (
    ServerRock,
    artifact_url,
    best_version,
    parse_repository,
    rock_versions,
    server_url,
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


# --- best_version ------------------------------------------------------------------------------


def lpeg_rocks() -> list[ServerRock]:
    url = "https://luarocks.org/manifest-5.1"
    return rock_versions(parse_repository(MANY_VERSIONS.encode(), url), url, "lpeg")


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
def test_best_version(dependency: str, version: str | None) -> None:
    best = best_version(lpeg_rocks(), parse_dependency(dependency, "test"))
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
