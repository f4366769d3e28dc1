"""Real builds that fail at each step, or are interrupted mid-step, leave nothing behind.

Each build writes to an output tag that already points at a good image (the session's build),
builds a rock whose tree is not cached (a one-line change, unique per test) so every step
really runs, and then must leave: no working container of its run, no buildah mount, no new
unnamed image, and the output tag on the same image as before. Faults come from real inputs
where that is possible (a failing setup script, Rust that does not compile, a missing image, a
planted smoke failure); mount, copy, commit and tag failures are injected by a runner that
wraps the real one and refuses that one buildah call.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import tomli_w

from qjson_tasks.app.build import run_build
from qjson_tasks.app.tools import make_tools
from qjson_tasks.build.pipeline import BuildResult
from qjson_tasks.config.load import load_target
from qjson_tasks.config.model import Target
from qjson_tasks.errors import StepError
from qjson_tasks.host.buildah import Buildah
from qjson_tasks.host.runner import ShRunner
from tests.conftest import PROJECT_DIR
from tests.integration.conftest import (
    OURS,
    RealRunner,
    changed_demo_rock,
    forget_rock_units,
    offline_config_data,
    storage_mounts,
)


def unnamed_images(buildah: Buildah) -> set[str]:
    return {i.image_id for i in buildah.images() if not i.names}


@dataclass
class Scenario:
    target: Target
    name: str  # target name, so containers are qjt-<name>-...


@pytest.fixture
def scenario(
    tmp_path: Path, built: BuildResult, buildah: Buildah
) -> Iterator[Callable[..., Scenario]]:
    """make(**changes) -> a target building a fresh copy of the demo rock into a tag that
    already holds the session's good image; checks afterwards that nothing was left."""
    made: list[Scenario] = []
    unnamed_before = unnamed_images(buildah)
    mounts_before = storage_mounts(buildah)

    def make(
        builder: Mapping[str, object] | None = None, rust: str = "", verify: str = ""
    ) -> Scenario:
        name = f"fault{uuid.uuid4().hex[:6]}"
        rock = changed_demo_rock(tmp_path / name, name, rust)
        data = offline_config_data(rock, name)
        data["builder"].update(builder or {})
        if verify:
            script = tmp_path / name / "smoke.lua"
            script.write_text(verify)
            data["verify"] = {"smoke_script": str(script)}
        path = tmp_path / name / f"{name}.toml"
        path.write_text(tomli_w.dumps(data))
        target = load_target(path)
        buildah.tag(built.image_id, target.config.output.reference)
        made.append(Scenario(target, name))
        return made[-1]

    yield make

    for each in made:
        forget_rock_units(buildah, each.target)  # what a failed build finished (the tree)
        ref = each.target.config.output.reference
        assert buildah.image_id(ref) == built.image_id, f"{ref} was moved or removed"
        leftovers = {
            c.name for c in buildah.containers() if c.name.startswith(f"{OURS}{each.name}-")
        }
        assert not leftovers, f"working containers left: {leftovers}"
    assert storage_mounts(buildah) - mounts_before == set()
    assert unnamed_images(buildah) - unnamed_before == set()


def build(target: Target, runner: RealRunner | None = None) -> BuildResult:
    tools = make_tools(target, runner=runner)  # type: ignore[arg-type]
    return run_build(target, tools)


def refuse(*words: str) -> Callable[[list[str]], bool]:
    def match(argv: list[str]) -> bool:
        return argv[:2] == ["buildah", words[0]] and all(w in " ".join(argv) for w in words[1:])

    return match


def test_a_missing_builder_image_fails_its_step(scenario: Callable[..., Scenario]) -> None:
    case = scenario()
    missing = "localhost/qjson-tasks-test/no-such-builder:latest"
    config = case.target.config
    builder = config.builder.model_copy(update={"image": missing})
    target = Target(
        case.target.name, case.target.path, config.model_copy(update={"builder": builder})
    )
    with pytest.raises(StepError) as caught:
        build(target)
    assert caught.value.step == "builder image"
    assert "buildah pull" in str(caught.value) and "--keep-on-failure" in str(caught.value)


def test_a_failing_setup_script_fails_builder_setup(scenario: Callable[..., Scenario]) -> None:
    case = scenario(builder={"packages": [], "setup": ["echo setting up; exit 3"]})
    with pytest.raises(StepError) as caught:
        build(case.target)
    assert caught.value.step == "builder setup"
    message = str(caught.value)
    assert "exit 3" in message and "setting up" in message


def test_rust_that_does_not_compile_fails_the_rock_install(
    scenario: Callable[..., Scenario],
) -> None:
    case = scenario(rust='pub fn broken() -> u32 { "not a number" }')
    with pytest.raises(StepError) as caught:
        build(case.target)
    assert caught.value.step == "rock install"
    assert "mismatched types" in str(caught.value)


@pytest.mark.parametrize(
    ("step", "call"),
    [
        ("builder container", refuse("from", "-builder-")),
        ("mount builder", refuse("mount")),
        ("rock tree", refuse("commit", "-tree-")),
        ("copy tree", refuse("copy", "--from")),
        ("commit", refuse("commit", "-runtime-")),
        ("tag", refuse("tag")),
    ],
    ids=["builder container", "mount", "rock-tree commit", "copy", "runtime commit", "tag"],
)
def test_an_injected_buildah_failure_names_its_step(
    scenario: Callable[..., Scenario], step: str, call: Callable[[list[str]], bool]
) -> None:
    case = scenario()
    with pytest.raises(StepError) as caught:
        build(case.target, RealRunner(ShRunner(), refuse=call))
    assert caught.value.step == step
    assert "injected" in str(caught.value)


def test_a_failed_verification_leaves_the_previous_image_tagged(
    scenario: Callable[..., Scenario],
) -> None:
    case = scenario(verify='error("planted smoke failure")')
    with pytest.raises(StepError) as caught:
        build(case.target)
    assert caught.value.step == "verify"
    assert "planted smoke failure" in str(caught.value)


# A build step that takes long enough to be interrupted: the rock's build sleeps first.
FAST_BUILD = 'build_command = "cargo build --release --offline"'
SLOW_BUILD = 'build_command = "sleep 60; cargo build --release --offline"'


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupt_mid_step_removes_everything(
    scenario: Callable[..., Scenario], signum: int
) -> None:
    case = scenario()
    rockspec = next((Path(case.target.config.rock.source) / "rockspec").glob("*.rockspec"))
    text = rockspec.read_text()
    assert 'build_command = "cargo build --release --offline"' in text
    rockspec.write_text(
        text.replace('build_command = "cargo build --release --offline"', SLOW_BUILD)
    )
    command = [sys.executable, "-m", "invoke", "--search-root", str(PROJECT_DIR)]
    command += ["build-runtime", "--config", str(case.target.path)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=PROJECT_DIR
    )
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith("==> rock install"):
            break
    time.sleep(8)  # the source is copied and luarocks is in the rock's sleeping build
    os.kill(process.pid, signum)
    output, _ = process.communicate(timeout=120)
    text = "".join(seen) + output
    assert process.returncode == 130, text
    assert "ERROR interrupted" in text
    assert "Traceback" not in text
