"""Two CI runners sharing a unit cache in a real registry (docker-registry on 127.0.0.1).

Runner A is this machine's storage: it builds a target (a changed demo rock, so its rock tree
and runtime are new) and pushes the units. Runner B is a second, empty storage of its own
(its own storage.conf, as a fresh runner has) holding only the runtime base image, and an
SBOM store without the runtime's SBOM: what it needs must come from the registry.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import tomli_w

from qjson_tasks.app.targets import resolve_target
from qjson_tasks.build.labels import SBOM_LABEL
from qjson_tasks.build.names import UNIT_REPOSITORY
from qjson_tasks.config.load import load_target
from qjson_tasks.config.platforms import host_platform
from qjson_tasks.host.buildah import Buildah
from qjson_tasks.host.registry import RemoteAccess
from qjson_tasks.host.skopeo import Skopeo
from qjson_tasks.host.storage import runner_environment, temporary_storage
from qjson_tasks.sbom.store import provenance_path, stored_path
from tests.conftest import PROJECT_DIR
from tests.fixtures.registry import Registry, free_port, missing_tools
from tests.integration.conftest import (
    SUFFIX,
    changed_demo_rock,
    forget_rock_units,
    offline_config_data,
)

pytestmark = pytest.mark.skipif(
    bool(missing_tools()),
    reason=f"needs {', '.join(missing_tools())} (run.sh installs docker-registry, apache2-utils)",
)

NAMESPACE = "qjt-cache"


def run_invoke(
    *args: str, storage: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """invoke as a process; storage: the environment of another runner's storage."""
    command = [sys.executable, "-m", "invoke", "--search-root", str(PROJECT_DIR), *args]
    env = {**os.environ, **storage} if storage else None
    return subprocess.run(command, cwd=PROJECT_DIR, capture_output=True, text=True, env=env)


@dataclass(frozen=True)
class Runner:
    """A runner's own storage: the environment that makes it buildah's default, and a
    facade on it."""

    env: dict[str, str]
    buildah: Buildah

    def image_names(self) -> set[str]:
        return {name for image in self.buildah.images() for name in image.names}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with Registry(tmp_path_factory.mktemp("registry")) as served:
        yield served


@pytest.fixture(scope="module")
def config(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The offline target with a rock of its own and the registry as its unit cache."""
    directory = tmp_path_factory.mktemp("cached-target")
    data = offline_config_data(changed_demo_rock(directory, "unitcache"), "unit-cache")
    data["cache"] = {"repository": f"{registry.host}/{NAMESPACE}", "tls_verify": False}
    path = directory / "cached.toml"
    path.write_text(tomli_w.dumps(data))
    return path


@pytest.fixture(scope="module")
def runner_a(config: Path, buildah: Buildah) -> subprocess.CompletedProcess[str]:
    """Runner A's build: the rock tree and runtime are new here, so all units get pushed."""
    forget_rock_units(buildah, load_target(config))  # as an earlier session left them
    result = run_invoke("build-runtime", "--config", str(config))
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def runner_b(buildah: Buildah) -> Iterator[Runner]:
    """A storage of its own with only the runtime base image in it; removed afterwards."""
    with temporary_storage(buildah, f"test{SUFFIX}") as own:
        assert own.storage is not None
        env = runner_environment(own.storage, own.storage.root.parent)
        base = resolve_target("offline").config.runtime.base_image
        buildah.push(base, own.storage.transport(base))
        yield Runner(env, own)


def line(output: str, prefix: str) -> str:
    return next((x.strip() for x in output.splitlines() if x.strip().startswith(prefix)), "")


def image_id(output: str) -> str:
    """The short ID a build summary's first line gives: `built REF (ID), ...`."""
    first = line(output, "built ")
    return first.split("(", 1)[1].split(")", 1)[0]


def test_runner_a_pushes_every_unit_it_used(
    runner_a: subprocess.CompletedProcess[str], registry: Registry
) -> None:
    built = line(runner_a.stdout, "built this run:")  # and the builder, if it ran first
    assert built.endswith(" rock-tree, runtime"), runner_a.stdout
    pushed = line(runner_a.stdout, "pushed to the unit cache:")
    assert pushed == "pushed to the unit cache: builder, rock-tree, runtime", runner_a.stdout
    repositories = registry.storage / "docker/registry/v2/repositories" / NAMESPACE
    assert sorted(p.name for p in repositories.iterdir()) == [
        "unit-builder", "unit-rock-tree", "unit-runtime"
    ]  # fmt: skip


def forget_documents(buildah: Buildah, image: str) -> None:
    """This machine's SBOM store loses the image's SBOM and statement (runner B has none)."""
    info = buildah.inspect_image(image)
    assert info is not None
    stored_path(info.labels[SBOM_LABEL]).unlink(missing_ok=True)
    provenance_path(info.image_id).unlink(missing_ok=True)


def test_runner_b_takes_the_runtime_from_the_cache_and_builds_nothing(
    runner_a: subprocess.CompletedProcess[str], config: Path, runner_b: Runner, buildah: Buildah
) -> None:
    short_id = image_id(runner_a.stdout)
    forget_documents(buildah, short_id)
    planned = run_invoke("plan", "--config", str(config), storage=runner_b.env)
    assert planned.returncode == 0, planned.stderr
    assert planned.stdout.count('status = "in cache"') == 3, planned.stdout

    result = run_invoke("build-runtime", "--config", str(config), storage=runner_b.env)
    assert result.returncode == 0, result.stderr
    assert line(result.stdout, "built this run:") == "built this run: nothing"
    assert line(result.stdout, "from the unit cache:") == "from the unit cache: runtime"
    assert "pushed to the unit cache" not in result.stdout
    assert image_id(result.stdout) == short_id
    assert ", verified" in line(result.stdout, "built ")
    assert "\nsbom " in result.stderr and "FAIL" not in result.stderr, result.stderr
    units = {name for name in runner_b.image_names() if name.startswith(UNIT_REPOSITORY)}
    assert [name.split(":")[0] for name in units] == [f"{UNIT_REPOSITORY}/runtime"]
    assert not any(NAMESPACE in name for name in runner_b.image_names())  # pulled names gone


def test_without_a_cached_runtime_runner_b_builds_it_from_the_cached_rock_tree(
    runner_a: subprocess.CompletedProcess[str],
    config: Path,
    registry: Registry,
    runner_b: Runner,
) -> None:
    tags = registry.storage / "docker/registry/v2/repositories" / NAMESPACE / "unit-runtime"
    kept = tags.parent / "runtime-tags-kept"
    shutil.move(tags / "_manifests/tags", kept)  # the runtime unit is no longer in the cache
    try:
        result = run_invoke("build-runtime", "--config", str(config), storage=runner_b.env)
    finally:  # the other tests of this module find the cache as runner A left it
        shutil.rmtree(tags / "_manifests/tags", ignore_errors=True)
        shutil.move(kept, tags / "_manifests/tags")
    assert result.returncode == 0, result.stderr
    assert line(result.stdout, "from the unit cache:") == "from the unit cache: rock-tree"
    assert line(result.stdout, "built this run:") == "built this run: runtime"
    assert line(result.stdout, "pushed to the unit cache:") == "pushed to the unit cache: runtime"
    assert image_id(result.stdout) == image_id(runner_a.stdout)  # the same image as A's
    names = runner_b.image_names()
    assert not any("/builder:" in name for name in names), names  # never pulled nor built
    assert "==> builder setup" not in result.stderr


def test_an_unreachable_cache_is_one_warning_in_the_plan(
    config: Path, registry: Registry, runner_b: Runner, tmp_path: Path
) -> None:
    closed = tmp_path / "closed.toml"  # nothing listens at that port
    closed.write_text(config.read_text().replace(registry.host, f"127.0.0.1:{free_port()}"))
    result = run_invoke("plan", "--config", str(closed), storage=runner_b.env)
    assert result.returncode == 0, result.stderr
    warnings = [x for x in result.stderr.splitlines() if x.startswith("WARNING unit cache:")]
    assert len(warnings) == 1 and "is unreachable" in warnings[0], result.stderr
    assert 'status = "in cache"' not in result.stdout


def test_an_images_registry_id_is_the_id_buildah_gives_it_once_pulled(
    registry: Registry, buildah: Buildah
) -> None:
    """What lets runner B plan with a builder image it never pulls: for a plain image and
    for a manifest list (as docker.io's rust:1-bookworm is), whose entry for this machine
    skopeo reads."""
    base = resolve_target("offline").config.runtime.base_image
    access = RemoteAccess(tls_verify=False)
    ref = f"{registry.host}/qjt/builder-image:1"
    buildah.push(base, f"docker://{ref}", access)
    assert Skopeo(buildah.runner).image_id(ref, access) == buildah.image_id(base)
    assert Skopeo(buildah.runner).image_id(f"{ref}-missing", access) is None

    listed = f"{registry.host}/qjt/builder-list:1"
    host = host_platform()
    list_name = f"localhost/qjson-tasks-test/builder-list-{SUFFIX}"
    list_id = buildah.manifest_create(list_name)
    try:
        buildah.manifest_add(
            list_id, buildah.image_id(base) or "", os="linux", arch=host.architecture
        )
        buildah.manifest_push(list_id, f"docker://{listed}", access)
    finally:
        buildah.manifest_rm_quietly(list_id)
    assert Skopeo(buildah.runner).image_id(listed, access) == buildah.image_id(base)
