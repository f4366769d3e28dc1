"""build(target) -> BuildResult: the builder/runtime split, step by step.

Every working container and mount is scoped, so a failing or interrupted step leaves none
behind; the runtime image is committed unnamed and gets the target's tag only once it passed
verification, so a failed build never replaces the image users deploy.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Protocol

from qjson_tasks import labelmemo, locks
from qjson_tasks.baseimage import build_base_image
from qjson_tasks.buildah import Buildah, env_map, image_config
from qjson_tasks.config import Target
from qjson_tasks.errors import QjsonTasksError, StepError, ToolError, VerificationError
from qjson_tasks.lockfile import Lock
from qjson_tasks.plan import (
    LABEL_PREFIX,
    VENDOR_DIR,
    BuildPlan,
    ImageFacts,
    PlanInputs,
    RockFacts,
    RockStep,
    Unit,
    cargo_download_mounts,
    cargo_home,
    make_plan,
)
from qjson_tasks.rocksource import ignored, rock_facts, server_digest
from qjson_tasks.runner import Runner
from qjson_tasks.versions import Requirement

Log = Callable[[str], None]
KEEP_HINT = "Rerun with --keep-on-failure to keep the working containers for debugging."
# Builder steps write / and install packages: root, whatever USER the builder image sets.
BUILD_USER = "0:0"
VERSION_LABEL = f"{LABEL_PREFIX}.rock.version"
TREE_FILES_LABEL = f"{LABEL_PREFIX}.tree.files"
TREE_BYTES_LABEL = f"{LABEL_PREFIX}.tree.bytes"
# One label per installed rock: {"version", "rockspec_sha256", "source_sha256"} as JSON.
ROCK_LABEL_PREFIX = f"{LABEL_PREFIX}.rocks."


class VerifyOutcome(Protocol):
    passed: bool

    def summary(self) -> str: ...


Verifier = Callable[[str], VerifyOutcome]


@dataclass(frozen=True)
class BuildResult:
    image_ref: str
    image_id: str
    rock_version: str
    files_added: int
    bytes_added: int
    units: dict[str, str] = field(default_factory=dict)
    built: tuple[str, ...] = ()
    verification: VerifyOutcome | None = None


@contextmanager
def step(name: str, log: Log, keep: bool) -> Iterator[None]:
    log(f"==> {name}")
    try:
        yield
    except StepError:
        raise
    except QjsonTasksError as exc:
        raise StepError(name, exc, "" if keep else KEEP_HINT) from exc


ImageIndex = dict[str, ImageFacts]


def image_index(buildah: Buildah) -> ImageIndex:
    """Every local image name with its facts, from one `buildah images` listing."""
    return {
        name: ImageFacts(name, str(image.get("id", "")).removeprefix("sha256:"), _created(image))
        for image in buildah.images()
        for name in image.get("names") or ()
    }


def _created(image: dict[str, object]) -> int:
    created = image.get("created")
    return max(created, 0) if isinstance(created, int) else 0


def image_facts(buildah: Buildah, ref: str, index: ImageIndex | None = None) -> ImageFacts | None:
    """A local image's facts: from the listing when ref is a listed name, else inspected
    (digest references, short names)."""
    if index is not None and ref in index:
        return index[ref]
    info = buildah.inspect_image(ref)
    if info is None:
        return None
    created = (info.get("OCIv1") or {}).get("created") or ""
    try:
        epoch = int(datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp())
    except ValueError:
        epoch = 0
    return ImageFacts(ref, info["FromImageID"], max(epoch, 0))


def ensure_image(
    buildah: Buildah, runner: Runner, target: Target, ref: str, log: Log, index: ImageIndex
) -> ImageFacts:
    """A local image's facts, making it from Debian packages or pulling it if missing."""
    facts = image_facts(buildah, ref, index)
    if facts:
        return facts
    with locks.hold(ref, log):
        facts = image_facts(buildah, ref)  # another run may have made it while we waited
        if facts:
            return facts
        bootstrap = target.config.runtime.bootstrap
        if bootstrap is not None and ref == target.config.runtime.base_image:
            log(f"    {ref} is missing: making it from Debian packages (debootstrap)")
            build_base_image(buildah, runner, bootstrap, ref, str(target.path))
        else:
            log(f"    {ref} is missing: pulling it")
            buildah.pull(ref)
        facts = image_facts(buildah, ref)
    if facts is None:
        raise ToolError(f"{ref} is still not a local image after making or pulling it")
    return facts


def plan_inputs(
    target: Target,
    base: ImageFacts | None,
    builder: ImageFacts | None,
    verify_digest: str,
    lock: Lock | None = None,
    vendor: Path | None = None,
) -> PlanInputs:
    """Everything the plan needs from the disk: local rocks and servers, by content. With a
    lock, local rocks must still have the contents it recorded (a vendored rock file counts
    by the lock's hash: its copy is checked when it is fetched)."""
    facts = rock_facts(target, vendored=lock is not None and vendor is not None)
    if lock is not None:
        facts = tuple(
            RockFacts(fact.local, entry.source_sha256)
            if not fact.digest and rock.source_kind == "file" and (entry := lock.entry(rock.name))
            else fact
            for rock, fact in zip(target.config.rocks, facts, strict=True)
        )
        from qjson_tasks.vendor import check_local_rocks  # a locked build's only

        check_local_rocks(target, facts, lock)
    # With a lock every rock comes from the vendored files: no server is used.
    servers = server_digest(target) if lock is None else ""
    return PlanInputs(base, builder, facts, servers, verify_digest, lock)


def commit_unit(buildah: Buildah, container: str, unit: Unit, timestamp: int | None) -> None:
    """Commit a unit image; one it replaces (--rebuild) is removed once nothing names it."""
    replaced = buildah.image_id(unit.image)
    image_id = buildah.commit(container, unit.image, timestamp=timestamp)
    if replaced and replaced != image_id:
        discard_if_unnamed(buildah, replaced)


def prepare_builder(plan: BuildPlan, buildah: Buildah) -> None:
    with buildah.container(plan.builder_id, plan.container_name("setup")) as ctr:
        for argv in plan.builder_setup:
            buildah.run(ctr, argv, env=plan.setup_env, user=BUILD_USER)
        commit_unit(buildah, ctr, plan.builder, None)


def tree_stats(tree: Path) -> tuple[int, int]:
    """(regular files, bytes) under a directory."""
    files = size = 0
    for path in tree.rglob("*"):
        if path.is_file() and not path.is_symlink():
            files += 1
            size += path.stat().st_size
    return files, size


def manifest_path(tree: Path, lua_version: str) -> Path:
    return tree / "lib" / "luarocks" / f"rocks-{lua_version}" / "manifest"


def read_tree_manifest(tree: Path, plan: BuildPlan) -> str:
    path = manifest_path(tree, plan.lua_version)
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
    rocks_dir = tree / "lib" / "luarocks" / f"rocks-{plan.lua_version}"
    labels = {}
    for name, version in sorted(kept.items()):
        spec = rocks_dir / name / version / f"{name}-{version}.rockspec"
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


def _copy_local_rock(buildah: Buildah, container: str, directory: str, inside: str) -> None:
    with tempfile.TemporaryDirectory(prefix="qjt-rock-") as tmp:
        staged = Path(tmp) / "src"
        # Plain copies get fresh mtimes, so cargo's cached target directory (a cache mount)
        # never mistakes a changed file for an unchanged one.
        shutil.copytree(
            directory,
            staged,
            ignore=lambda _dir, names: [n for n in names if ignored(n)],
            copy_function=shutil.copy,
            symlinks=True,  # as the source digest sees them
        )
        buildah.copy(container, str(staged), inside)


def _install_rock(plan: BuildPlan, buildah: Buildah, container: str, rock: RockStep) -> None:
    if rock.copy is not None:
        source, inside = rock.copy
        if Path(source).is_dir():
            _copy_local_rock(buildah, container, source, inside)
        else:
            buildah.copy(container, source, inside)
    buildah.run(
        container,
        rock.argv,
        env=plan.rock_env,
        workdir=rock.workdir,
        user=BUILD_USER,
        mounts=rock.mounts,
    )


def _fetch_locked(plan: BuildPlan, target: Target, vendor: Path | None, into: Path) -> None:
    """The locked rock files, each checked against the lock, before anything is made."""
    from qjson_tasks.vendor import fetch_locked

    assert plan.lock is not None
    fetch_locked(target, plan.lock, into, vendor)


def remove_build_only(
    plan: BuildPlan, buildah: Buildah, container: str, build_only: dict[str, str], log: Log
) -> None:
    """Rocks luarocks installed only to build others (build_dependencies) leave the tree."""
    for name, version in sorted(build_only.items()):
        log(f"    removing build-only dependency {name} {version} from the tree")
        buildah.run(
            container,
            (*plan.luarocks_command, "remove", "--force", f"--tree={plan.tree}", name, version),
            user=BUILD_USER,
        )


def discard_if_unnamed(buildah: Buildah, image_id: str | None) -> bool:
    """Remove an image that no name points to (any more); True when it was removed."""
    if image_id and buildah.image_names(image_id) == []:
        return buildah.rmi_quietly(image_id)
    return False


def _image_env(buildah: Buildah, ref: str) -> dict[str, str]:
    return env_map(image_config(buildah.inspect_image(ref) or {}).get("Env"))


def image_labels(buildah: Buildah, ref: str) -> dict[str, str]:
    info = buildah.inspect_image(ref) or {}
    return dict(image_config(info).get("Labels") or {})


def labels_by_id(buildah: Buildah, image_id: str) -> dict[str, str]:
    """An image's labels: remembered for its ID (see labelmemo), else inspected."""
    labels = labelmemo.recall(image_id)
    if labels is None:
        labels = image_labels(buildah, image_id)
        labelmemo.remember(image_id, labels)
    return labels


def _as_int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


def build_rock_tree(
    plan: BuildPlan, target: Target, buildah: Buildah, log: Log, keep: bool, vendor: Path | None
) -> None:
    """Install the rocks in a builder container; keep only the tree, as the rock-tree unit."""
    from qjson_tasks.treemanifest import runtime_closure  # not on warm runs

    with ExitStack() as scope:
        vendored = Path(scope.enter_context(tempfile.TemporaryDirectory(prefix="qjt-vendor-")))
        if plan.lock is not None:
            # No container exists yet, so no --keep-on-failure hint (keep=True drops it).
            with step("fetch locked rocks", log, True):
                _fetch_locked(plan, target, vendor, vendored)
        with step("builder container", log, keep):
            builder = scope.enter_context(
                buildah.container(plan.builder.image, plan.container_name("builder"))
            )
        with step("rock install", log, keep):
            for host, inside in plan.servers:
                buildah.copy(builder, host, inside)
            if plan.lock is not None:
                # The locked files are the builder's only rock server.
                buildah.copy(builder, str(vendored), VENDOR_DIR)
                buildah.run(builder, plan.make_manifest, user=BUILD_USER)
            downloads = cargo_download_mounts(
                plan.builder, cargo_home(_image_env(buildah, plan.builder.image), plan.rock_env)
            )
            for rock in plan.rocks:
                _install_rock(plan, buildah, builder, replace(rock, mounts=rock.mounts + downloads))
        with step("mount builder", log, keep):
            root = scope.enter_context(buildah.mounted(builder))
        with step("rock tree", log, keep):
            tree = root / plan.tree.lstrip("/")
            manifest = read_tree_manifest(tree, plan)
            source = f"{plan.tree}/lib/luarocks/rocks-{plan.lua_version}/manifest"
            kept, build_only = runtime_closure(manifest, [r.name for r in plan.rocks], source)
            remove_build_only(plan, buildah, builder, build_only, log)
            check_versions(plan, kept)
            files, size = tree_stats(tree)
            holder = scope.enter_context(
                buildah.container("scratch", plan.container_name("tree"), scratch=True)
            )
            buildah.copy(holder, str(tree), plan.tree, chown="0:0")
            buildah.config(
                holder,
                labels={
                    VERSION_LABEL: kept[plan.rocks[0].name],
                    TREE_FILES_LABEL: str(files),
                    TREE_BYTES_LABEL: str(size),
                    **rock_labels(tree, plan, kept),
                },
            )
            commit_unit(buildah, holder, plan.rock_tree, 0)


def build_runtime(plan: BuildPlan, buildah: Buildah, log: Log, keep: bool) -> str:
    """The runtime base plus the rock tree under the prefix, committed under the run's
    temporary name only."""
    tree_labels = {
        key: value
        for key, value in image_labels(buildah, plan.rock_tree.image).items()
        if key.startswith(LABEL_PREFIX)
    }
    with ExitStack() as scope:
        with step("runtime container", log, keep):
            runtime = scope.enter_context(
                buildah.container(plan.base_id, plan.container_name("runtime"))
            )
        with step("copy tree", log, keep):
            buildah.copy(
                runtime, plan.tree, plan.prefix, chown="0:0", from_image=plan.rock_tree.image
            )
        with step("label", log, keep):
            labels = {**plan.labels, **plan.provenance_labels(), **tree_labels}
            buildah.config(runtime, labels=labels)
        with step("commit", log, keep):
            return buildah.commit(runtime, plan.temporary_ref, timestamp=plan.timestamp)


def _planned(
    target: Target, buildah: Buildah, runner: Runner, inputs: PlanInputs, run_id: str, log: Log
) -> tuple[BuildPlan, ImageIndex]:
    """The plan, once the base and builder images are local (made or pulled if missing)."""
    config = target.config
    index = image_index(buildah)
    with step("base image", log, buildah.keep):
        base = ensure_image(buildah, runner, target, config.runtime.base_image, log, index)
    with step("builder image", log, buildah.keep):
        builder = ensure_image(buildah, runner, target, config.builder.image, log, index)
    plan = make_plan(target, replace(inputs, base=base, builder=builder), run_id=run_id)
    log("    units: " + ", ".join(unit.name for unit in plan.units))
    return plan, index


@contextmanager
def builder_container(
    target: Target, buildah: Buildah, runner: Runner, *, run_id: str, log: Log, role: str
) -> Iterator[str]:
    """A working container of the target's builder unit (made first if missing)."""
    inputs = plan_inputs(target, None, None, "")
    plan, index = _planned(target, buildah, runner, inputs, run_id, log)
    with locks.hold(plan.builder.image, log):
        if image_facts(buildah, plan.builder.image, index) is None:
            with step("builder setup", log, buildah.keep):
                prepare_builder(plan, buildah)
    with buildah.container(plan.builder.image, plan.container_name(role)) as container:
        yield container


def build(
    target: Target,
    buildah: Buildah,
    runner: Runner,
    *,
    run_id: str,
    verifier: Verifier | None,
    log: Log,
    verify_digest: str = "",
    rebuild: bool = False,
    warnings: Sequence[str] = (),
    lock: Lock | None = None,
    vendor: Path | None = None,
) -> BuildResult:
    keep = buildah.keep
    # Bad input (a rock directory without a rockspec) must fail before anything is made.
    inputs = plan_inputs(target, None, None, verify_digest, lock, vendor)
    for warning in warnings:
        log(warning)
    plan, index = _planned(target, buildah, runner, inputs, run_id, log)

    def present(unit: Unit) -> str | None:
        """The unit image's ID when it exists; asked again (under the lock) when the listing
        taken at the start lacks it, since another run may have built it meanwhile."""
        if rebuild or not plan.reusable(unit):
            return None
        found = image_facts(buildah, unit.image, index)
        if found:
            log(f"    {unit.name}: up to date")
        return found.image_id if found else None

    built: list[str] = []
    outcome = None
    with locks.hold(plan.output_ref, log):
        image_id = present(plan.runtime)
        if image_id is None:
            with locks.hold(plan.rock_tree.image, log):
                if not present(plan.rock_tree):
                    with locks.hold(plan.builder.image, log):
                        if not present(plan.builder):
                            with step("builder setup", log, keep):
                                prepare_builder(plan, buildah)
                            built.append(plan.builder.kind)
                    build_rock_tree(plan, target, buildah, log, keep, vendor)
                    built.append(plan.rock_tree.kind)
            try:
                image_id = build_runtime(plan, buildah, log, keep)
                built.append(plan.runtime.kind)
                outcome = finish(plan, buildah, image_id, verifier, log, keep)
            finally:
                # Also after Ctrl-C between the commit and the tag: untag the temporary name,
                # which deletes the image when verification or tagging never named it.
                if buildah.image_id(plan.temporary_ref):
                    buildah.rmi_quietly(plan.temporary_ref)
        elif index.get(plan.output_ref, ImageFacts("", "")).image_id != image_id:
            with step("tag", log, keep):
                retag(plan, buildah, image_id, (), log)
    labels = labels_by_id(buildah, image_id)
    return BuildResult(
        image_ref=plan.output_ref,
        image_id=image_id,
        rock_version=labels.get(VERSION_LABEL, ""),
        files_added=_as_int(labels.get(TREE_FILES_LABEL)),
        bytes_added=_as_int(labels.get(TREE_BYTES_LABEL)),
        units={unit.kind: unit.name for unit in plan.units},
        built=tuple(built),
        verification=outcome,
    )


def retag(
    plan: BuildPlan, buildah: Buildah, image_id: str, extra: tuple[str, ...], log: Log
) -> None:
    """Point the output (and extra names) at image_id; drop what the output left unnamed."""
    previous = buildah.image_id(plan.output_ref)
    if previous == image_id and not extra:
        return
    buildah.tag(image_id, plan.output_ref, *extra)
    if previous and previous != image_id and discard_if_unnamed(buildah, previous):
        log(f"    removed the image {plan.output_ref} pointed to before ({previous[:12]})")


def finish(
    plan: BuildPlan,
    buildah: Buildah,
    image_id: str,
    verifier: Verifier | None,
    log: Log,
    keep: bool,
) -> VerifyOutcome | None:
    """Verify the new image, then tag it (the caller removes its temporary name)."""
    outcome = None
    if verifier is not None:
        with step("verify", log, keep):
            outcome = verifier(image_id)
            if not outcome.passed:
                raise VerificationError(
                    f"the new image failed verification; {plan.output_ref} was left as it"
                    f" was\n{outcome.summary()}"
                )
    # Only a verified image becomes the runtime unit; unverified, it gets the output tag.
    unit_tag = (plan.runtime.image,) if verifier is not None else ()
    with step("tag", log, keep):
        retag(plan, buildah, image_id, unit_tag, log)
    return outcome
