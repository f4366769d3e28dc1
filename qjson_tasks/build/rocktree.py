"""The rock-tree unit: install the rocks in a builder container, keep only the tree.

luarocks installs every rock (and the build-only dependencies it needs) into the staging
tree; rocks no listed rock needs at runtime leave it again; the installed versions are
checked; only the tree goes into a scratch image, labelled with each rock's provenance.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from qjson_tasks.build.builder import BUILD_USER
from qjson_tasks.build.images import commit_unit, image_env
from qjson_tasks.build.labels import (
    ROCK_LABEL_PREFIX,
    TREE_BYTES_LABEL,
    TREE_FILES_LABEL,
    UNIT_NAME_LABEL,
    VERSION_LABEL,
)
from qjson_tasks.build.plan import BuildPlan
from qjson_tasks.build.session import BuildSession
from qjson_tasks.build.steps import VENDOR_DIR, RockStep, cargo_download_mounts, cargo_home
from qjson_tasks.errors import ToolError
from qjson_tasks.host.storage import scratch_dir
from qjson_tasks.luarocks.versions import Requirement
from qjson_tasks.rocks.source import ignored


def tree_stats(tree: Path) -> tuple[int, int]:
    """(regular files, bytes) under a directory."""
    files = size = 0
    for path in tree.rglob("*"):
        if path.is_file() and not path.is_symlink():
            files += 1
            size += path.stat().st_size
    return files, size


def rocks_dir(tree: Path, lua_version: str) -> Path:
    return tree / "lib" / "luarocks" / f"rocks-{lua_version}"


def read_tree_manifest(tree: Path, plan: BuildPlan) -> str:
    path = rocks_dir(tree, plan.lua_version) / "manifest"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        raise ToolError(f"luarocks wrote no manifest in {plan.tree}: nothing installed") from None


def check_versions(plan: BuildPlan, installed: dict[str, str]) -> None:
    """Every rock's installed version (all are: see runtime_closure) is one its requirement
    (and the lock) allows."""
    for rock in plan.rocks:
        version = installed[rock.name]
        allowed = Requirement.parse(rock.requirement).allows_text(version)
        locked = plan.lock.entry(rock.name) if plan.lock else None
        if not allowed or (locked is not None and locked.version != version):
            wanted = f"the lock's {locked.version}" if locked else f"'{rock.requirement}'"
            raise ToolError(f"{rock.name} {version} was installed but the target requires {wanted}")


def rock_labels(tree: Path, plan: BuildPlan, kept: dict[str, str]) -> dict[str, str]:
    """Provenance: each installed rock's version and the sha256 of its rockspec and source
    (from the lock; without one the source's is known for local rocks only)."""
    labels = {}
    for name, version in sorted(kept.items()):
        spec = rocks_dir(tree, plan.lua_version) / name / version / f"{name}-{version}.rockspec"
        entry = plan.lock.entry(name) if plan.lock else None
        source = entry.source_sha256 if entry else plan.source_digests.get(name, "")
        value = {
            "version": version,
            "rockspec_sha256": hashlib.sha256(spec.read_bytes()).hexdigest()
            if spec.is_file()
            else "",
            "source_sha256": source,
        }
        labels[ROCK_LABEL_PREFIX + name] = json.dumps(value, sort_keys=True)
    return labels


def _copy_local_rock(session: BuildSession, container: str, directory: str, inside: str) -> None:
    with scratch_dir(session.run_id) as tmp:  # named after the run: swept if it dies here
        staged = tmp / "src"
        # Plain copies get fresh mtimes, so cargo's cached target directory (a cache mount)
        # never mistakes a changed file for an unchanged one.
        shutil.copytree(
            directory,
            staged,
            ignore=lambda _dir, names: [n for n in names if ignored(n)],
            copy_function=shutil.copy,
            symlinks=True,  # as the source digest sees them
        )
        session.buildah.copy(container, str(staged), inside)


def _install_rock(session: BuildSession, container: str, rock: RockStep) -> None:
    buildah = session.buildah
    if rock.copy is not None:
        source, inside = rock.copy
        if rock.copies_directory:
            _copy_local_rock(session, container, source, inside)
        else:
            buildah.copy(container, source, inside)
    buildah.run(
        container,
        rock.argv,
        env=session.plan.rock_env,
        workdir=rock.workdir,
        user=BUILD_USER,
        mounts=rock.mounts,
    )


def _cargo_lockfiles(session: BuildSession, vendored: Path) -> list[tuple[str, str, str]]:
    """(rock, where, text) of each Cargo.lock known before the build: a local rock's, and a
    locked git rock's inside its packed .src.rock."""
    found = []
    for rock in session.plan.rocks:
        if rock.copies_directory and rock.copy is not None:
            path = Path(rock.copy[0]) / "Cargo.lock"
            if path.is_file():
                found.append((rock.name, str(path), path.read_text(encoding="utf-8")))
    lock = session.plan.lock
    for entry in lock.rocks if lock else ():
        if entry.git is not None and entry.cargo is not None:
            member = f"{entry.git.dir}/Cargo.lock"
            with zipfile.ZipFile(vendored / entry.artifact) as archive:
                text = archive.read(member).decode("utf-8", "replace")
            found.append((entry.name, f"{entry.artifact}:{member}", text))
    return found


def check_cargo_lockfiles(session: BuildSession, container: str, vendored: Path) -> None:
    """Before any build: the builder's cargo can read every Rust rock's Cargo.lock."""
    from qjson_tasks.rocks.cargo import CHECKED_FROM, check_cargo, lockfile_version

    cargo = None
    for rock, where, text in _cargo_lockfiles(session, vendored):
        version = lockfile_version(text, where)
        if version < CHECKED_FROM:
            continue
        if cargo is None:
            argv = ("cargo", "--version")
            cargo = session.buildah.run(container, argv, user=BUILD_USER, stream=False)
        check_cargo(rock, version, cargo)


def offline_crates(session: BuildSession, vendor: Path, scratch: Path) -> tuple[str, ...]:
    """With --vendor: the vendored crates, checked against the lock, and the mounts making
    them cargo's crates.io, offline, for the rock install only (never in an image)."""
    from qjson_tasks.rocks.crates import (
        CARGO_CONFIG_INSIDE,
        CRATES_INSIDE,
        CRATES_SUBDIR,
        check_vendored_crates,
        offline_cargo_config,
        rust_rocks,
    )

    lock = session.plan.lock
    if lock is None or not rust_rocks(lock):
        return ()
    crates = (vendor / CRATES_SUBDIR).resolve()
    check_vendored_crates(session.target, lock, crates)
    config = scratch / "cargo-config.toml"
    config.write_text(offline_cargo_config(), encoding="utf-8")
    return (
        f"type=bind,src={crates},target={CRATES_INSIDE},ro",
        f"type=bind,src={config},target={CARGO_CONFIG_INSIDE},ro",
    )


def install_rocks(
    session: BuildSession, builder: str, vendored: Path, offline: tuple[str, ...] = ()
) -> None:
    """Local servers (or, with a lock, the vendored files) into the builder; every rock
    installed into the staging tree, with cargo's downloads as cache mounts (and, offline,
    the vendored crates)."""
    plan, buildah = session.plan, session.buildah
    check_cargo_lockfiles(session, builder, vendored)
    for host, inside in plan.servers:
        buildah.copy(builder, host, inside)
    if plan.lock is not None:
        # The locked files are the builder's only rock server.
        buildah.copy(builder, str(vendored), VENDOR_DIR)
        buildah.run(builder, plan.make_manifest, user=BUILD_USER)
    home = cargo_home(image_env(buildah, plan.builder.image), plan.rock_env)
    downloads = cargo_download_mounts(plan.builder.hash, home)
    for rock in plan.rocks:
        _install_rock(session, builder, replace(rock, mounts=rock.mounts + downloads + offline))


def remove_build_only(session: BuildSession, container: str, build_only: dict[str, str]) -> None:
    """Rocks luarocks installed only to build others (build_dependencies) leave the tree."""
    plan = session.plan
    for name, version in sorted(build_only.items()):
        session.log(f"    removing build-only dependency {name} {version} from the tree")
        session.buildah.run(
            container,
            (*plan.luarocks_command, "remove", "--force", f"--tree={plan.tree}", name, version),
            user=BUILD_USER,
        )


def commit_tree(session: BuildSession, scope: ExitStack, builder: str, tree: Path) -> None:
    """Keep the runtime rocks of the installed tree; commit only it as the rock-tree unit."""
    from qjson_tasks.luarocks.treemanifest import runtime_closure  # not on warm runs

    plan, buildah = session.plan, session.buildah
    manifest = read_tree_manifest(tree, plan)
    source = f"{plan.tree}/lib/luarocks/rocks-{plan.lua_version}/manifest"
    kept, build_only = runtime_closure(manifest, [r.name for r in plan.rocks], source)
    remove_build_only(session, builder, build_only)
    check_versions(plan, kept)
    files, size = tree_stats(tree)
    holder = scope.enter_context(
        buildah.container("scratch", plan.container_name("tree"), scratch=True)
    )
    buildah.copy(holder, str(tree), plan.tree, chown="0:0")
    labels = {
        VERSION_LABEL: kept[plan.rocks[0].name],
        TREE_FILES_LABEL: str(files),
        TREE_BYTES_LABEL: str(size),
        UNIT_NAME_LABEL: plan.rock_tree.name,
        **rock_labels(tree, plan, kept),
    }
    buildah.config(holder, labels=labels)
    commit_unit(buildah, holder, plan.rock_tree, 0)


def build_rock_tree(session: BuildSession, vendor: Path | None) -> None:
    """Install the rocks in a builder container; keep only the tree, as the rock-tree unit."""
    plan, buildah = session.plan, session.buildah
    with ExitStack() as scope:
        # Named after the run, so the sweep removes what a killed run left (host/storage.py).
        vendored = scope.enter_context(scratch_dir(session.run_id))
        offline: tuple[str, ...] = ()
        if plan.lock is not None:
            from qjson_tasks.rocks.vendor import fetch_locked

            # No container exists yet, so no --keep-on-failure hint.
            with session.step("fetch locked rocks", hint=False):
                fetch_locked(session.target, plan.lock, vendored, vendor, session.runner)
                if vendor is not None:
                    scratch = scope.enter_context(scratch_dir(session.run_id))
                    offline = offline_crates(session, vendor, scratch)
        with session.step("builder container"):
            builder = scope.enter_context(
                buildah.container(plan.builder.image, plan.container_name("builder"))
            )
        with session.step("rock install"):
            install_rocks(session, builder, vendored, offline)
        with session.step("mount builder"):
            root = scope.enter_context(buildah.mounted(builder))
        with session.step("rock tree"):
            commit_tree(session, scope, builder, root / plan.tree.lstrip("/"))
