"""The registry unit cache in the pipeline, with fake buildah and skopeo: what is looked up,
pulled and pushed, in which order, and that a cache problem never fails a build."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from qjson_tasks.build import pipeline
from qjson_tasks.build.labels import SBOM_LABEL, UNIT_NAME_LABEL
from qjson_tasks.build.names import UNIT_REPOSITORY
from qjson_tasks.build.pipeline import BuildOptions, BuildResult
from qjson_tasks.build.session import Session
from qjson_tasks.build.unitcache import UnitCache
from qjson_tasks.config.load import find_target
from qjson_tasks.config.model import Target
from qjson_tasks.errors import StepError, ToolError
from qjson_tasks.host.buildah import Buildah
from qjson_tasks.host.registry import RemoteAccess
from qjson_tasks.host.skopeo import RemoteImage
from tests.unit.build.test_pipeline import OUTPUT, Outcome, make_runner
from tests.unit.build.test_pipeline import mount_root as mount_root
from tests.unit.fakes import FakeRunner, is_call

REPOSITORY = "registry.example:5000/ci/qjson"


@dataclass
class FakeRegistry:
    """What the pushes put there: ref -> (image ID on the pushing runner, labels)."""

    held: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    unreachable: bool = False
    lookups: list[str] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)  # image ref -> ID, for image_id

    def image_id(self, ref: str, access: RemoteAccess) -> str | None:
        self.lookups.append(ref)
        return self.ids.get(ref)

    def inspect(self, ref: str, access: RemoteAccess) -> RemoteImage | None:
        self.lookups.append(ref)
        if self.unreachable:
            raise ToolError(
                "skopeo failed", "Error: pinging container registry: connection refused"
            )
        found = self.held.get(ref)
        return RemoteImage(f"sha256:{found[0]}", found[1]) if found else None

    def record_pushes(self, runner: FakeRunner) -> None:
        for call in runner.calls:
            if is_call("buildah", "push")(call):
                source, destination = call[-2], call[-1].removeprefix("docker://")
                image_id = runner.images.get(source, source)
                self.held[destination] = (image_id, dict(runner.image_labels.get(image_id, {})))

    def serve_to(self, runner: FakeRunner, other: FakeRunner) -> None:
        """Let runner pull what is held, with the IDs and labels the pusher had."""
        for ref, (image_id, labels) in self.held.items():
            runner.pulled_ids[f"docker://{ref}"] = image_id
            runner.pulled_ids[f"docker://{pinned(ref, image_id)}"] = image_id
            runner.image_labels[image_id] = labels


def pinned(ref: str, image_id: str) -> str:
    """ref by the digest FakeRegistry.inspect gives it (the unit cache pulls that)."""
    return f"{ref.rsplit(':', 1)[0]}@sha256:{image_id}"


@pytest.fixture
def target(project_dir: Path) -> Target:
    return find_target("offline", project_dir / "config")


def build(
    target: Target,
    runner: FakeRunner,
    registry: FakeRegistry,
    *,
    push: bool = True,
    passed: bool = True,
    log: Callable[[str], None] = lambda line: None,
    run_id: str = "r1",
    **options: Any,
) -> BuildResult:
    session = Session(target, Buildah(runner), runner, log, run_id)
    cache = UnitCache(REPOSITORY, RemoteAccess(tls_verify=False), push, registry, log)  # type: ignore[arg-type]
    verifier = lambda image_id: Outcome(passed)  # noqa: E731
    return pipeline.build(session, BuildOptions(verifier=verifier, cache=cache, **options))


def pushed(runner: FakeRunner) -> list[str]:
    return [c[-1] for c in runner.calls if is_call("buildah", "push")(c)]


def pulled(runner: FakeRunner) -> list[str]:
    return [c[-1] for c in runner.calls if is_call("buildah", "pull")(c)]


@pytest.fixture
def warm_registry(target: Target, mount_root: Path) -> tuple[FakeRegistry, FakeRunner, BuildResult]:
    """Runner A built everything and filled the cache."""
    registry = FakeRegistry()
    runner = make_runner(mount_root)
    result = build(target, runner, registry)
    registry.record_pushes(runner)
    return registry, runner, result


def test_a_build_pushes_every_unit_with_the_runtimes_documents(
    warm_registry: tuple[FakeRegistry, FakeRunner, BuildResult],
) -> None:
    registry, runner, result = warm_registry
    assert result.built == ("builder", "rock-tree", "runtime")
    assert result.pushed == ("builder", "rock-tree", "runtime")
    runtime = f"docker://{REPOSITORY}/unit-runtime:{result.units['runtime'].split('-', 1)[1]}"
    assert pushed(runner) == [
        f"docker://{REPOSITORY}/unit-builder:{result.units['builder'].split('-', 1)[1]}",
        f"docker://{REPOSITORY}/unit-rock-tree:{result.units['rock-tree'].split('-', 2)[2]}",
        f"{runtime}.sbom",
        f"{runtime}.att",
        runtime,
    ]
    # The cache's runtime is the verified output, labelled with its SBOM.
    assert registry.held[runtime.removeprefix("docker://")][0] == result.image_id
    for kind in ("builder", "rock-tree"):
        labels = next(v[1] for k, v in registry.held.items() if f"/unit-{kind}:" in k)
        assert labels[UNIT_NAME_LABEL] == result.units[kind]
    assert runner.left_behind() == (set(), set())


def fresh_runner(
    registry: FakeRegistry, pusher: FakeRunner, mount_root: Path, tmp_path: Path
) -> FakeRunner:
    """Runner B: only the runtime base image, on a machine with an empty SBOM store."""
    runner = make_runner(mount_root)
    registry.serve_to(runner, pusher)
    return runner


def test_a_cached_runtime_is_pulled_verified_and_tagged_and_nothing_else_is_fetched(
    warm_registry: tuple[FakeRegistry, FakeRunner, BuildResult],
    mount_root: Path,
    tmp_path: Path,
    sbom_dir: Path,
    target: Target,
) -> None:
    registry, pusher, first = warm_registry
    sbom = pusher.image_labels[first.image_id][SBOM_LABEL]
    document = (sbom_dir / f"{sbom}.cdx.json").read_bytes()
    for stored in sbom_dir.iterdir():  # runner B's store is empty: the SBOM comes along
        stored.unlink()
    (mount_root / "sbom.cdx.json").write_bytes(document)
    (mount_root / "provenance.intoto.json").write_text("{}")
    runner = fresh_runner(registry, pusher, mount_root, tmp_path)

    result = build(target, runner, registry)
    assert result.built == ()
    assert result.cached == ("runtime",)
    assert result.pushed == ()
    assert result.image_id == first.image_id
    assert result.verification is not None and result.verification.passed
    runtime = f"docker://{REPOSITORY}/unit-runtime:{first.units['runtime'].split('-', 1)[1]}"
    by_digest = f"docker://{pinned(runtime.removeprefix('docker://'), first.image_id)}"
    assert pulled(runner) == [by_digest, f"{runtime}.sbom", f"{runtime}.att"]
    assert (sbom_dir / f"{sbom}.cdx.json").read_bytes() == document
    assert runner.images[OUTPUT] == first.image_id
    assert not any(name.startswith("registry.example") for name in runner.images)
    assert not any("/unverified:" in name for name in runner.images)
    assert not any(is_call("buildah", "run")(c) for c in runner.calls)
    assert runner.left_behind() == (set(), set())


def without(registry: FakeRegistry, kind: str) -> None:
    for ref in [r for r in registry.held if f"/unit-{kind}:" in r]:
        del registry.held[ref]


def test_a_cached_rock_tree_means_the_builder_is_neither_pulled_nor_built(
    warm_registry: tuple[FakeRegistry, FakeRunner, BuildResult],
    mount_root: Path,
    tmp_path: Path,
    target: Target,
) -> None:
    registry, pusher, first = warm_registry
    without(registry, "runtime")
    runner = fresh_runner(registry, pusher, mount_root, tmp_path)

    result = build(target, runner, registry)
    assert result.cached == ("rock-tree",)
    assert result.built == ("runtime",)
    assert result.pushed == ("runtime",)  # the cache lacked it; nothing else is local here
    tree_ref = f"{REPOSITORY}/unit-rock-tree:{first.units['rock-tree'].split('-', 2)[2]}"
    assert [p for p in pulled(runner) if "/unit-" in p] == [
        f"docker://{pinned(tree_ref, registry.held[tree_ref][0])}"
    ]
    assert not any(is_call("buildah", "run")(c) for c in runner.calls)  # no builder setup
    assert not any("/builder:" in name for name in runner.images)


def test_a_cached_builder_is_pulled_when_only_it_is_there(
    warm_registry: tuple[FakeRegistry, FakeRunner, BuildResult],
    mount_root: Path,
    tmp_path: Path,
    target: Target,
) -> None:
    registry, pusher, _ = warm_registry
    without(registry, "runtime")
    without(registry, "rock-tree")
    runner = fresh_runner(registry, pusher, mount_root, tmp_path)
    result = build(target, runner, registry, push=False)
    assert result.cached == ("builder",)
    assert result.built == ("rock-tree", "runtime")
    assert result.pushed == ()  # --no-cache-push
    assert pushed(runner) == []


def test_a_unit_labelled_as_another_is_ignored_with_a_warning(
    warm_registry: tuple[FakeRegistry, FakeRunner, BuildResult],
    mount_root: Path,
    tmp_path: Path,
    target: Target,
) -> None:
    registry, pusher, _ = warm_registry
    without(registry, "runtime")
    tree_ref = next(r for r in registry.held if "/unit-rock-tree:" in r)
    image_id, labels = registry.held[tree_ref]
    registry.held[tree_ref] = (image_id, {**labels, UNIT_NAME_LABEL: "rock-tree-0000"})
    runner = fresh_runner(registry, pusher, mount_root, tmp_path)
    lines: list[str] = []

    result = build(target, runner, registry, log=lines.append)
    warnings = [line for line in lines if line.startswith("WARNING")]
    assert len(warnings) == 1 and tree_ref in warnings[0] and "ignored" in warnings[0], lines
    assert result.cached == ("builder",)
    assert "rock-tree" in result.built
    assert tree_ref not in [p.removeprefix("docker://") for p in pulled(runner)]


def test_an_unreachable_cache_is_one_warning_and_a_local_build(
    target: Target,
    mount_root: Path,
) -> None:
    registry = FakeRegistry(unreachable=True)
    runner = make_runner(mount_root)
    lines: list[str] = []
    result = build(target, runner, registry, log=lines.append)
    assert result.built == ("builder", "rock-tree", "runtime")
    assert result.cached == result.pushed == ()
    warnings = [line for line in lines if line.startswith("WARNING")]
    assert warnings == [
        "WARNING unit cache: looking up"
        f" {REPOSITORY}/unit-runtime:{result.units['runtime'].split('-', 1)[1]} failed:"
        " registry registry.example:5000 is unreachable (connection refused); going on"
        " without the cache"
    ]
    assert len(registry.lookups) == 1  # asked once, then left alone
    assert pushed(runner) == []


def test_a_failed_verification_pushes_nothing(
    target: Target,
    mount_root: Path,
) -> None:
    registry = FakeRegistry()
    runner = make_runner(mount_root)
    with pytest.raises(Exception, match="failed verification"):
        build(target, runner, registry, passed=False)
    assert pushed(runner) == []


def test_a_failed_push_is_a_warning_and_the_build_stands(
    target: Target,
    mount_root: Path,
) -> None:
    registry = FakeRegistry()
    runner = make_runner(mount_root, fail_on=is_call("buildah", "push"))
    lines: list[str] = []
    result = build(target, runner, registry, log=lines.append)
    assert runner.images[OUTPUT] == result.image_id
    assert result.pushed == ()
    assert len([line for line in lines if line.startswith("WARNING unit cache: pushing")]) == 1
    assert len(pushed(runner)) == 1  # the first failure ends the pushing
    assert runner.left_behind() == (set(), set())


def test_a_push_that_did_not_go_through_is_made_by_the_next_run_where_nothing_changed(
    target: Target,
    mount_root: Path,
    pending_pushes: Path,
) -> None:
    registry = FakeRegistry()
    runner = make_runner(mount_root, fail_on=is_call("buildah", "push"))
    first = build(target, runner, registry)
    assert first.pushed == ()
    assert len(list(pending_pushes.iterdir())) == 3  # every unit still owed

    runner.fail_on = None
    runner.calls.clear()
    again = build(target, runner, registry, run_id="r2")
    assert again.built == ()
    assert again.pushed == ("builder", "rock-tree", "runtime")
    assert list(pending_pushes.iterdir()) == []
    registry.record_pushes(runner)
    runner.calls.clear()
    third = build(target, runner, registry, run_id="r3")  # nothing owed: no registry at all
    assert third.pushed == () and pushed(runner) == []
    assert len(registry.lookups) == 6  # three in each of the first two runs, none in the third


BUILDER = "registry.example:5000/images/rust:1-bookworm"


@pytest.fixture
def rust_target(target: Target) -> Target:
    """A target whose builder image is not its runtime base, as apisix's is."""
    from qjson_tasks.config.load import Overrides, apply_overrides

    return apply_overrides(target, Overrides(builder_image=BUILDER))


def test_a_builder_image_that_is_not_here_is_planned_by_its_registry_id_and_never_pulled(
    rust_target: Target, mount_root: Path
) -> None:
    registry = FakeRegistry(ids={BUILDER: "b" * 64})
    pusher = make_runner(mount_root)
    pusher.images[BUILDER] = "b" * 64
    first = build(rust_target, pusher, registry)
    registry.record_pushes(pusher)
    assert not any(BUILDER in call for call in pulled(pusher))  # it was local there

    runner = make_runner(mount_root)  # runner B: the base image only
    registry.serve_to(runner, pusher)
    lines: list[str] = []
    result = build(rust_target, runner, registry, log=lines.append)
    assert result.cached == ("runtime",) and result.image_id == first.image_id
    assert BUILDER not in pulled(runner)
    assert f"    {BUILDER} is not here: its ID bbbbbbbbbbbb, from its registry" in lines
    looked_up = registry.lookups.count(BUILDER)
    build(rust_target, runner, registry, run_id="r2")  # nothing changed: no registry asked
    assert registry.lookups.count(BUILDER) == looked_up


def test_a_builder_image_planned_remotely_is_pulled_when_the_builder_must_be_built(
    rust_target: Target, mount_root: Path
) -> None:
    registry = FakeRegistry(ids={BUILDER: "b" * 64})
    runner = make_runner(mount_root, pulled_ids={BUILDER: "b" * 64})
    result = build(rust_target, runner, registry)
    assert result.built == ("builder", "rock-tree", "runtime")
    assert pulled(runner) == [BUILDER]


def test_a_builder_tag_that_moved_since_the_plan_stops_before_the_builder_is_made(
    rust_target: Target, mount_root: Path
) -> None:
    registry = FakeRegistry(ids={BUILDER: "b" * 64})
    runner = make_runner(mount_root, pulled_ids={BUILDER: "c" * 64})
    with pytest.raises(StepError, match="is image cccccccccccc now, not the bbbbbbbbbbbb"):
        build(rust_target, runner, registry)
    assert not any(is_call("buildah", "run")(c) for c in runner.calls)
    assert runner.left_behind() == (set(), set())


def test_the_plan_counts_a_missing_builder_image_by_its_registry_id(
    rust_target: Target, mount_root: Path
) -> None:
    from qjson_tasks.app.tools import Tools
    from qjson_tasks.app.units import cached_units, current_plan
    from qjson_tasks.app.verify import verify_digest

    registry = FakeRegistry(ids={BUILDER: "b" * 64})
    pusher = make_runner(mount_root)
    pusher.images[BUILDER] = "b" * 64
    build(rust_target, pusher, registry, verify_digest=verify_digest(rust_target))  # as the app
    registry.record_pushes(pusher)

    runner = make_runner(mount_root)
    cache = UnitCache(REPOSITORY, RemoteAccess(False), True, registry, lambda line: None)  # type: ignore[arg-type]
    tools = Tools(runner, Buildah(runner))
    assert not current_plan(rust_target, tools).resolved  # without the cache: provisional
    plan = current_plan(rust_target, tools, cache)
    assert plan.resolved and plan.builder_id == "b" * 64
    assert cached_units(cache, plan, set()) == ["builder", "rock-tree", "runtime"]
    assert not any(is_call("buildah", "pull")(c) for c in runner.calls)


def test_a_lookup_the_registry_refuses_counts_as_absent_and_the_push_is_still_tried(
    target: Target, mount_root: Path
) -> None:
    """Docker Hub answers `denied` for a repository that does not exist yet."""

    class Refusing(FakeRegistry):
        def inspect(self, ref: str, access: RemoteAccess) -> RemoteImage | None:
            self.lookups.append(ref)
            raise ToolError("skopeo failed", "Error: requested access to the resource is denied")

    registry = Refusing()
    runner = make_runner(mount_root)
    lines: list[str] = []
    result = build(target, runner, registry, log=lines.append)
    assert result.pushed == ("builder", "rock-tree", "runtime")
    warnings = [line for line in lines if line.startswith("WARNING")]
    assert warnings and all("counted as not in the cache" in w for w in warnings), warnings


def test_a_cached_runtime_whose_sbom_is_not_the_one_it_names_is_built_here(
    warm_registry: tuple[FakeRegistry, FakeRunner, BuildResult],
    mount_root: Path,
    sbom_dir: Path,
    target: Target,
) -> None:
    registry, pusher, _ = warm_registry
    for stored in sbom_dir.iterdir():
        stored.unlink()
    (mount_root / "sbom.cdx.json").write_text('{"not": "it"}')
    runner = make_runner(mount_root)
    registry.serve_to(runner, pusher)
    lines: list[str] = []
    result = build(target, runner, registry, log=lines.append)
    assert any("is not the SBOM the image names" in line for line in lines), lines
    assert result.cached == ("rock-tree",)  # the runtime is made here from the cached tree
    assert result.built == ("runtime",)
    assert not any("/unverified:" in name for name in runner.images)
    assert runner.left_behind() == (set(), set())


def test_an_owed_push_of_a_unit_that_is_gone_is_forgotten(
    target: Target, mount_root: Path, pending_pushes: Path
) -> None:
    registry = FakeRegistry()
    runner = make_runner(mount_root, fail_on=is_call("buildah", "push"))
    first = build(target, runner, registry)
    builder = f"{UNIT_REPOSITORY}/builder:{first.units['builder'].split('-', 1)[1]}"
    del runner.images[builder]  # removed meanwhile (invoke clean): nothing left to push
    runner.fail_on = None
    build(target, runner, registry, run_id="r2")
    assert list(pending_pushes.iterdir()) == []
