"""The crate-dependent demo rock (rocks/qjson-crates), lua-qjson's shape: crates from a
registry, a lockfile-v4 Cargo.lock, built by a modern cargo.

- the `crates` target: Debian's cargo-web and Debian's crate packages as crates.io;
- the miniature upstream on loopback (git daemon, a rockspec-only luarocks server, a sparse
  crate registry): the rock installed from the server, cloned from git, its crates fetched
  from the registry, as `luarocks install lua-qjson` does against the real upstream;
- a builder whose cargo is too old for the lockfile fails before the build, in one line;
- the lock of the git-sourced rock: the tag's commit, a .src.rock packed here (the same bytes
  every time), the Cargo.lock's sha256 and crates; a locked build installs that packed rock;
  each refusal (unreachable server, missing tag, moved tag, changed Cargo.lock) is one line
  and leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w

from qjson_tasks.app.build import run_build
from qjson_tasks.app.lock import lock_target, vendor_target
from qjson_tasks.app.targets import resolve_target
from qjson_tasks.app.tools import Tools
from qjson_tasks.app.units import cargo_caches, clean_units, current_plan
from qjson_tasks.app.verify import run_verify
from qjson_tasks.build.containerfile import render
from qjson_tasks.build.names import UNIT_REPOSITORY
from qjson_tasks.config.load import load_target
from qjson_tasks.config.lockfile import lock_path
from qjson_tasks.config.model import Target
from qjson_tasks.errors import QjsonTasksError, RockError, StepError
from qjson_tasks.host.buildah import Buildah
from qjson_tasks.host.storage import temporary_storage
from tests.fixtures.crate_registry import missing_crates
from tests.fixtures.upstream import (
    ROCK,
    ROCK_DIR,
    TAG,
    Upstream,
    git,
    miniature_upstream,
    server_rockspec,
    write_rock_server,
)
from tests.integration.conftest import (
    SUFFIX,
    TEST_REPOSITORY,
    forget_rock_units,
    offline_config_data,
    our_containers,
    retarget,
)
from tests.integration.test_containerfile_build import prefix_of

# The test builder: the crates target's builder with crates.io replaced by a registry whose
# index URL (a free port, new each session) comes from the install step's environment, so
# the builder unit itself stays the same across sessions.
MIRROR_CONFIG = (
    "mkdir -p /root/.cargo && printf '[source.crates-io]\\nreplace-with = \"mirror\"\\n'"
    " > /root/.cargo/config.toml"
)


@pytest.fixture(scope="module")
def crates_target() -> Target:
    return retarget(resolve_target("crates"), "crates")


@pytest.fixture(scope="module")
def crates_built(crates_target: Target, tools: Tools) -> str:
    """The crates target built and verified; returns its builder unit's image."""
    run_build(crates_target, tools, verify=True)
    assert run_verify(crates_target, tools).passed  # also when the build found it up to date
    return current_plan(crates_target, tools).builder.image


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory, crates_target: Target) -> Iterator[Upstream]:
    missing = missing_crates()
    if missing:
        pytest.skip(f"Debian's crate packages for {missing} are not installed (run.sh installs)")
    with miniature_upstream(
        tmp_path_factory.mktemp("upstream"), crates_target.config.builder.setup[0]
    ) as up:
        yield up


def containers_of(buildah: Buildah, target: Target) -> set[str]:
    """The working containers a build of this target made (qjt-TARGET-ROLE-RUN; the test
    targets' names carry the session's suffix): other sessions' come and go meanwhile."""
    return {name for name in our_containers(buildah) if name.startswith(f"qjt-{target.name}-")}


def write_target(directory: Path, name: str, data: dict[str, object]) -> Target:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.toml"
    path.write_text(tomli_w.dumps(data))
    return load_target(path)


def mirror_target(directory: Path, builder_image: str, upstream: Upstream) -> Target:
    """The rock from the loopback luarocks server, crates from the loopback registry."""
    data = resolve_target("crates").config.model_dump(mode="json", exclude_none=True)
    data["builder"] = {
        "image": builder_image,
        "package_manager": "none",
        "setup": [MIRROR_CONFIG],
        "env": {
            "CARGO_PROFILE_RELEASE_STRIP": "symbols",
            "CARGO_REGISTRIES_MIRROR_INDEX": upstream.registry_index,
        },
    }
    data["rocks"] = [{"name": ROCK, "version": "==0.1.0", "source": upstream.rocks.url}]
    data["output"] = {"image": f"{TEST_REPOSITORY}/crates-mirror-{SUFFIX}", "tag": "latest"}
    return write_target(directory, f"crates-mirror-{SUFFIX}", data)


def test_crates_target_builds_with_debian_crate_packages(crates_built: str) -> None:
    assert crates_built.startswith("localhost/qjson-tasks/unit/builder:")


def test_git_rock_from_loopback_upstream_with_crates_from_a_registry(
    crates_built: str, upstream: Upstream, tools: Tools, tmp_path: Path
) -> None:
    target = mirror_target(tmp_path / "mirror", crates_built, upstream)
    result = run_build(target, tools, verify=True)
    assert run_verify(target, tools).passed
    assert result.rock_version == "0.1.0-1"
    assert any(path.startswith("/index/") for path in upstream.registry.requests), (
        "cargo never asked the loopback registry"
    )
    assert f"/{ROCK}-0.1.0-1.rockspec" in upstream.rocks.requests


def test_cargo_too_old_for_the_lockfile_fails_before_the_build(
    buildah: Buildah, tools: Tools, tmp_path: Path, built: object
) -> None:
    """The offline target's builder (Debian's cargo 1.65) and the lockfile-v4 rock."""
    data = offline_config_data(ROCK_DIR, "too-old")
    data["rocks"][0]["name"] = ROCK
    target = write_target(tmp_path, f"too-old-{SUFFIX}", data)
    with pytest.raises(StepError) as caught:
        run_build(target, tools, verify=True)
    message = str(caught.value.cause)
    assert "\n" not in message
    assert "lockfile version 4" in message and "cargo 1.65.0" in message
    assert "cargo-web" in message
    assert not containers_of(buildah, target)
    assert not buildah.image_id(target.config.output.reference)


CARGO_LOCK = ROCK_DIR / "Cargo.lock"


@pytest.fixture
def fresh_upstream(tmp_path: Path, crates_target: Target) -> Iterator[Upstream]:
    """An upstream of its own, for a test that breaks it."""
    script = crates_target.config.builder.setup[0]
    with miniature_upstream(tmp_path / "upstream", script) as up:
        yield up


def test_lock_pins_commit_packed_rock_and_crates_and_a_locked_build_installs_it(
    crates_built: str, fresh_upstream: Upstream, tools: Tools, tmp_path: Path
) -> None:
    target = mirror_target(tmp_path / "mirror", crates_built, fresh_upstream)
    lock = lock_target(target)
    first = lock_path(target).read_bytes()
    (entry,) = lock.rocks
    assert entry.git is not None and entry.cargo is not None
    assert (entry.git.url, entry.git.tag) == (fresh_upstream.git_url, TAG)
    assert entry.git.commit == fresh_upstream.commit
    assert entry.artifact == f"{ROCK}-0.1.0-1.src.rock"
    assert entry.cargo.lock_sha256 == hashlib.sha256(CARGO_LOCK.read_bytes()).hexdigest()
    assert [(c.name, c.version) for c in entry.cargo.crates] == [
        ("memchr", "2.5.0"),
        ("once_cell", "1.17.0"),
    ]
    assert all(c.checksum in CARGO_LOCK.read_text() for c in entry.cargo.crates)
    lock_target(target)
    assert lock_path(target).read_bytes() == first, "the packed .src.rock is not reproducible"

    run_build(target, tools, verify=True)
    assert run_verify(target, tools).passed


def test_lock_refuses_an_unreachable_git_server_and_a_missing_tag(
    crates_built: str, fresh_upstream: Upstream, tmp_path: Path
) -> None:
    target = mirror_target(tmp_path / "mirror", crates_built, fresh_upstream)
    spec = server_rockspec(fresh_upstream.git_url).replace(f'"{TAG}"', '"v9.9.9"')
    write_rock_server(tmp_path / "upstream" / "rocks", spec)
    with pytest.raises(RockError) as missing:
        lock_target(target)
    assert str(missing.value) == f"{ROCK} 0.1.0-1: {fresh_upstream.git_url} has no tag 'v9.9.9'"

    fresh_upstream.git.stop()
    with pytest.raises(RockError) as unreachable:
        lock_target(target)
    assert str(unreachable.value) == (
        f"{ROCK} 0.1.0-1: could not reach its git server at {fresh_upstream.git_url}"
    )
    assert not lock_path(target).exists()


def test_a_moved_tag_is_refused_before_any_container(
    crates_built: str, fresh_upstream: Upstream, tools: Tools, buildah: Buildah, tmp_path: Path
) -> None:
    target = mirror_target(tmp_path / "mirror", crates_built, fresh_upstream)
    lock_target(target)
    work = tmp_path / "upstream" / f"{ROCK}-work"
    (work / "README.md").write_text("moved\n")
    git("commit", "-q", "-am", "moved", cwd=work)
    git("tag", "-f", TAG, cwd=work)
    git("push", "-q", "-f", str(tmp_path / "upstream" / "git" / f"{ROCK}.git"), TAG, cwd=work)
    moved = git("rev-parse", "HEAD", cwd=work)
    image = buildah.image_id(target.config.output.reference)
    with pytest.raises(StepError) as caught:
        run_build(target, tools, verify=True)
    message = str(caught.value.cause)
    assert "\n" not in message
    assert message.startswith(f"{lock_path(target)}: {ROCK} 0.1.0-1: tag {TAG} of ")
    assert f"now names commit {moved[:12]}, the lock says {fresh_upstream.commit[:12]}" in message
    assert not containers_of(buildah, target)
    assert buildah.image_id(target.config.output.reference) == image


def test_a_changed_cargo_lock_of_a_local_rust_rock_is_refused(
    tools: Tools, buildah: Buildah, tmp_path: Path
) -> None:
    rock = tmp_path / "rock"
    shutil.copytree(ROCK_DIR, rock, ignore=shutil.ignore_patterns("target"))
    data = resolve_target("crates").config.model_dump(mode="json", exclude_none=True)
    data["rocks"][0]["source"] = str(rock)
    target = write_target(tmp_path / "config", f"crates-local-{SUFFIX}", data)
    locked = lock_target(target).rocks[0].cargo
    assert locked is not None
    with (rock / "Cargo.lock").open("a") as lockfile:
        lockfile.write("\n")
    with pytest.raises(QjsonTasksError) as caught:
        run_build(target, tools, verify=True)
    message = str(caught.value)
    assert "\n" not in message
    assert f"{lock_path(target)}: {ROCK} 0.1.0-1: the Cargo.lock of {rock} has sha256" in message
    assert f"the lock says {locked.lock_sha256[:16]}" in message
    assert not containers_of(buildah, target)


def test_lock_vendor_then_build_from_the_vendor_directory_with_every_server_stopped(
    crates_built: str, fresh_upstream: Upstream, tools: Tools, buildah: Buildah, tmp_path: Path
) -> None:
    target = mirror_target(tmp_path / "mirror", crates_built, fresh_upstream)
    lock_target(target)
    vendor = tmp_path / "vendor"
    names = vendor_target(target, tools, vendor)
    assert f"{ROCK}-0.1.0-1.src.rock" in names and "crates" in names
    crates = vendor / "crates"
    assert sorted(p.name for p in crates.iterdir()) == ["memchr-2.5.0", "once_cell-1.17.0"]
    fresh_upstream.stop()

    lib = crates / "memchr-2.5.0" / "src" / "lib.rs"
    original = lib.read_bytes()
    lib.write_bytes(original + b"\n// tampered\n")
    with pytest.raises(StepError) as caught:
        run_build(target, tools, verify=True, vendor=str(vendor))
    message = str(caught.value.cause)
    assert "\n" not in message
    assert "vendored crate memchr 2.5.0 was changed: src/lib.rs has sha256" in message
    assert not containers_of(buildah, target)

    lib.write_bytes(original)
    first = run_build(target, tools, verify=True, vendor=str(vendor))
    assert "rock-tree" in first.built
    assert run_verify(target, tools).passed
    library = native_library(buildah, first.image_id)
    # Built from the mounted vendor directory: its fixed path is the crates' panic location.
    assert b"/qjson-crates/once_cell-1.17.0/src/" in library

    # The same inputs from scratch: the same bytes and the same image ID.
    forget_rock_units(buildah, target)
    again = run_build(target, tools, verify=True, vendor=str(vendor))
    assert "rock-tree" in again.built
    again_library = native_library(buildah, again.image_id)
    assert hashlib.sha256(again_library).digest() == hashlib.sha256(library).digest()
    assert again.image_id == first.image_id


def native_library(buildah: Buildah, image: str) -> bytes:
    """The image's qjson.so."""
    with buildah.container(image, f"qjt-crates-so-{SUFFIX}") as ctr, buildah.mounted(ctr) as root:
        return (root / "usr/local/lib/lua/5.1/qjson.so").read_bytes()


def test_cargo_too_old_for_a_locked_git_rocks_lockfile_fails_before_the_build(
    fresh_upstream: Upstream, tools: Tools, buildah: Buildah, tmp_path: Path, built: object
) -> None:
    """Its Cargo.lock is read from the packed rock, before luarocks unpacks anything."""
    offline_builder = current_plan(resolve_target("offline"), tools).builder.image
    target = mirror_target(tmp_path / "old", offline_builder, fresh_upstream)
    lock_target(target)
    with pytest.raises(StepError) as caught:
        run_build(target, tools, verify=True)
    message = str(caught.value.cause)
    assert message.startswith(f"{ROCK}: its Cargo.lock is lockfile version 4")
    assert "cargo 1.65.0" in message and "\n" not in message
    assert not containers_of(buildah, target)


def test_the_rendered_containerfile_builds_a_locked_git_rock_as_build_runtime_does(
    crates_built: str, fresh_upstream: Upstream, tools: Tools, buildah: Buildah, tmp_path: Path
) -> None:
    """`buildah build` of the rendered file: the rock from the locked commit at the fixed
    path, paths remapped, crates from the mirror: the same files under the prefix, the same
    qjson.so bytes, as build-runtime's locked build."""
    target = mirror_target(tmp_path / "mirror", crates_built, fresh_upstream)
    lock = lock_target(target)
    ours = run_build(target, tools, verify=True)
    containerfile = tmp_path / "Containerfile"
    containerfile.write_text(render(target, tmp_path, lock))
    assert "git clone -q --depth=1 --branch=v0.1.0" in containerfile.read_text()
    ref = f"{TEST_REPOSITORY}/crates-git-containerfile-{SUFFIX}:latest"
    buildah.build(containerfile, ref, tmp_path, "--force-rm")
    assert not containers_of(buildah, target)
    prefix = target.config.runtime.prefix
    theirs = prefix_of(buildah, ref, "git-containerfile", prefix)
    assert theirs == prefix_of(buildah, ours.image_ref, "git-pipeline", prefix)
    assert native_library(buildah, ref) == native_library(buildah, ours.image_ref)


def test_the_git_rock_built_again_after_invoke_clean_all_is_the_same_image(
    crates_built: str, fresh_upstream: Upstream, tools: Tools, buildah: Buildah, tmp_path: Path
) -> None:
    """Built, `clean --all` (what the task runs: every unit image and cargo cache goes),
    built again: the same qjson.so bytes and the same runtime image ID.

    In a temporary storage of its own: in the default one, clean --all would take every
    other test's (and every other session's) units and caches away. Its buildah runs keep
    their cache mounts under that storage's TMPDIR, so clean --all removes those only.
    """
    base = resolve_target("crates").config.runtime.base_image
    caches_before = set(cargo_caches())
    with temporary_storage(buildah, f"clean-all-{SUFFIX}") as other:
        assert other.storage is not None
        mine = Tools(buildah.runner, other)
        builder = f"{TEST_REPOSITORY}/crates-builder-{SUFFIX}:latest"
        buildah.push(base, other.storage.transport(base))
        buildah.push(crates_built, other.storage.transport(builder))
        target = mirror_target(tmp_path / "mirror", builder, fresh_upstream)
        lock_target(target)
        first = run_build(target, mine, verify=True)
        assert set(first.built) == {"builder", "rock-tree", "runtime"}
        library = native_library(other, first.image_id)

        units = {unit.image for unit in current_plan(target, mine).units}
        removed = clean_units(mine, everything=True)
        assert units <= set(removed)
        caches = [Path(name) for name in removed if name not in units]
        assert caches, "clean --all removed no cargo cache"
        assert all(other.storage.tmpdir in cache.parents for cache in caches)
        left = {name for image in other.images() for name in image.names}
        assert not {name for name in left if name.startswith(f"{UNIT_REPOSITORY}/")}
        assert {base, builder} <= left

        again = run_build(target, mine, verify=True)
        assert set(again.built) == {"builder", "rock-tree", "runtime"}
        again_library = native_library(other, again.image_id)
        assert hashlib.sha256(again_library).hexdigest() == hashlib.sha256(library).hexdigest()
        assert again.image_id == first.image_id
    # Nothing of the default storage was touched.
    assert buildah.image_id(crates_built)
    assert caches_before <= set(cargo_caches())
