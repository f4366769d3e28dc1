"""The rendered Containerfiles: committed ones are current, and they keep Rust in the builder."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from qjson_tasks.app.containerfile import containerfile_path, render_containerfile
from qjson_tasks.app.targets import resolve_target, show_target
from qjson_tasks.app.tools import CONFIG_DIR, PROJECT_DIR
from qjson_tasks.build.containerfile import _script_line, render
from qjson_tasks.config.load import list_targets
from qjson_tasks.config.model import Target
from qjson_tasks.errors import ConfigError

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
