"""Real buildah, luarocks, cargo and LuaJIT: the offline target built once per session.

Names carry a per-session suffix; a finalizer removes the images the tests made and fails the
session if any working container or mount of ours is left behind. The base image
(debootstrap) and the builder unit image are shared across sessions on purpose: they are the
cache a user's machine keeps too.

The suite runs as root, and again as a non-root user inside `buildah unshare` with
QJT_ROOTLESS_SUITE=1 (tests/rootless_suite.py, which `./run.sh test` runs): the user's own
storage (vfs), the base image handed over from root's.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from qjson_tasks.app.build import make_base_image, run_build
from qjson_tasks.app.targets import resolve_target
from qjson_tasks.app.tools import Tools
from qjson_tasks.app.units import current_plan
from qjson_tasks.build.pipeline import BuildResult
from qjson_tasks.config.model import Target
from qjson_tasks.errors import ToolError
from qjson_tasks.host.buildah import Buildah
from qjson_tasks.host.runner import Background, Runner, ShRunner
from tests.conftest import PROJECT_DIR

SUFFIX = uuid.uuid4().hex[:8]
TEST_REPOSITORY = "localhost/qjson-tasks-test"
OURS = "qjt-"
DEMO_ROCK = PROJECT_DIR / "rocks" / "qjson-demo"
ROOTLESS_SUITE = os.environ.get("QJT_ROOTLESS_SUITE") == "1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = None
    if shutil.which("buildah") is None:
        reason = "buildah is not installed (the README's test command installs it)"
    elif os.geteuid() != 0:
        # Inside `buildah unshare` a user is uid 0 of its namespace, so this is root or that.
        reason = (
            "integration tests run as root, or as a user inside `buildah unshare` with"
            " QJT_ROOTLESS_SUITE=1 (./run.sh test runs both)"
        )
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))
            elif ROOTLESS_SUITE and item.get_closest_marker("rootless"):
                item.add_marker(
                    pytest.mark.skip(reason="switches from root to a user; this run is rootless")
                )


def retarget(target: Target, name: str) -> Target:
    """The same target writing to a test-only output image."""
    config = target.config
    output = config.output.model_copy(update={"image": f"{TEST_REPOSITORY}/{name}-{SUFFIX}"})
    return Target(target.name, target.path, config.model_copy(update={"output": output}))


@dataclass
class RealRunner:
    """The real runner, keeping every argv; calls matching `refuse` fail like buildah."""

    inner: Runner
    refuse: Callable[[list[str]], bool] | None = None
    calls: list[list[str]] = field(default_factory=list)

    def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        stream: bool = False,
        cwd: Path | None = None,
    ) -> str:
        self.calls.append(list(argv))
        if self.refuse and self.refuse(list(argv)):
            raise ToolError(f"command failed (exit 125): {' '.join(argv)}", output="injected")
        return self.inner.run(argv, input=input, env=env, stream=stream, cwd=cwd)

    def start(self, argv: Sequence[str]) -> Background:
        self.calls.append(list(argv))
        return self.inner.start(argv)


def changed_demo_rock(directory: Path, marker: str, rust: str = "") -> Path:
    """A copy of the demo rock with one more line of Rust (its own units), plus `rust`."""
    rock = directory / "rock"
    shutil.copytree(DEMO_ROCK, rock, ignore=shutil.ignore_patterns("target"))
    lib = rock / "src" / "lib.rs"
    lib.write_text(lib.read_text() + f"\npub const QJT_{marker.upper()}: u32 = 1;\n{rust}\n")
    return rock


def offline_config_data(rock: Path, name: str) -> dict[str, Any]:
    """The offline target's config as data, building `rock` into a test-only output."""
    data = resolve_target("offline").config.model_dump(mode="json", exclude_none=True)
    data["rocks"][0]["source"] = str(rock)
    data["output"] = {"image": f"{TEST_REPOSITORY}/{name}-{SUFFIX}", "tag": "latest"}
    return data


def forget_rock_units(buildah: Buildah, target: Target) -> None:
    """Remove a target's rock-tree and runtime unit images: sound cache, but of a rock that
    exists only in a test."""
    plan = current_plan(target, Tools(buildah.runner, buildah))
    for unit in (plan.rock_tree, plan.runtime):
        if buildah.image_id(unit.image):
            buildah.rmi(unit.image)


@pytest.fixture(scope="session")
def buildah() -> Buildah:
    return Buildah(ShRunner(), isolation="chroot")


@pytest.fixture(scope="session")
def tools(buildah: Buildah) -> Tools:
    return Tools(buildah.runner, buildah)


@pytest.fixture(scope="session")
def offline_target() -> Target:
    return retarget(resolve_target("offline"), "offline")


def our_containers(buildah: Buildah) -> set[str]:
    return {c.name for c in buildah.containers() if c.name.startswith(OURS)}


def storage_mounts(buildah: Buildah) -> set[str]:
    """Mounts of buildah's storage: kernel mounts under the graph root (overlay) and the
    containers buildah counts as mounted (vfs mounts nothing, it only counts)."""
    store = json.loads(buildah.runner.run(["buildah", "info"]))["store"]
    graph = f"{store['GraphRoot']}/{store['GraphDriverName']}/"
    kernel = {
        line.split()[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if graph in line
    }
    listed = {line.split()[0] for line in buildah.runner.run(["buildah", "mount"]).splitlines()}
    return kernel | {name for name in listed if name.startswith(OURS)}


@pytest.fixture(scope="session", autouse=True)
def no_leftovers(buildah: Buildah) -> Iterator[None]:
    before = our_containers(buildah)
    mounts_before = storage_mounts(buildah)
    yield
    # By name: removing a test name leaves an image that also carries a unit name (the
    # build cache a user keeps too) and deletes one that carried only test names.
    made = [
        name
        for image in buildah.images()
        for name in image.names
        if name.startswith(TEST_REPOSITORY) and SUFFIX in name
    ]
    for name in made:
        buildah.runner.run(["buildah", "rmi", name])
    left = our_containers(buildah) - before
    assert not left, f"working containers left behind: {sorted(left)}"
    mounts = storage_mounts(buildah) - mounts_before
    assert not mounts, f"buildah mounts left behind: {sorted(mounts)}"


@pytest.fixture(scope="session")
def built(offline_target: Target, tools: Tools) -> BuildResult:
    """The offline target built end to end, verified and tagged (once per session)."""
    return run_build(offline_target, tools, verify=True)


@pytest.fixture(scope="session")
def gateway_target() -> Target:
    return retarget(resolve_target("gateway"), "gateway")


@pytest.fixture(scope="session")
def gateway_base(gateway_target: Target, tools: Tools) -> str:
    """The gateway target's base (nginx, lua-nginx-module, luajit2): made with debootstrap
    as root when missing; the rootless suite is handed root's (tests/rootless_suite.py)."""
    make_base_image(gateway_target, tools)
    return gateway_target.config.runtime.base_image


@pytest.fixture(scope="session")
def gateway_built(gateway_base: str, gateway_target: Target, tools: Tools) -> BuildResult:
    """The gateway target built end to end, verified (its nginx check too) and tagged."""
    return run_build(gateway_target, tools, verify=True)


@pytest.fixture(scope="session")
def derive(built: BuildResult, buildah: Buildah) -> Callable[..., str]:
    """Make a test image from the good one: mutate(root, container) edits its files or config.

    Returns the new image's reference; the session finalizer removes it.
    """

    def make(name: str, mutate: Callable[[Path, str], None]) -> str:
        return derive_image(buildah, built.image_ref, name, mutate)

    return make


def derive_image(
    buildah: Buildah, source: str, name: str, mutate: Callable[[Path, str], None]
) -> str:
    """A test image made from source: mutate(root, container) edits its files or config.
    Returns its reference; the session finalizer removes it."""
    ref = f"{TEST_REPOSITORY}/{name}-{SUFFIX}:latest"
    with buildah.container(source, f"{OURS}derive-{name}-{SUFFIX}") as ctr:
        with buildah.mounted(ctr) as root:
            mutate(root, ctr)
        buildah.commit(ctr, ref)
    return ref
