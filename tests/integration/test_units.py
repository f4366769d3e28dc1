"""Hashed units for real: skipped when built, rebuilt exactly where an input changed, and the
same inputs give the same image ID."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from qjson_tasks.app.build import run_build
from qjson_tasks.app.tools import Tools
from qjson_tasks.app.units import clean_units
from qjson_tasks.build.images import image_index
from qjson_tasks.build.names import UNIT_REPOSITORY
from qjson_tasks.build.pipeline import BuildResult
from qjson_tasks.config.model import Target
from qjson_tasks.host.buildah import Buildah
from tests.conftest import PROJECT_DIR
from tests.integration.conftest import DEMO_ROCK, changed_demo_rock, retarget


def unit_image(result: BuildResult, kind: str) -> str:
    return f"{UNIT_REPOSITORY}/{kind}:{result.units[kind].removeprefix(kind + '-')}"


def rock_units(result: BuildResult) -> list[str]:
    """The unit images a rock change makes: its rock tree and runtime."""
    return [unit_image(result, "rock-tree"), unit_image(result, "runtime")]


def test_a_second_build_skips_every_unit(
    built: BuildResult, offline_target: Target, tools: Tools
) -> None:
    again = run_build(offline_target, tools)
    assert again.built == ()
    assert again.image_id == built.image_id
    assert again.units == built.units
    assert tools.buildah.image_id(built.image_ref) == built.image_id


def building(offline_target: Target, rock_dir: Path, name: str) -> Target:
    """The offline target building the rock in rock_dir, into outputs of its own."""
    config = offline_target.config
    rock = config.rock.model_copy(update={"source": str(rock_dir)})
    changed = Target("offline", offline_target.path, config.model_copy(update={"rocks": (rock,)}))
    return retarget(changed, name)


@pytest.fixture
def changed_rock(tmp_path: Path, offline_target: Target) -> Target:
    """The offline target building a copy of the demo rock with one more line of Rust."""
    return building(offline_target, changed_demo_rock(tmp_path, "changed"), "changed-rock")


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
    tools: Tools,
    forget_units: list[str],
) -> None:
    result = run_build(changed_rock, tools)
    forget_units += rock_units(result)

    assert result.built == ("rock-tree", "runtime")
    assert result.units["builder"] == built.units["builder"]
    assert result.units["rock-tree"] != built.units["rock-tree"]
    assert result.verification is not None and result.verification.passed


@pytest.fixture
def offline_only(tmp_path: Path) -> Path:
    """A config directory whose only target is the offline one: `invoke clean` with it
    counts every unit of another rock as unused."""
    configs = tmp_path / "config"
    configs.mkdir()
    text = (PROJECT_DIR / "config" / "offline.toml").read_text()
    relative = 'source = "../rocks/qjson-demo"'
    assert relative in text
    (configs / "offline.toml").write_text(text.replace(relative, f'source = "{DEMO_ROCK}"'))
    return configs


def test_the_same_inputs_give_the_same_image_id_again_after_invoke_clean(
    built: BuildResult,
    changed_rock: Target,
    tools: Tools,
    forget_units: list[str],
    offline_only: Path,
) -> None:
    first = run_build(changed_rock, tools)
    units = rock_units(first)
    forget_units += units
    assert run_build(changed_rock, tools).image_id == first.image_id
    # `invoke clean` forgets the rock tree and the runtime: cargo builds again, buildah
    # commits again.
    assert set(units) <= set(clean_units(tools, False, config_dir=offline_only))

    second = run_build(changed_rock, tools)
    assert second.built == ("rock-tree", "runtime")
    assert second.image_id == first.image_id


def test_clean_removes_units_no_target_uses_and_keeps_the_rest(
    built: BuildResult,
    changed_rock: Target,
    tools: Tools,
    forget_units: list[str],
    offline_only: Path,
) -> None:
    result = run_build(changed_rock, tools)
    orphans = rock_units(result)
    forget_units += orphans

    removed = clean_units(tools, everything=False, config_dir=offline_only)

    assert set(orphans) <= set(removed)
    names = image_index(tools.buildah)
    for kind in ("builder", "rock-tree", "runtime"):
        assert unit_image(built, kind) in names
    # The output image keeps its name; only the unit name went.
    assert names[result.image_ref].image_id == result.image_id


# Appends a line to a file in cargo's registry directory before building, and installs a
# copy of that file: what the next build of the rock saw there shows in its tree.
COUNTING_BUILD = (
    'build_command = [[home="${CARGO_HOME:-$HOME/.cargo}"; mkdir -p "$home/registry";'
    ' echo "$$" >> "$home/registry/qjt-builds"; cargo build --release --offline]],'
)
COUNTING_INSTALL = (
    'cp "${CARGO_HOME:-$HOME/.cargo}/registry/qjt-builds" "$(LUADIR)/qjt-builds.txt";\n'
)


def builds_seen(buildah: Buildah, result: BuildResult, tree: str) -> list[str]:
    unit = unit_image(result, "rock-tree")
    with buildah.container(unit, "qjt-test-registry") as ctr, buildah.mounted(ctr) as root:
        text = (root / tree.lstrip("/") / "share/lua/5.1/qjt-builds.txt").read_text()
    return text.split()


def test_cargo_downloads_survive_between_rock_builds(
    tmp_path: Path,
    offline_target: Target,
    tools: Tools,
    forget_units: list[str],
) -> None:
    rock = changed_demo_rock(tmp_path, "registry")
    spec = next((rock / "rockspec").glob("*.rockspec"))
    text = spec.read_text()
    plain = 'build_command = "cargo build --release --offline",'
    install = "    install_command = [[\n"
    assert plain in text and install in text
    text = text.replace(plain, COUNTING_BUILD)
    spec.write_text(text.replace(install, install + COUNTING_INSTALL))
    counting = building(offline_target, rock, "cargo-registry")
    tree = offline_target.config.staging.tree

    # Unverified, a runtime image gets only the output name, no unit name.
    first = run_build(counting, tools, verify=False)
    forget_units.append(unit_image(first, "rock-tree"))
    lib = rock / "src" / "lib.rs"
    lib.write_text(lib.read_text() + "\npub const QJT_REGISTRY_AGAIN: u32 = 2;\n")
    second = run_build(counting, tools, verify=False)
    forget_units.append(unit_image(second, "rock-tree"))

    assert second.built == ("rock-tree", "runtime")
    seen_first = builds_seen(tools.buildah, first, tree)
    seen_second = builds_seen(tools.buildah, second, tree)
    # The second build found everything the first left there, plus its own line.
    assert seen_second[:-1] == seen_first and len(seen_second) == len(seen_first) + 1
