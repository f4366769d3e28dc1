"""build(session, options) -> BuildResult: the builder/runtime split, unit by unit.

Every working container and mount is scoped, so a failing or interrupted step leaves none
behind; the runtime image is committed under the run's temporary name only and gets the
target's tag once it passed verification, so a failed build never replaces the image users
deploy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from qjson_tasks.build.builder import plan_session, prepare_builder
from qjson_tasks.build.images import (
    ImageIndex,
    discard_if_unnamed,
    image_facts,
    image_labels,
    labels_by_id,
)
from qjson_tasks.build.inputs import plan_inputs
from qjson_tasks.build.labels import (
    SBOM_LABEL,
    TREE_BYTES_LABEL,
    TREE_FILES_LABEL,
    UNIT_NAME_LABEL,
    VERSION_LABEL,
)
from qjson_tasks.build.plan import LABEL_PREFIX, ImageFacts, Unit
from qjson_tasks.build.rocktree import build_rock_tree
from qjson_tasks.build.session import BuildSession, Session
from qjson_tasks.config.lockfile import Lock
from qjson_tasks.errors import VerificationError
from qjson_tasks.host import locks

if TYPE_CHECKING:
    from qjson_tasks.build.unitcache import UnitCache


class VerifyOutcome(Protocol):
    passed: bool

    def summary(self) -> str: ...


Verifier = Callable[[str], VerifyOutcome]


@dataclass(frozen=True)
class BuildOptions:
    """What a build does beyond its target: verify (None: --no-verify), rebuild, the lock."""

    verifier: Verifier | None
    verify_digest: str = ""
    rebuild: bool = False
    warnings: Sequence[str] = ()
    lock: Lock | None = None
    vendor: Path | None = None
    cache: UnitCache | None = None


@dataclass(frozen=True)
class BuildResult:
    image_ref: str
    image_id: str
    rock_version: str
    files_added: int
    bytes_added: int
    units: dict[str, str] = field(default_factory=dict)
    built: tuple[str, ...] = ()
    cached: tuple[str, ...] = ()  # taken from the unit cache
    pushed: tuple[str, ...] = ()  # pushed to the unit cache
    verification: VerifyOutcome | None = None
    sbom: str = ""  # the stored SBOM's path, from the image's label


def build_runtime(session: BuildSession) -> str:
    """The runtime base plus the rock tree under the prefix, committed under the run's
    temporary name only."""
    from qjson_tasks.build.sbom import runtime_sbom, write_provenance  # not on warm runs

    plan, buildah = session.plan, session.buildah
    tree_labels = {
        key: value
        for key, value in image_labels(buildah, plan.rock_tree.image).items()
        if key.startswith(LABEL_PREFIX) and key != UNIT_NAME_LABEL
    }
    with ExitStack() as scope:
        with session.step("runtime container"):
            runtime = scope.enter_context(
                buildah.container(plan.base_id, plan.container_name("runtime"))
            )
        with session.step("copy tree"):
            buildah.copy(
                runtime, plan.tree, plan.prefix, chown="0:0", from_image=plan.rock_tree.image
            )
        with session.step("sbom"):
            labels = {**plan.labels, **plan.provenance_labels(), **tree_labels}
            sbom = runtime_sbom(session, labels)
            session.log(f"    wrote {sbom.path}")
        with session.step("label"):
            buildah.config(runtime, labels={**labels, **sbom.label})
        with session.step("commit"):
            image_id = buildah.commit(runtime, plan.temporary_ref, timestamp=plan.timestamp)
        with session.step("provenance"):
            session.log(f"    wrote {write_provenance(session, sbom, image_id)}")
        return image_id


def retag(session: BuildSession, image_id: str, extra: tuple[str, ...] = ()) -> None:
    """Point the output (and extra names) at image_id; drop what the output left unnamed."""
    plan, buildah = session.plan, session.buildah
    previous = buildah.image_id(plan.output_ref)
    if previous == image_id and not extra:
        return
    buildah.tag(image_id, plan.output_ref, *extra)
    if previous and previous != image_id and discard_if_unnamed(buildah, previous):
        session.log(f"    removed the image {plan.output_ref} pointed to before ({previous[:12]})")


def finish(session: BuildSession, image_id: str, verifier: Verifier | None) -> VerifyOutcome | None:
    """Verify the new image, then tag it (the caller removes its temporary name)."""
    plan = session.plan
    outcome = None
    if verifier is not None:
        with session.step("verify"):
            outcome = verifier(image_id)
            if not outcome.passed:
                raise VerificationError(
                    f"the new image failed verification; {plan.output_ref} was left as it"
                    f" was\n{outcome.summary()}"
                )
    # Only a verified image becomes the runtime unit; unverified, it gets the output tag.
    unit_tag = (plan.runtime.image,) if verifier is not None else ()
    with session.step("tag"):
        retag(session, image_id, unit_tag)
    return outcome


def _present(session: BuildSession, unit: Unit, index: ImageIndex, rebuild: bool) -> str | None:
    """The unit image's ID when it exists; asked again (under the lock) when the listing
    taken at the start lacks it, since another run may have built it meanwhile."""
    if rebuild or not session.plan.reusable(unit):
        return None
    found = image_facts(session.buildah, unit.image, index)
    if found:
        session.log(f"    {unit.name}: up to date")
    return found.image_id if found else None


def _take(session: BuildSession, options: BuildOptions, unit: Unit, local: str) -> str | None:
    """The unit pulled from the registry cache under the local name, if it has it."""
    cache = options.cache
    if cache is None or options.rebuild or not session.plan.reusable(unit):
        return None
    return cache.take(session, unit, local)


@dataclass
class Made:
    """What a build made here and what it took from the unit cache, by unit kind."""

    built: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)


def _rock_tree(session: BuildSession, options: BuildOptions, index: ImageIndex, made: Made) -> None:
    """The rock-tree unit: local, else from the cache, else built (with the builder unit
    local, from the cache, or built)."""
    plan = session.plan
    if _present(session, plan.rock_tree, index, options.rebuild):
        return
    if _take(session, options, plan.rock_tree, plan.rock_tree.image):
        made.cached.append(plan.rock_tree.kind)
        return
    with locks.hold(plan.builder.image, session.log):
        if not _present(session, plan.builder, index, options.rebuild):
            if _take(session, options, plan.builder, plan.builder.image):
                made.cached.append(plan.builder.kind)
            else:
                with session.step("builder setup"):
                    prepare_builder(session)
                made.built.append(plan.builder.kind)
    build_rock_tree(session, options.vendor)
    made.built.append(plan.rock_tree.kind)


def _build_units(
    session: BuildSession, options: BuildOptions, index: ImageIndex, made: Made
) -> tuple[str, VerifyOutcome | None]:
    """A runtime image from the cache or made from the rock tree (and builder), verified
    and tagged; returns its ID and the verification's outcome."""
    plan = session.plan
    try:
        image_id = _take(session, options, plan.runtime, plan.temporary_ref)
        if image_id:
            made.cached.append(plan.runtime.kind)
        else:
            with locks.hold(plan.rock_tree.image, session.log):
                _rock_tree(session, options, index, made)
            image_id = build_runtime(session)
            made.built.append(plan.runtime.kind)
        outcome = finish(session, image_id, options.verifier)
    finally:
        # Also after Ctrl-C between the commit and the tag: untag the temporary name,
        # which deletes the image when verification or tagging never named it.
        if session.buildah.image_id(plan.temporary_ref):
            session.buildah.rmi_quietly(plan.temporary_ref)
    return image_id, outcome


def _fill_cache(session: BuildSession, options: BuildOptions, verified: bool) -> tuple[str, ...]:
    """Push the plan's local units the cache lacks; the runtime only when it was verified."""
    plan, cache = session.plan, options.cache
    if cache is None or not cache.push or not plan.cacheable:
        return ()
    units = [unit for unit in plan.units if session.buildah.image_id(unit.image)]
    cache.settle(tuple(unit for unit in plan.units if unit not in units))  # nothing to push
    if not verified:
        units = [unit for unit in units if unit is not plan.runtime]
    with session.step("unit cache"):
        return tuple(cache.put(session, tuple(units)))


def sbom_path(labels: dict[str, str]) -> str:
    from qjson_tasks.sbom.store import stored_path

    sha256 = labels.get(SBOM_LABEL, "")
    return str(stored_path(sha256)) if sha256 else ""


def _as_int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


def build(session: Session, options: BuildOptions) -> BuildResult:
    # Bad input (a rock directory without a rockspec) must fail before anything is made.
    inputs = plan_inputs(
        session.target, None, None, options.verify_digest, options.lock, options.vendor
    )
    for warning in options.warnings:
        session.log(warning)
    remote = options.cache.remote_image if options.cache is not None else None
    planned, index = plan_session(session, inputs, remote)
    plan = planned.plan
    made = Made()
    outcome = None
    pushed: tuple[str, ...] = ()
    with locks.hold(plan.output_ref, session.log):
        image_id = _present(planned, plan.runtime, index, options.rebuild)
        if image_id is None:
            image_id, outcome = _build_units(planned, options, index, made)
            pushed = _fill_cache(planned, options, verified=outcome is not None)
        else:
            if index.get(plan.output_ref, ImageFacts("", "")).image_id != image_id:
                with planned.step("tag"):
                    retag(planned, image_id)
            if options.cache is not None and options.cache.pending(plan.units):
                pushed = _fill_cache(planned, options, verified=True)  # what a run owed
    labels = labels_by_id(session.buildah, image_id)
    return BuildResult(
        image_ref=plan.output_ref,
        image_id=image_id,
        rock_version=labels.get(VERSION_LABEL, ""),
        files_added=_as_int(labels.get(TREE_FILES_LABEL)),
        bytes_added=_as_int(labels.get(TREE_BYTES_LABEL)),
        units={unit.kind: unit.name for unit in plan.units},
        built=tuple(made.built),
        cached=tuple(made.cached),
        pushed=pushed,
        verification=outcome,
        sbom=sbom_path(labels),
    )
