"""build(target) -> BuildResult: the builder/runtime split, step by step.

Every working container and mount is scoped, so a failing or interrupted step leaves none
behind; the runtime image is committed unnamed and gets the target's tag only once it passed
verification, so a failed build never replaces the image users deploy.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from qjson_tasks.baseimage import build_base_image
from qjson_tasks.buildah import Buildah
from qjson_tasks.config import Target
from qjson_tasks.errors import QjsonTasksError, StepError, ToolError, VerificationError
from qjson_tasks.plan import LABEL_PREFIX, SOURCE_DIR, BuildPlan, make_plan
from qjson_tasks.rocksource import find_local_rock
from qjson_tasks.runner import Runner
from qjson_tasks.versions import Requirement, Version

Log = Callable[[str], None]
KEEP_HINT = "Rerun with --keep-on-failure to keep the working containers for debugging."
# Copied into the builder with a local rock: build outputs and VCS data would only slow it down.
SOURCE_IGNORE = ("target", ".git", "*.rock")
# Builder steps write / and install packages: root, whatever USER the builder image sets.
BUILD_USER = "0:0"


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
    builder_reused: bool
    verification: VerifyOutcome | None


@contextmanager
def step(name: str, log: Log, keep: bool) -> Iterator[None]:
    log(f"==> {name}")
    try:
        yield
    except StepError:
        raise
    except QjsonTasksError as exc:
        raise StepError(name, exc, "" if keep else KEEP_HINT) from exc


def ensure_image(buildah: Buildah, runner: Runner, target: Target, ref: str, log: Log) -> str:
    """The local image ID of ref, making it from Debian packages or pulling it if missing."""
    image_id = buildah.image_id(ref)
    if image_id:
        return image_id
    bootstrap = target.config.runtime.bootstrap
    if bootstrap is not None and ref == target.config.runtime.base_image:
        log(f"    {ref} is missing: making it from Debian packages (debootstrap)")
        return build_base_image(buildah, runner, bootstrap, ref, str(target.path))
    log(f"    {ref} is missing: pulling it")
    return buildah.pull(ref)


def prepare_builder(plan: BuildPlan, buildah: Buildah, log: Log) -> bool:
    """Make the builder unit image unless it exists; True when it was reused."""
    if buildah.image_id(plan.builder_unit):
        log(f"    reusing {plan.builder_unit}")
        return True
    with buildah.container(plan.builder_image, plan.container_name("setup")) as ctr:
        for argv in plan.builder_setup:
            buildah.run(ctr, argv, env=plan.setup_env, user=BUILD_USER)
        buildah.commit(ctr, plan.builder_unit)
    return False


def tree_stats(tree: Path) -> tuple[int, int]:
    """(regular files, bytes) under a directory."""
    files = size = 0
    for path in tree.rglob("*"):
        if path.is_file() and not path.is_symlink():
            files += 1
            size += path.stat().st_size
    return files, size


def installed_version(tree: Path, plan: BuildPlan) -> str:
    rock_dir = tree / "lib" / "luarocks" / f"rocks-{plan.lua_version}" / plan.rock_name
    versions = sorted(p.name for p in rock_dir.iterdir()) if rock_dir.is_dir() else []
    if len(versions) != 1:
        raise ToolError(
            f"expected one installed version of {plan.rock_name} under {plan.tree}, found"
            f" {versions or 'none'}"
        )
    version = versions[0]
    try:
        allowed = Requirement.parse(plan.rock_requirement).allows(Version.parse(version))
    except ValueError:
        allowed = False
    if not allowed:
        raise ToolError(
            f"{plan.rock_name} {version} was installed but rock.version requires"
            f" '{plan.rock_requirement}'"
        )
    return version


def _copy_local_rock(plan: BuildPlan, buildah: Buildah, container: str) -> None:
    assert plan.local_rock is not None
    with tempfile.TemporaryDirectory(prefix="qjt-rock-") as tmp:
        staged = Path(tmp) / "src"
        shutil.copytree(
            plan.local_rock.directory, staged, ignore=shutil.ignore_patterns(*SOURCE_IGNORE)
        )
        buildah.copy(container, str(staged), SOURCE_DIR)


def discard_if_unnamed(buildah: Buildah, image_id: str | None) -> bool:
    """Remove an image that no name points to (any more); True when it was removed."""
    if image_id and buildah.image_names(image_id) == []:
        return buildah.rmi_quietly(image_id)
    return False


def build(
    target: Target,
    buildah: Buildah,
    runner: Runner,
    *,
    run_id: str,
    verifier: Verifier | None,
    log: Log,
) -> BuildResult:
    config = target.config
    keep = buildah.keep
    local_rock = find_local_rock(target)
    with step("base image", log, keep):
        ensure_image(buildah, runner, target, config.runtime.base_image, log)
    with step("builder image", log, keep):
        builder_id = ensure_image(buildah, runner, target, config.builder.image, log)
    plan = make_plan(target, run_id=run_id, builder_image_id=builder_id, local_rock=local_rock)
    with step("builder setup", log, keep):
        reused = prepare_builder(plan, buildah, log)

    with ExitStack() as scope:
        with step("builder container", log, keep):
            builder = scope.enter_context(
                buildah.container(plan.builder_unit, plan.container_name("builder"))
            )
        with step("rock install", log, keep):
            if plan.local_rock:
                _copy_local_rock(plan, buildah, builder)
            buildah.run(
                builder,
                plan.rock_install,
                env=plan.rock_env,
                workdir=plan.rock_workdir,
                user=BUILD_USER,
            )
        with step("runtime container", log, keep):
            runtime = scope.enter_context(
                buildah.container(plan.base_image, plan.container_name("runtime"))
            )
        with ExitStack() as mount_scope:
            with step("mount builder", log, keep):
                root = mount_scope.enter_context(buildah.mounted(builder))
            tree = root / plan.tree.lstrip("/")
            with step("copy tree", log, keep):
                version = installed_version(tree, plan)
                files, size = tree_stats(tree)
                buildah.copy(runtime, str(tree), plan.prefix, chown="0:0")
        with step("label", log, keep):
            buildah.config(runtime, labels={**plan.labels, f"{LABEL_PREFIX}.rock.version": version})
        with step("commit", log, keep):
            image_id = buildah.commit(runtime)

    outcome = None
    try:
        if verifier is not None:
            with step("verify", log, keep):
                outcome = verifier(image_id)
                if not outcome.passed:
                    raise VerificationError(
                        f"the new image failed verification; {plan.output_ref} was left as it"
                        f" was\n{outcome.summary()}"
                    )
        with step("tag", log, keep):
            previous = buildah.image_id(plan.output_ref)
            buildah.tag(image_id, plan.output_ref)
    except BaseException:
        discard_if_unnamed(buildah, image_id)
        raise
    if previous != image_id and discard_if_unnamed(buildah, previous):
        log(f"    removed the image {plan.output_ref} pointed to before ({previous[:12]})")
    return BuildResult(
        image_ref=plan.output_ref,
        image_id=image_id,
        rock_version=version,
        files_added=files,
        bytes_added=size,
        builder_reused=reused,
        verification=outcome,
    )
