"""The builder unit: the plan once the base and builder images are local, making the
builder unit, and working containers of it (the rock install's, `invoke vendor`'s)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from qjson_tasks.build.images import ImageIndex, commit_unit, ensure_image, image_facts, image_index
from qjson_tasks.build.inputs import plan_inputs
from qjson_tasks.build.labels import UNIT_NAME_LABEL
from qjson_tasks.build.plan import ImageFacts, PlanInputs, make_plan
from qjson_tasks.build.session import BuildSession, Session
from qjson_tasks.build.steps import VENDOR_DIR
from qjson_tasks.errors import ToolError
from qjson_tasks.host import locks

# A missing image's facts as its registry gives them (UnitCache.remote_image), or None.
RemoteImages = Callable[[str], ImageFacts | None]

# Builder steps write / and install packages: root, whatever USER the builder image sets.
BUILD_USER = "0:0"


def plan_session(
    session: Session, inputs: PlanInputs, remote: RemoteImages | None = None
) -> tuple[BuildSession, ImageIndex]:
    """The session with its plan, once the base and builder images are local (made or
    pulled if missing); and the image listing taken first. With remote (a unit cache), a
    missing builder image is first looked up in its registry: its ID is enough to plan, and
    prepare_builder pulls it only if a builder unit must be built here."""
    config = session.target.config
    index = image_index(session.buildah)
    with session.step("base image"):
        base = ensure_image(session, config.runtime.base_image, index)
    with session.step("builder image"):
        builder = image_facts(session.buildah, config.builder.image, index)
        if builder is None and remote is not None and not inputs.platform:
            builder = remote(config.builder.image)
        if builder is None:
            builder = ensure_image(session, config.builder.image, index)
    inputs = replace(inputs, base=base, builder=builder)
    plan = make_plan(session.target, inputs, run_id=session.run_id)
    session.log("    units: " + ", ".join(unit.name for unit in plan.units))
    return session.planned(plan), index


def prepare_builder(session: BuildSession) -> None:
    """Run the package installs and setup in a container of the builder image; commit it
    as the builder unit."""
    plan, buildah = session.plan, session.buildah
    if buildah.image_id(plan.builder_id) is None:  # planned by its registry's ID only
        session.log(f"    pulling {plan.builder_image}")
        pulled = buildah.pull(plan.builder_image)
        if pulled != plan.builder_id:
            raise ToolError(
                f"{plan.builder_image} is image {pulled[:12]} now, not the"
                f" {plan.builder_id[:12]} its registry gave when this run began: run again"
            )
    with buildah.container(plan.builder_id, plan.container_name("setup")) as ctr:
        for argv in plan.builder_setup:
            buildah.run(ctr, argv, env=plan.setup_env, user=BUILD_USER)
        buildah.config(ctr, labels={UNIT_NAME_LABEL: plan.builder.name})
        commit_unit(buildah, ctr, plan.builder, None)


@contextmanager
def builder_container(session: Session, role: str) -> Iterator[str]:
    """A working container of the target's builder unit (made first if missing)."""
    built, index = plan_session(session, plan_inputs(session.target, None, None, ""))
    plan = built.plan
    with locks.hold(plan.builder.image, session.log):
        if image_facts(session.buildah, plan.builder.image, index) is None:
            with session.step("builder setup"):
                prepare_builder(built)
    with session.buildah.container(plan.builder.image, plan.container_name(role)) as container:
        yield container


def write_vendor_manifest(session: Session, directory: Path) -> list[str]:
    """`luarocks-admin make-manifest` over the rock files in directory, run in the builder;
    the manifest files are written into directory. Returns their names."""
    buildah = session.buildah
    names = []
    with builder_container(session, "vendor") as ctr:
        buildah.copy(ctr, str(directory), VENDOR_DIR)
        admin = f"{session.target.config.builder.luarocks}-admin"
        buildah.run(ctr, (admin, "make-manifest", VENDOR_DIR), user=BUILD_USER)
        with buildah.mounted(ctr) as root:
            written = root / VENDOR_DIR.lstrip("/")
            for path in sorted(written.iterdir()):
                if path.name.startswith("manifest") or path.name == "index.html":
                    shutil.copyfile(path, directory / path.name)
                    names.append(path.name)
    return names
