"""A locked git rock's install step: unpacked and built at a fixed path, paths remapped."""

from __future__ import annotations

import subprocess
from pathlib import Path

from qjson_tasks.build.steps import BUILD_DIR, VENDOR_DIR, rock_step
from qjson_tasks.config.lockfile import Lock, LockedGit, LockedRock
from tests.unit.rockfiles import write_target

COMMIT = "c" * 40


def locked(git: bool) -> Lock:
    rock = LockedRock(
        name="r", version="1.0-1", kind="server", source="http://127.0.0.1:1",
        artifact="r-1.0-1.src.rock", url="http://127.0.0.1:1/r-1.0-1.rockspec",
        rockspec_sha256="a" * 64, source_sha256="b" * 64,
        git=LockedGit(url="git://127.0.0.1:2/r.git", tag="v1", commit=COMMIT, dir="r-src")
        if git else None,
    )  # fmt: skip
    return Lock(target="t", rocks=(rock,))


def step_argv(tmp_path: Path, git: bool) -> tuple[str, ...]:
    target = write_target(
        tmp_path, [{"name": "r", "version": "1.0", "source": "http://127.0.0.1:1"}]
    )
    rock = target.config.rocks[0]
    return rock_step(target.config, rock, None, locked(git)).argv


def test_a_locked_git_rock_is_unpacked_and_made_at_a_fixed_path(tmp_path: Path) -> None:
    argv = step_argv(tmp_path, git=True)
    assert argv[:2] == ("/bin/sh", "-c")
    script = argv[2]
    assert f"cd {BUILD_DIR}/r" in script
    assert f"--only-server={VENDOR_DIR} unpack r 1.0-1" in script
    assert "cd r-1.0-1/r-src" in script
    assert f"--remap-path-prefix={BUILD_DIR}/r=/build" in script
    assert "make --tree=/qjson-rock ../r-1.0-1.rockspec" in script
    # Valid shell, and a builder.env RUSTFLAGS is kept in front of the remapping.
    subprocess.run(["sh", "-n", "-c", script], check=True)
    flags = subprocess.run(
        [
            "sh",
            "-c",
            'eval "$(echo "$0" | sed -n "/^home=/,/^export/p")"; echo "$RUSTFLAGS"',
            script,
        ],
        env={"RUSTFLAGS": "-C x", "HOME": "/root"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert flags[:2] == ["-C", "x"] and "--remap-path-prefix=/root/.cargo=/cargo" in flags


def test_other_locked_server_rocks_are_installed_as_before(tmp_path: Path) -> None:
    argv = step_argv(tmp_path, git=False)
    assert argv[-4:] == ("install", "--tree=/qjson-rock", "r", "1.0-1")
