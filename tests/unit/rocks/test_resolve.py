"""Resolving a target's rocks and their dependencies into a Lock.

Servers are temp directories (as paths and file:// URLs) and a static HTTP server on
127.0.0.1; rocks are .src.rock zips made here. luarocks.org is never asked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from qjson_tasks.config.lockfile import Lock, read_lock
from qjson_tasks.errors import RockError
from qjson_tasks.luarocks.rockspec import rockspec_in_archive
from qjson_tasks.rocks.fetch import clear_manifest_cache
from qjson_tasks.rocks.resolve import resolve
from qjson_tasks.rocks.source import source_digest
from tests.unit.rockfiles import (
    PROJECT_DIR,
    copy_multi,
    rockspec_text,
    serve_http,
    src_rock,
    write_server,
    write_target,
)

FOO_VERSIONS = {"1.0-1": ((), ()), "1.2-1": ((), ()), "2.0-1": ((), ())}


@pytest.fixture(autouse=True)
def _fresh_manifest_cache() -> Iterator[None]:
    clear_manifest_cache()
    yield
    clear_manifest_cache()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def summary(lock: Lock) -> list[tuple[str, str, str, str]]:
    return [(r.name, r.version, r.kind, r.role) for r in lock.rocks]


def resolve_error(target: object) -> str:
    with pytest.raises(RockError) as caught:
        resolve(target)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "\n" not in message
    return message


# --- the shipped multi target --------------------------------------------------------------


def test_multi_target_resolves_to_its_rocks_in_dependency_order(tmp_path: Path) -> None:
    target = copy_multi(tmp_path)
    lock = resolve(target)
    assert lock.target == "multi"
    assert summary(lock) == [
        ("qjson-demo", "0.1.0-1", "directory", "runtime"),
        ("qjt-buildtool", "1.0-1", "server", "build"),
        ("cdemo", "1.0-1", "file", "runtime"),
    ]
    demo, tool, cdemo = lock.rocks
    rocks = tmp_path / "rocks"

    spec = rocks / "qjson-demo" / "rockspec" / "qjson-demo-0.1.0-1.rockspec"
    assert demo.source == "../rocks/qjson-demo"
    assert demo.rockspec_sha256 == sha256(spec.read_bytes())
    assert demo.source_sha256 == source_digest(rocks / "qjson-demo")
    assert (demo.artifact, demo.url) == ("", "")

    tool_rock = (rocks / "server" / "qjt-buildtool-1.0-1.src.rock").read_bytes()
    assert tool.source == "../rocks/server"
    assert tool.artifact == "qjt-buildtool-1.0-1.src.rock"
    assert tool.url == ""  # a server on this machine: found again through source
    assert tool.source_sha256 == sha256(tool_rock)
    assert tool.rockspec_sha256 == sha256(rockspec_in_archive(tool_rock, "tool")[1])

    cdemo_rock = (rocks / "cdemo" / "cdemo-1.0-1.src.rock").read_bytes()
    assert cdemo.source == "../rocks/cdemo/cdemo-1.0-1.src.rock"
    assert cdemo.artifact == "cdemo-1.0-1.src.rock"
    assert cdemo.source_sha256 == sha256(cdemo_rock)
    assert cdemo.rockspec_sha256 == sha256(rockspec_in_archive(cdemo_rock, "cdemo")[1])
    # cdemo needs only lua at runtime; qjt-buildtool is a build dependency, not listed.
    assert cdemo.dependencies == ()


def test_resolving_the_multi_target_again_gives_the_committed_lock(tmp_path: Path) -> None:
    """If this fails, the rocks changed: run `invoke lock --target multi`."""
    from qjson_tasks.config.load import find_target

    committed = read_lock(find_target("multi", PROJECT_DIR / "config"))
    assert resolve(copy_multi(tmp_path)) == committed


# --- picking versions from a server --------------------------------------------------------


@pytest.mark.parametrize(
    ("requirement", "chosen"),
    [
        ("~> 1.0", "1.0-1"),
        ("~> 1", "1.2-1"),
        (">= 1.0", "2.0-1"),
        ("< 2", "1.2-1"),
        ("<= 1.2", "1.2-1"),
        ("> 1.0, < 2.0", "1.2-1"),
        ("== 1.2", "1.2-1"),
        ("1.0-1", "1.0-1"),
        ("~= 2.0", "1.2-1"),
    ],
)
def test_the_newest_allowed_version_wins(tmp_path: Path, requirement: str, chosen: str) -> None:
    write_server(tmp_path / "server", {"foo": FOO_VERSIONS})
    target = write_target(
        tmp_path / "config", [{"name": "foo", "version": requirement}], server="../server"
    )
    lock = resolve(target)
    assert summary(lock) == [("foo", chosen, "server", "runtime")]
    entry = lock.rocks[0]
    data = (tmp_path / "server" / f"foo-{chosen}.src.rock").read_bytes()
    assert entry.source == "../server"  # relative to the config's directory
    assert entry.artifact == f"foo-{chosen}.src.rock"
    assert entry.source_sha256 == sha256(data)
    assert entry.rockspec_sha256 == sha256(rockspec_in_archive(data, "foo")[1])


def test_a_file_url_server_as_a_rock_source(tmp_path: Path) -> None:
    server = write_server(tmp_path / "server", {"foo": FOO_VERSIONS})
    target = write_target(
        tmp_path / "config", [{"name": "foo", "version": "< 2", "source": server.as_uri()}]
    )
    lock = resolve(target)
    assert summary(lock) == [("foo", "1.2-1", "server", "runtime")]
    assert lock.rocks[0].source == "../server"


def test_a_runtime_dependency_chain_is_runtime_and_ordered(tmp_path: Path) -> None:
    write_server(
        tmp_path / "server",
        {
            "app": {"1.0-1": (["foo >= 1.0"], ())},
            "foo": {"1.0-1": ((), ()), "2.0-1": (["baz"], ())},
            "baz": {"0.5-1": ((), ())},
        },
    )
    target = write_target(
        tmp_path / "config", [{"name": "app", "version": "1.0"}], server="../server"
    )
    lock = resolve(target)
    assert summary(lock) == [
        ("baz", "0.5-1", "server", "runtime"),
        ("foo", "2.0-1", "server", "runtime"),
        ("app", "1.0-1", "server", "runtime"),
    ]
    assert [r.dependencies for r in lock.rocks] == [(), ("baz",), ("foo",)]
    assert lock.entry("lua") is None


def test_build_dependencies_and_theirs_are_build_only(tmp_path: Path) -> None:
    write_server(
        tmp_path / "server",
        {
            "app": {"1.0-1": (["shared"], ["tool"])},
            "tool": {"1.0-1": (["toollib", "shared"], ())},
            "toollib": {"1.0-1": ((), ())},
            "shared": {"1.0-1": ((), ())},
        },
    )
    target = write_target(
        tmp_path / "config", [{"name": "app", "version": "1.0"}], server="../server"
    )
    lock = resolve(target)
    roles = {r.name: r.role for r in lock.rocks}
    assert roles == {"app": "runtime", "shared": "runtime", "tool": "build", "toollib": "build"}
    order = [r.name for r in lock.rocks]
    assert order.index("toollib") < order.index("tool") < order.index("app")
    assert order.index("shared") < order.index("tool")
    assert lock.entry("app").dependencies == ("shared",)  # type: ignore[union-attr]


def test_a_dependency_cycle_still_resolves(tmp_path: Path) -> None:
    write_server(
        tmp_path / "server",
        {"a": {"1.0-1": (["b"], ())}, "b": {"1.0-1": (["a >= 1.0"], ())}},
    )
    target = write_target(
        tmp_path / "config", [{"name": "a", "version": "1.0"}], server="../server"
    )
    lock = resolve(target)
    assert summary(lock) == [
        ("b", "1.0-1", "server", "runtime"),
        ("a", "1.0-1", "server", "runtime"),
    ]


def test_a_rockspec_only_rock_has_no_source_hash(tmp_path: Path) -> None:
    write_server(tmp_path / "server", {"foo": {"1.0-1": ((), ())}}, rockspec_only=["foo"])
    target = write_target(
        tmp_path / "config", [{"name": "foo", "version": "1.0"}], server="../server"
    )
    (entry,) = resolve(target).rocks
    spec = (tmp_path / "server" / "foo-1.0-1.rockspec").read_bytes()
    assert (entry.artifact, entry.source_sha256) == ("foo-1.0-1.rockspec", "")
    assert entry.rockspec_sha256 == sha256(spec)


def test_dependencies_of_a_local_rock_file_come_from_luarocks_server(tmp_path: Path) -> None:
    write_server(tmp_path / "server", {"foo": FOO_VERSIONS})
    rock = tmp_path / "app-1.0-1.src.rock"
    rock.write_bytes(src_rock("app", "1.0-1", ["foo ~> 1.0"]))
    target = write_target(
        tmp_path / "config",
        [{"name": "app", "version": "1.0", "source": "../app-1.0-1.src.rock"}],
        server="../server",
    )
    lock = resolve(target)
    assert summary(lock) == [
        ("foo", "1.0-1", "server", "runtime"),
        ("app", "1.0-1", "file", "runtime"),
    ]
    assert lock.entry("app").source == "../app-1.0-1.src.rock"  # type: ignore[union-attr]
    assert lock.entry("app").source_sha256 == sha256(rock.read_bytes())  # type: ignore[union-attr]


def test_dependencies_of_a_local_directory_come_from_luarocks_server(tmp_path: Path) -> None:
    write_server(tmp_path / "server", {"foo": FOO_VERSIONS})
    directory = tmp_path / "app"
    directory.mkdir()
    (directory / "app-1.0-1.rockspec").write_text(rockspec_text("app", "1.0-1", ["foo < 2"]))
    target = write_target(
        tmp_path / "config", [{"name": "app", "version": "1.0", "source": "../app"}], "../server"
    )
    lock = resolve(target)
    assert summary(lock) == [
        ("foo", "1.2-1", "server", "runtime"),
        ("app", "1.0-1", "directory", "runtime"),
    ]
    assert lock.entry("app").source_sha256 == source_digest(directory)  # type: ignore[union-attr]


# --- what can't be resolved ----------------------------------------------------------------


def test_incompatible_requirements_name_both_rocks(tmp_path: Path) -> None:
    write_server(
        tmp_path / "server",
        {
            "a": {"1.0-1": (["foo ~> 1.0"], ())},
            "b": {"1.0-1": (["foo >= 2.0"], ())},
            "foo": FOO_VERSIONS,
        },
    )
    target = write_target(
        tmp_path / "config",
        [{"name": "a", "version": "1.0"}, {"name": "b", "version": "1.0"}],
        server="../server",
    )
    assert resolve_error(target) == (
        f"{target.path}: cannot resolve: b 1.0-1 needs foo >= 2.0, but foo 1.0-1 was chosen"
        " for a 1.0-1"
    )


def test_a_dependency_conflicting_with_a_configured_rock(tmp_path: Path) -> None:
    write_server(tmp_path / "server", {"a": {"1.0-1": (["foo >= 2.0"], ())}, "foo": FOO_VERSIONS})
    target = write_target(
        tmp_path / "config",
        [{"name": "foo", "version": "~> 1.2"}, {"name": "a", "version": "1.0"}],
        server="../server",
    )
    assert resolve_error(target) == (
        f"{target.path}: cannot resolve: a 1.0-1 needs foo >= 2.0, but foo 1.2-1 was chosen"
        " for t.toml"
    )


def test_nothing_satisfies_a_dependency(tmp_path: Path) -> None:
    server = write_server(
        tmp_path / "server", {"app": {"1.0-1": (["foo >= 3"], ())}, "foo": FOO_VERSIONS}
    )
    target = write_target(
        tmp_path / "config", [{"name": "app", "version": "1.0"}], server="../server"
    )
    assert resolve_error(target) == (
        f"{target.path}: cannot resolve foo >= 3 (wanted by app 1.0-1):"
        f" {server.resolve()} has 1.0-1, 1.2-1, 2.0-1"
    )


def test_nothing_satisfies_a_configured_rock(tmp_path: Path) -> None:
    server = write_server(tmp_path / "server", {"foo": FOO_VERSIONS})
    target = write_target(
        tmp_path / "config", [{"name": "foo", "version": "~> 3.1"}], server="../server"
    )
    assert resolve_error(target) == (
        f"{target.path}: cannot resolve foo ~> 3.1 (wanted by t.toml):"
        f" {server.resolve()} has 1.0-1, 1.2-1, 2.0-1"
    )


def test_a_rock_the_server_does_not_have(tmp_path: Path) -> None:
    server = write_server(tmp_path / "server", {"foo": FOO_VERSIONS})
    target = write_target(
        tmp_path / "config", [{"name": "bar", "version": "1.0"}], server="../server"
    )
    assert resolve_error(target).endswith(f": {server.resolve()} has no version")


def test_a_rock_file_holding_another_rock(tmp_path: Path) -> None:
    (tmp_path / "foo-2.0-1.src.rock").write_bytes(src_rock("foo", "2.0-1"))
    target = write_target(
        tmp_path / "config",
        [{"name": "foo", "version": "~> 1.0", "source": "../foo-2.0-1.src.rock"}],
    )
    path = tmp_path / "foo-2.0-1.src.rock"
    assert resolve_error(target) == (
        f"{target.path}: rock.source: '{path}' holds foo 2.0-1, not foo '~> 1.0'"
    )


def test_a_missing_rock_file(tmp_path: Path) -> None:
    write_server(tmp_path / "server", {"foo": FOO_VERSIONS})
    target = write_target(
        tmp_path / "config",
        [{"name": "foo", "version": "1.0"}, {"name": "bar", "version": "1.0", "source": "x.rock"}],
        server="../server",
    )
    path = tmp_path / "config" / "x.rock"
    assert resolve_error(target) == (
        f"{target.path}: rocks[1].source: cannot read '{path}': No such file or directory"
    )


# --- over HTTP ------------------------------------------------------------------------------


def test_an_http_server_and_the_artifact_urls(tmp_path: Path) -> None:
    root = write_server(
        tmp_path / "www",
        {"app": {"1.0-1": (["foo ~> 1"], ())}, "foo": FOO_VERSIONS},
    )
    with serve_http(root) as base:
        target = write_target(
            tmp_path / "config", [{"name": "app", "version": "1.0", "source": base}]
        )
        lock = resolve(target)
    assert summary(lock) == [
        ("foo", "1.2-1", "server", "runtime"),
        ("app", "1.0-1", "server", "runtime"),
    ]
    foo, app = lock.rocks
    assert (foo.source, foo.url) == (base, f"{base}/foo-1.2-1.src.rock")
    assert (app.source, app.url) == (base, f"{base}/app-1.0-1.src.rock")
    assert foo.artifact == "foo-1.2-1.src.rock"
    assert foo.source_sha256 == sha256((root / "foo-1.2-1.src.rock").read_bytes())


def test_an_http_luarocks_server_for_default_rocks(tmp_path: Path) -> None:
    root = write_server(tmp_path / "www", {"foo": FOO_VERSIONS})
    with serve_http(root) as base:
        target = write_target(
            tmp_path / "config", [{"name": "foo", "version": ">= 1.0"}], server=f"{base}/"
        )
        lock = resolve(target)
    assert summary(lock) == [("foo", "2.0-1", "server", "runtime")]
    assert lock.rocks[0].url == f"{base}/foo-2.0-1.src.rock"
