"""config/NAME.lock: writing and reading it, broken files, and when it no longer fits."""

from __future__ import annotations

from pathlib import Path

import pytest

from qjson_tasks.config.load import find_target
from qjson_tasks.config.lockfile import (
    Lock,
    LockedCargo,
    LockedCrate,
    LockedGit,
    LockedRock,
    checked_lock,
    lock_path,
    read_lock,
    stale_reason,
    write_lock,
)
from qjson_tasks.config.model import Target
from qjson_tasks.errors import ConfigError
from qjson_tasks.rocks.source import rock_facts
from qjson_tasks.rocks.vendor import check_local_rocks
from tests.unit.rockfiles import PROJECT_DIR, write_target

SHA_A = "a" * 64
SHA_B = "b" * 64


def multi() -> Target:
    return find_target("multi", PROJECT_DIR / "config")


def committed_lock() -> Lock:
    lock = read_lock(multi())
    assert lock is not None, "config/multi.lock is missing: run `invoke lock --target multi`"
    return lock


def with_entry(lock: Lock, name: str, **changes: object) -> Lock:
    """The lock with one rock's entry changed."""
    rocks = tuple(
        rock.model_copy(update=changes) if rock.name == name else rock for rock in lock.rocks
    )
    return lock.model_copy(update={"rocks": rocks})


def sample_lock(target: str = "t") -> Lock:
    return Lock(
        target=target,
        rocks=(
            LockedRock(
                name="dep",
                version="1.2-1",
                kind="server",
                source="https://rocks.example/",
                role="build",
                artifact="dep-1.2-1.src.rock",
                url="https://rocks.example/dep-1.2-1.src.rock",
                rockspec_sha256=SHA_A,
                source_sha256=SHA_B,
            ),
            LockedRock(
                name="app",
                version="1.0-1",
                kind="directory",
                source="../app",
                rockspec_sha256=SHA_B,
                source_sha256=SHA_A,
                dependencies=("dep",),
            ),
        ),
    )


@pytest.fixture
def target(tmp_path: Path) -> Target:
    return write_target(tmp_path / "config", [{"name": "app", "version": ">= 1.0"}])


def lock_error(target: Target, text: str) -> str:
    lock_path(target).write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        read_lock(target)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{lock_path(target)}: "), message
    assert message.endswith("; run `invoke lock --target t` to write it again"), message
    return message


# --- writing and reading ---------------------------------------------------------------------


def test_lock_path_is_next_to_the_config(target: Target) -> None:
    assert lock_path(target) == target.path.parent / "t.lock"


def test_write_then_read_round_trips(target: Target) -> None:
    lock = sample_lock()
    path = write_lock(target, lock)
    assert path == lock_path(target)
    assert read_lock(target) == lock
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Written by `invoke lock --target t`")
    assert sorted(p.name for p in path.parent.iterdir()) == ["t.lock", "t.toml"]  # no temp file


def git_rock_lock() -> Lock:
    entry = (
        sample_lock()
        .rocks[0]
        .model_copy(
            update={
                "git": LockedGit(url="git://127.0.0.1:9/r.git", tag="v1", commit="c" * 40),
                "cargo": LockedCargo(
                    lock_sha256=SHA_A,
                    crates=(LockedCrate(name="memchr", version="2.5.0", checksum=SHA_B),),
                ),
            }
        )
    )
    return Lock(target="t", rocks=(entry,))


def test_a_git_rust_rock_round_trips_with_commit_and_crates(target: Target) -> None:
    lock = git_rock_lock()
    path = write_lock(target, lock)
    assert read_lock(target) == lock
    text = path.read_text(encoding="utf-8")
    assert "[rocks.git]" in text and "[[rocks.cargo.crates]]" in text


def test_rocks_without_git_or_cargo_write_no_such_tables(target: Target) -> None:
    text = write_lock(target, sample_lock()).read_text(encoding="utf-8")
    assert "git" not in text and "cargo" not in text


def test_the_hashed_lock_adds_the_commit_only_for_git_rocks() -> None:
    plain = sample_lock().hashed()[0]
    git = git_rock_lock().hashed()[0]
    assert "commit" not in plain
    assert git == plain | {"commit": "c" * 40}


def test_a_commit_must_be_40_hex_digits() -> None:
    with pytest.raises(ValueError, match="commit"):
        LockedGit(url="git://h/r", tag="v1", commit="abc")


def test_writing_again_replaces_the_lock(target: Target) -> None:
    write_lock(target, sample_lock())
    smaller = Lock(target="t", rocks=sample_lock().rocks[1:])
    write_lock(target, smaller)
    assert read_lock(target) == smaller
    assert sorted(p.name for p in target.path.parent.iterdir()) == ["t.lock", "t.toml"]


def test_no_lock_file_reads_as_none(target: Target) -> None:
    assert read_lock(target) is None
    assert checked_lock(target) is None


def test_bad_toml_is_a_config_error(target: Target) -> None:
    message = lock_error(target, "format = 1\ntarget = \n")
    assert "cannot read the lock (" in message


def test_non_utf8_lock_is_a_config_error(target: Target) -> None:
    lock_path(target).write_bytes(b"target = '\xff'\n")
    with pytest.raises(ConfigError, match=r"cannot read the lock .*invoke lock --target t"):
        read_lock(target)


def test_bad_sha256_names_the_field(target: Target) -> None:
    path = write_lock(target, sample_lock())
    text = path.read_text(encoding="utf-8").replace(SHA_A, "A" * 64, 1)
    message = lock_error(target, text)
    assert "rockspec_sha256" in message


def test_short_sha256_names_the_field(target: Target) -> None:
    path = write_lock(target, sample_lock())
    text = path.read_text(encoding="utf-8").replace(SHA_B, "b" * 63, 1)
    assert "source_sha256" in lock_error(target, text)


def test_unknown_key_is_a_config_error(target: Target) -> None:
    path = write_lock(target, sample_lock())
    text = path.read_text(encoding="utf-8").replace('role = "build"', 'role = "build"\ncolour = 1')
    message = lock_error(target, text)
    assert "colour" in message and "Extra inputs are not permitted" in message


def test_unknown_format_is_a_config_error(target: Target) -> None:
    path = write_lock(target, sample_lock())
    text = path.read_text(encoding="utf-8").replace("format = 1", "format = 2")
    assert "format" in lock_error(target, text)


def test_unknown_kind_is_a_config_error(target: Target) -> None:
    path = write_lock(target, sample_lock())
    text = path.read_text(encoding="utf-8").replace('kind = "server"', 'kind = "git"')
    assert "kind" in lock_error(target, text)


# --- stale_reason --------------------------------------------------------------------------


def test_committed_multi_lock_fits_its_config() -> None:
    """The committed lock is current: it fits config/multi.toml and the local rocks still
    have the contents it records. If this fails, run `invoke lock --target multi`."""
    target = multi()
    lock = committed_lock()
    assert stale_reason(target, lock) is None
    assert checked_lock(target) == lock
    check_local_rocks(target, rock_facts(target), lock)


def test_committed_multi_lock_has_every_rock_with_hashes() -> None:
    lock = committed_lock()
    assert [(r.name, r.kind, r.role) for r in lock.rocks] == [
        ("qjson-demo", "directory", "runtime"),
        ("qjt-buildtool", "server", "build"),
        ("cdemo", "file", "runtime"),
    ]
    assert all(len(r.rockspec_sha256) == 64 and len(r.source_sha256) == 64 for r in lock.rocks)


def test_stale_when_a_rock_has_no_entry() -> None:
    lock = committed_lock()
    lock = lock.model_copy(update={"rocks": tuple(r for r in lock.rocks if r.name != "cdemo")})
    assert stale_reason(multi(), lock) == "it has no entry for rock 'cdemo'"


def test_stale_when_the_version_is_outside_the_requirement() -> None:
    lock = with_entry(committed_lock(), "cdemo", version="1.1-1")
    assert stale_reason(multi(), lock) == "it has cdemo 1.1-1, which does not satisfy '~> 1.0'"


def test_stale_when_the_version_is_unreadable() -> None:
    lock = with_entry(committed_lock(), "qjson-demo", version="scm-1")
    assert stale_reason(multi(), lock) == (
        "it has qjson-demo scm-1, which does not satisfy '==0.1.0'"
    )


def test_stale_when_the_source_kind_differs() -> None:
    lock = with_entry(committed_lock(), "cdemo", kind="server")
    assert stale_reason(multi(), lock) == "it has cdemo 1.0-1 from a server, the config a file"


def test_stale_when_a_configured_rock_is_locked_as_build_only() -> None:
    lock = with_entry(committed_lock(), "qjson-demo", role="build")
    assert stale_reason(multi(), lock) == "it has qjson-demo 0.1.0-1 as a build-only dependency"


def test_stale_when_written_for_another_target() -> None:
    lock = committed_lock().model_copy(update={"target": "offline"})
    assert stale_reason(multi(), lock) == "it was written for target 'offline'"


def test_a_default_source_fits_a_server_entry(target: Target) -> None:
    lock = Lock(target="t", rocks=(sample_lock().rocks[0].model_copy(update={"name": "app"}),))
    lock = with_entry(lock, "app", role="runtime")
    assert stale_reason(target, lock) is None
    assert stale_reason(target, with_entry(lock, "app", kind="directory")) == (
        "it has app 1.2-1 from a directory, the config a server"
    )


def test_checked_lock_says_how_to_update_a_stale_lock(target: Target) -> None:
    write_lock(target, sample_lock())  # app is locked as a directory; the config has 'default'
    with pytest.raises(ConfigError) as caught:
        checked_lock(target)
    assert str(caught.value) == (
        f"{lock_path(target)}: out of date with t.toml: it has app 1.0-1 from a directory,"
        " the config a server; run `invoke lock --target t` or build with --update-lock"
    )
