"""The rendered Containerfiles: committed ones are current, and they keep Rust in the builder."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from qjson_tasks.app.containerfile import containerfile_path, render_containerfile
from qjson_tasks.app.targets import resolve_target, show_target
from qjson_tasks.app.tools import CONFIG_DIR, PROJECT_DIR
from qjson_tasks.build.containerfile import _script_line, render
from qjson_tasks.build.steps import BUILD_DIR, VENDOR_DIR, git_rock_install
from qjson_tasks.config.load import list_targets
from qjson_tasks.config.lockfile import Lock
from qjson_tasks.config.model import Target
from qjson_tasks.errors import ConfigError
from qjson_tasks.rocks.crates import offline_cargo_config
from tests.unit.build.test_git_rock_step import COMMIT, locked
from tests.unit.rockfiles import write_target

TARGETS = [path.stem for path in list_targets(CONFIG_DIR)]


@pytest.mark.parametrize("name", TARGETS)
def test_committed_containerfile_is_up_to_date(name: str) -> None:
    target = resolve_target(name)
    committed = containerfile_path(target)
    assert committed.is_file(), f"run: invoke containerfile --target {name} --write"
    assert committed.read_text() == render_containerfile(target), (
        f"{committed} is out of date; run: invoke containerfile --target {name} --write"
    )


@pytest.mark.parametrize("name", TARGETS)
def test_runtime_stage_only_copies_the_tree(name: str) -> None:
    target = resolve_target(name)
    text = render_containerfile(target)
    builder, runtime = text.split("\n\n")
    config = target.config
    assert f"FROM {config.builder.image} AS builder" in builder
    assert f"--tree={config.staging.tree}" in builder
    runtime_lines = runtime.strip().splitlines()
    assert runtime_lines[0] == f"FROM {config.runtime.base_image}"
    assert runtime_lines[1] == (
        f"COPY --from=builder --chown=0:0 {config.staging.tree}/ {config.runtime.prefix}/"
    )
    assert runtime_lines[-1] == f"USER {config.runtime.user}"
    assert not any(line.startswith("RUN") for line in runtime_lines)


def test_a_rock_outside_the_build_context_is_an_error(tmp_path: Path) -> None:
    target = resolve_target("offline")
    with pytest.raises(ConfigError, match="outside the build context"):
        render(target, tmp_path)


def with_builder_env(env: dict[str, str]) -> Target:
    target = resolve_target("offline")
    config = target.config
    builder = config.builder.model_copy(update={"env": env})
    return Target(target.name, target.path, config.model_copy(update={"builder": builder}))


SECRET = "s3cr3t-value-never-written"


def test_credentials_in_builder_env_never_reach_the_containerfile() -> None:
    target = with_builder_env({"ROCKS_TOKEN": SECRET, "CARGO_PROFILE_RELEASE_STRIP": "symbols"})
    text = render(target, PROJECT_DIR)
    assert SECRET not in text
    assert "ARG ROCKS_TOKEN\n" in text
    assert "CARGO_PROFILE_RELEASE_STRIP=symbols luarocks" in text


def test_show_hides_credentials_in_builder_env() -> None:
    text = show_target(with_builder_env({"ROCKS_TOKEN": SECRET, "RUSTFLAGS": "-O"}))
    assert SECRET not in text
    assert "ROCKS_TOKEN" in text and 'RUSTFLAGS = "-O"' in text


def test_a_multi_line_setup_script_is_one_run_that_gives_sh_the_same_script() -> None:
    script = resolve_target("crates").config.builder.setup[0]
    line = _script_line(script)
    assert line.startswith("RUN /bin/sh -c ")
    # What the RUN line's shell receives, once the file's line continuations are joined.
    joined = line.removeprefix("RUN ").replace("\\\n", "").replace("/bin/sh -c", "printf %s", 1)
    received = subprocess.run(["sh", "-c", joined], capture_output=True, text=True, check=True)
    assert received.stdout == script.strip("\n")


# --- a locked git rock, and the vendor directory -------------------------------------------


def git_rock_target(tmp_path: Path) -> Target:
    return write_target(tmp_path, [{"name": "r", "version": "1.0", "source": "http://127.0.0.1:1"}])


def received_script(text: str) -> tuple[str, str]:
    """(env prefix, script) of the rendered file's multi-line rock RUN, as sh receives it."""
    run = next(block for block in text.split("\nRUN ")[1:] if "/qjson-build/" in block)
    run = run.split("\n\n")[0]
    env, _, command = run.partition("/bin/sh -c ")
    joined = command.replace("\\\n", "").replace('"$(printf', '"$(printf', 1)
    received = subprocess.run(
        ["sh", "-c", f"printf %s {joined}"], capture_output=True, text=True, check=True
    )
    return env.strip(), received.stdout


def test_a_locked_git_rock_is_rendered_as_build_runtime_builds_it(tmp_path: Path) -> None:
    target = git_rock_target(tmp_path)
    text = render(target, tmp_path, locked(git=True))
    assert "# r 1.0-1: git://127.0.0.1:2/r.git, tag v1,\n# checked to be the commit t.lock" in text
    env, script = received_script(text)
    assert env == ""
    subprocess.run(["sh", "-n", "-c", script], check=True)
    lines = script.split("\n")
    assert lines[:2] == ["set -eu", f"mkdir -p {BUILD_DIR}/r && cd {BUILD_DIR}/r"]
    assert "--only-server=http://127.0.0.1:1 download --rockspec r 1.0-1" in lines[2]
    assert lines[3] == f"echo '{'a' * 64}  r-1.0-1.rockspec' | sha256sum -c -"
    assert "git clone -q --depth=1 --branch=v1 git://127.0.0.1:2/r.git r-1.0-1/r-src" in script
    assert f'[ "$(git -C r-1.0-1/r-src rev-parse HEAD)" = {COMMIT} ]' in script
    # From the source directory on, the very lines build-runtime runs (another server).
    tool = git_rock_install(target.config, locked(git=True).rocks[0])[2].split("\n")
    start = tool.index("cd r-1.0-1/r-src")
    assert lines[lines.index("cd r-1.0-1/r-src") :] == [
        line.replace(VENDOR_DIR, "http://127.0.0.1:1") for line in tool[start:]
    ]


def test_the_rendered_git_rock_build_checks_the_locked_commit(tmp_path: Path) -> None:
    """The fetch part of the rendered script run here against a real git repository, with
    a stand-in luarocks: the locked commit builds, a moved tag stops before the build."""
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=repo, capture_output=True, text=True, check=True,
        )  # fmt: skip
        return done.stdout.strip()

    git("init", "-q")
    (repo / "lib.rs").write_text("one\n")
    git("add", ".")
    git("commit", "-qm", "one")
    git("tag", "v1")
    commit = git("rev-parse", "HEAD")
    rockspec = b"package = 'r'\n"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "luarocks"
    fake.write_text(
        "#!/bin/sh\n"
        'case "$*" in *download*) printf "package = \'r\'\\n" > r-1.0-1.rockspec ;;\n'
        '*make*) echo "make in $(pwd) with $RUSTFLAGS" > "$QJT_LOG" ;; esac\n'
    )
    fake.chmod(0o755)

    def run(commit_in_lock: str) -> subprocess.CompletedProcess[str]:
        base = locked(git=True).rocks[0]
        assert base.git is not None
        git_entry = base.git.model_copy(update={"url": f"file://{repo}", "commit": commit_in_lock})
        entry = base.model_copy(
            update={"git": git_entry, "rockspec_sha256": hashlib.sha256(rockspec).hexdigest()}
        )
        target = git_rock_target(tmp_path / "config")
        _, script = received_script(render(target, tmp_path, Lock(target="t", rocks=(entry,))))
        build = tmp_path / "build"
        shutil.rmtree(build, ignore_errors=True)
        return subprocess.run(
            ["sh", "-c", script.replace(BUILD_DIR, str(build))],
            env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path),
                 "QJT_LOG": str(tmp_path / "log")},
            capture_output=True, text=True, check=False,
        )  # fmt: skip

    done = run(commit)
    assert done.returncode == 0, done.stderr
    made = (tmp_path / "log").read_text()
    assert f"make in {tmp_path}/build/r/r-1.0-1/r-src with" in made
    assert f"--remap-path-prefix={tmp_path}/build/r=/build" in made
    assert not (tmp_path / "build/r/r-1.0-1/r-src/.git").exists()
    assert (tmp_path / "build/r/r-1.0-1/r-src/lib.rs").read_text() == "one\n"

    (tmp_path / "log").unlink()
    moved = run("d" * 40)
    assert moved.returncode == 1
    assert f"no longer names the locked commit {'d' * 40}" in moved.stderr
    assert not (tmp_path / "log").exists()


@pytest.mark.parametrize("name", TARGETS)
def test_every_rendered_file_says_how_to_build_from_a_vendor_directory(name: str) -> None:
    text = render_containerfile(resolve_target(name))
    assert f"#   invoke vendor --target {name} vendor\n# writes vendor/" in text
    assert f"#   COPY vendor/ {VENDOR_DIR}/\n" in text
    assert "#   COPY vendor/crates/ /qjson-crates/\n" in text
    # The cargo config it gives is the one build-runtime --vendor mounts.
    line = next(line for line in text.splitlines() if "> /.cargo/config.toml" in line)
    command = line.removeprefix("#   RUN mkdir -p /.cargo && ").removesuffix(
        " > /.cargo/config.toml"
    )
    written = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True)
    assert written.stdout == "".join(
        f"{line}\n" for line in offline_cargo_config().splitlines() if not line.startswith("#")
    )
