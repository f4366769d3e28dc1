"""Hashed units for real: skipped when built, rebuilt exactly where an input changed, and the
same inputs give the same image ID."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from qjson_tasks import usecases
from qjson_tasks.buildah import Buildah
from qjson_tasks.config import Target
from qjson_tasks.pipeline import BuildResult, image_index
from qjson_tasks.plan import UNIT_REPOSITORY
from tests.conftest import PROJECT_DIR
from tests.integration.conftest import DEMO_ROCK, changed_demo_rock, retarget


def unit_image(result: BuildResult, kind: str) -> str:
    return f"{UNIT_REPOSITORY}/{kind}:{result.units[kind].removeprefix(kind + '-')}"


def test_a_second_build_skips_every_unit(
    built: BuildResult, offline_target: Target, tools: usecases.Tools
) -> None:
    again = usecases.run_build(offline_target, tools)
    assert again.built == ()
    assert again.image_id == built.image_id
    assert again.units == built.units
    assert tools.buildah.image_id(built.image_ref) == built.image_id


@pytest.fixture
def changed_rock(tmp_path: Path, offline_target: Target) -> Target:
    """The offline target building a copy of the demo rock with one more line of Rust."""
    copy = changed_demo_rock(tmp_path, "changed")
    config = offline_target.config
    rock = config.rock.model_copy(update={"source": str(copy)})
    changed = Target("offline", offline_target.path, config.model_copy(update={"rocks": (rock,)}))
    return retarget(changed, "changed-rock")


@pytest.fixture
def forget_units(buildah: Buildah) -> Iterator[list[str]]:
    """Unit images a test made for inputs nobody else uses; removed afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        buildah.rmi_quietly(name)


def test_a_rock_change_rebuilds_only_the_rock_tree_and_the_runtime(
    built: BuildResult,
    changed_rock: Target,
    tools: usecases.Tools,
    forget_units: list[str],
) -> None:
    result = usecases.run_build(changed_rock, tools)
    forget_units += [unit_image(result, "rock-tree"), unit_image(result, "runtime")]

    assert result.built == ("rock-tree", "runtime")
    assert result.units["builder"] == built.units["builder"]
    assert result.units["rock-tree"] != built.units["rock-tree"]
    assert result.verification is not None and result.verification.passed


def test_the_same_inputs_give_the_same_image_id(
    built: BuildResult, changed_rock: Target, tools: usecases.Tools, forget_units: list[str]
) -> None:
    first = usecases.run_build(changed_rock, tools)
    forget_units += [unit_image(first, "rock-tree"), unit_image(first, "runtime")]
    # Forget the rock tree and the runtime: cargo builds again, buildah commits again.
    for name in forget_units:
        tools.buildah.rmi(name)

    second = usecases.run_build(changed_rock, tools)
    assert second.built == ("rock-tree", "runtime")
    assert second.image_id == first.image_id


def test_clean_removes_units_no_target_uses_and_keeps_the_rest(
    built: BuildResult,
    changed_rock: Target,
    tools: usecases.Tools,
    tmp_path: Path,
    forget_units: list[str],
) -> None:
    result = usecases.run_build(changed_rock, tools)
    orphans = [unit_image(result, "rock-tree"), unit_image(result, "runtime")]
    forget_units += orphans
    configs = tmp_path / "config"
    configs.mkdir()
    text = (PROJECT_DIR / "config" / "offline.toml").read_text()
    relative = 'source = "../rocks/qjson-demo"'
    assert relative in text
    (configs / "offline.toml").write_text(text.replace(relative, f'source = "{DEMO_ROCK}"'))

    removed = usecases.clean_units(tools, everything=False, config_dir=configs)

    assert set(orphans) <= set(removed)
    names = image_index(tools.buildah)
    for kind in ("builder", "rock-tree", "runtime"):
        assert unit_image(built, kind) in names
    # The output image keeps its name; only the unit name went.
    assert names[result.image_ref].image_id == result.image_id
