"""Real buildah, luarocks, cargo and LuaJIT: the offline target built once per session.

Names carry a per-session suffix; a finalizer removes the images the tests made and fails the
session if any working container or mount of ours is left behind. The base image
(debootstrap) and the builder unit image are shared across sessions on purpose: they are the
cache a user's machine keeps too.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from qjson_tasks import usecases
from qjson_tasks.buildah import Buildah
from qjson_tasks.config import Target
from qjson_tasks.pipeline import BuildResult
from qjson_tasks.runner import ShRunner

SUFFIX = uuid.uuid4().hex[:8]
TEST_REPOSITORY = "localhost/qjson-tasks-test"
OURS = "qjt-"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = None
    if shutil.which("buildah") is None:
        reason = "buildah is not installed (the README's test command installs it)"
    elif os.geteuid() != 0:
        reason = "integration tests run as root; the rootless test switches user itself"
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


def retarget(target: Target, name: str) -> Target:
    """The same target writing to a test-only output image."""
    config = target.config
    output = config.output.model_copy(update={"image": f"{TEST_REPOSITORY}/{name}-{SUFFIX}"})
    return Target(target.name, target.path, config.model_copy(update={"output": output}))


@pytest.fixture(scope="session")
def buildah() -> Buildah:
    return Buildah(ShRunner(), isolation="chroot")


@pytest.fixture(scope="session")
def tools(buildah: Buildah) -> usecases.Tools:
    return usecases.Tools(buildah.runner, buildah)


@pytest.fixture(scope="session")
def offline_target() -> Target:
    return retarget(usecases.resolve_target("offline"), "offline")


def our_containers(buildah: Buildah) -> set[str]:
    return {c["containername"] for c in buildah.containers() if c["containername"].startswith(OURS)}


@pytest.fixture(scope="session", autouse=True)
def no_leftovers(buildah: Buildah) -> Iterator[None]:
    before = our_containers(buildah)
    yield
    made = [
        image["id"]
        for image in buildah.images()
        if any(name.startswith(TEST_REPOSITORY) and SUFFIX in name for name in image["names"] or ())
    ]
    for image_id in made:
        buildah.runner.run(["buildah", "rmi", "--force", image_id])
    left = our_containers(buildah) - before
    assert not left, f"working containers left behind: {sorted(left)}"
    mounts = Path("/proc/self/mountinfo").read_text().count("/containers/storage/overlay/")
    assert mounts == 0, "buildah mounts left behind"


@pytest.fixture(scope="session")
def built(offline_target: Target, tools: usecases.Tools) -> BuildResult:
    """The offline target built end to end, verified and tagged (once per session)."""
    return usecases.run_build(offline_target, tools, verify=True)


@pytest.fixture(scope="session")
def derive(built: BuildResult, buildah: Buildah) -> Callable[..., str]:
    """Make a test image from the good one: mutate(root, container) edits its files or config.

    Returns the new image's reference; the session finalizer removes it.
    """

    def make(name: str, mutate: Callable[[Path, str], None]) -> str:
        ref = f"{TEST_REPOSITORY}/{name}-{SUFFIX}:latest"
        with buildah.container(built.image_ref, f"{OURS}derive-{name}-{SUFFIX}") as ctr:
            with buildah.mounted(ctr) as root:
                mutate(root, ctr)
            buildah.commit(ctr, ref)
        return ref

    return make
