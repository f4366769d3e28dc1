"""Several rocks in one image, a lockfile with hashes, and an offline build from a vendor
directory: the `multi` target (the Rust demo rock from its directory, the plain-C demo rock
from a .src.rock whose build needs qjt-buildtool from a local rock server), built for real."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from qjson_tasks.app.build import run_build
from qjson_tasks.app.lock import lock_for_build, lock_target, vendor_target
from qjson_tasks.app.tools import Tools
from qjson_tasks.app.verify import run_verify
from qjson_tasks.build.images import image_labels
from qjson_tasks.build.names import UNIT_REPOSITORY
from qjson_tasks.config import lockfile
from qjson_tasks.config.load import load_target
from qjson_tasks.config.model import Target
from qjson_tasks.errors import ConfigError, RockError, StepError
from qjson_tasks.host.buildah import Buildah
from tests.conftest import PROJECT_DIR
from tests.integration.conftest import (
    RealRunner,
    forget_rock_units,
    our_containers,
    retarget,
    storage_mounts,
)

SRC_ROCK = "cdemo-1.0-1.src.rock"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the multi target and its rocks, so locks and edits stay out of the repo."""
    root = tmp_path_factory.mktemp("multi")
    (root / "config").mkdir()
    shutil.copy(PROJECT_DIR / "config" / "multi.toml", root / "config" / "multi.toml")
    for rock in ("qjson-demo", "cdemo", "server"):
        shutil.copytree(
            PROJECT_DIR / "rocks" / rock,
            root / "rocks" / rock,
            ignore=shutil.ignore_patterns("target"),
        )
    return root


def multi(project: Path) -> Target:
    return retarget(load_target(project / "config" / "multi.toml"), "multi")


def tools_for(buildah: Buildah) -> tuple[Tools, RealRunner]:
    runner = RealRunner(buildah.runner)
    return Tools(runner, Buildah(runner, isolation="chroot")), runner


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def image_files(buildah: Buildah, ref: str) -> set[str]:
    with buildah.container(ref, "qjt-multi-files") as ctr, buildah.mounted(ctr) as root:
        local = root / "usr" / "local"
        return {str(p.relative_to(local)) for p in local.rglob("*")}


def test_two_rocks_go_into_one_tree_and_the_build_only_dependency_stays_out(
    project: Path, buildah: Buildah, capsys: pytest.CaptureFixture[str]
) -> None:
    target = multi(project)
    tools, _ = tools_for(buildah)
    forget_rock_units(buildah, target)  # built for real here, not taken from the cache

    result = run_build(target, tools)

    assert result.verification is not None and result.verification.passed
    checks = {check.name for check in result.verification.checks}  # type: ignore[attr-defined]
    assert {"rocks", "smoke", "smoke cdemo"} <= checks
    files = image_files(buildah, result.image_ref)
    assert {"lib/lua/5.1/qjson.so", "lib/lua/5.1/cdemo.so"} <= files
    assert "lib/luarocks/rocks-5.1/cdemo/1.0-1/rock_manifest" in files
    # qjt-buildtool was installed for cdemo's build (luarocks needs it there) and removed.
    assert "removing build-only dependency qjt-buildtool 1.0-1" in capsys.readouterr().err
    assert not any("qjt_buildtool" in f or "qjt-buildtool" in f for f in files)

    labels = image_labels(buildah, result.image_ref)
    cdemo = json.loads(labels["org.qjson-tasks.rocks.cdemo"])
    assert cdemo["version"] == "1.0-1"
    assert cdemo["source_sha256"] == sha256(project / "rocks" / "cdemo" / SRC_ROCK)
    assert "org.qjson-tasks.rocks.qjson-demo" in labels
    assert "org.qjson-tasks.rocks.qjt-buildtool" not in labels
    base_id = buildah.image_id(target.config.runtime.base_image)
    assert labels["org.qjson-tasks.base-image.id"] == base_id
    assert labels["org.qjson-tasks.unit.rock-tree"] == result.units["rock-tree"].split("-")[-1]


def test_lock_vendor_and_an_offline_build_from_the_vendor_directory_only(
    project: Path, buildah: Buildah, tmp_path: Path
) -> None:
    target = multi(project)
    lock = lock_target(target)
    roles = {rock.name: (rock.version, rock.kind, rock.role) for rock in lock.rocks}
    assert roles == {
        "qjson-demo": ("0.1.0-1", "directory", "runtime"),
        "qjt-buildtool": ("1.0-1", "server", "build"),
        "cdemo": ("1.0-1", "file", "runtime"),
    }
    assert lockfile.read_lock(target) == lock
    cdemo = lock.entry("cdemo")
    assert cdemo is not None and cdemo.source_sha256 == sha256(
        project / "rocks" / "cdemo" / SRC_ROCK
    )

    tools, runner = tools_for(buildah)
    forget_rock_units(buildah, target)
    vendor = tmp_path / "vendor"
    names = vendor_target(target, tools, vendor)
    assert {SRC_ROCK, "qjt-buildtool-1.0-1.src.rock", "manifest"} <= set(names)
    assert 'cdemo = {\n      ["1.0-1"]' in (vendor / "manifest").read_text()

    # Offline from the vendor directory alone: the server and the rock file are gone.
    shutil.rmtree(project / "rocks" / "server")
    (project / "rocks" / "cdemo" / SRC_ROCK).unlink()
    runner.calls.clear()
    result = run_build(target, tools, vendor=str(vendor))

    assert result.verification is not None and result.verification.passed
    installs = [c for c in runner.calls if "luarocks" in c and ("install" in c or "make" in c)]
    assert installs and all("--only-server=/qjson-vendor" in c for c in installs)
    labels = image_labels(buildah, result.image_ref)
    assert json.loads(labels["org.qjson-tasks.rocks.cdemo"])["source_sha256"] == (
        cdemo.source_sha256
    )
    assert "qjt-buildtool" not in " ".join(labels)

    # A vendored file whose bytes changed fails the build, naming the lock; nothing is left.
    tagged = buildah.image_id(result.image_ref)
    containers, mounts = our_containers(buildah), storage_mounts(buildah)
    corrupt = vendor / SRC_ROCK
    corrupt.write_bytes(corrupt.read_bytes() + b"\0")
    for kind in ("runtime", "rock-tree"):  # so the next build must fetch the rocks again
        buildah.rmi(f"{UNIT_REPOSITORY}/{kind}:{result.units[kind].removeprefix(kind + '-')}")
    runner.calls.clear()
    with pytest.raises(StepError, match=r"multi.lock: cdemo 1.0-1: the rock file at .* sha256"):
        run_build(target, tools, vendor=str(vendor))
    assert not any(c[:2] == ["buildah", "from"] for c in runner.calls)
    assert buildah.image_id(result.image_ref) == tagged
    assert our_containers(buildah) == containers and storage_mounts(buildah) == mounts


def test_a_changed_local_rock_fails_against_the_lock_until_the_lock_is_updated(
    project: Path, buildah: Buildah
) -> None:
    target = multi(project)
    shutil.copytree(PROJECT_DIR / "rocks" / "server", project / "rocks" / "server")
    shutil.copy(PROJECT_DIR / "rocks" / "cdemo" / SRC_ROCK, project / "rocks" / "cdemo")
    before = lock_target(target)
    lib = project / "rocks" / "qjson-demo" / "src" / "lib.rs"
    lib.write_text(lib.read_text() + "\n// changed after locking\n")
    tools, runner = tools_for(buildah)
    runner.calls.clear()

    pattern = r"qjson-demo 0.1.0-1: the directory at .* `invoke lock --target multi`"
    with pytest.raises(RockError, match=pattern):
        run_build(target, tools)
    assert not any(c[:2] == ["buildah", "from"] for c in runner.calls)

    run_build(target, tools, update_lock=True)
    assert run_verify(target, tools).passed
    after = lockfile.read_lock(target)
    assert after is not None
    changed = {r.name for r in after.rocks if r != before.entry(r.name)}
    assert changed == {"qjson-demo"}


def test_a_lock_that_no_longer_fits_the_config_says_so(project: Path) -> None:
    target = multi(project)
    stale = lockfile.Lock(target="multi", rocks=())
    lockfile.write_lock(target, stale)
    with pytest.raises(
        ConfigError, match=r"multi.lock: out of date with multi.toml: it has no entry"
    ):
        lock_for_build(target, update=False, vendor=None)
