"""Finding the rockspec of a local rock directory."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomli_w

from qjson_tasks.build.steps import LocalRock
from qjson_tasks.config.load import load_target, parse_target
from qjson_tasks.config.model import Target
from qjson_tasks.errors import ConfigError
from qjson_tasks.rocks.source import find_local_rock
from tests.conftest import PROJECT_DIR

DEMO_ROCK = PROJECT_DIR / "rocks" / "qjson-demo"


def make_target(
    tmp_path: Path, source: str | Path, name: str = "qjson-demo", version: str = "==0.1.0"
) -> Target:
    data = {
        "runtime": {"base_image": "docker.io/library/debian:bookworm", "luajit": "/usr/bin/luajit"},
        "builder": {"image": "docker.io/library/rust:1-bookworm"},
        "rock": {"name": name, "version": version, "source": str(source)},
        "output": {"image": "localhost/qjson-tasks/test"},
    }
    path = tmp_path / "target.toml"
    return Target("target", path, parse_target(tomli_w.dumps(data), path))


def rock_dir(tmp_path: Path, *rockspecs: str) -> Path:
    directory = tmp_path / "rock"
    directory.mkdir(exist_ok=True)
    for relative in rockspecs:
        spec = directory / relative
        spec.parent.mkdir(parents=True, exist_ok=True)
        spec.write_text('package = "x"\n')
    return directory


def error_of(target: Target) -> str:
    with pytest.raises(ConfigError) as info:
        find_local_rock(target)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{target.path}: rock.source: "), message
    return message


def test_rockspec_at_the_root(tmp_path: Path) -> None:
    directory = rock_dir(tmp_path, "qjson-demo-0.1.0-1.rockspec")
    assert find_local_rock(make_target(tmp_path, directory)) == LocalRock(
        directory=str(directory), rockspec="qjson-demo-0.1.0-1.rockspec", version="0.1.0-1"
    )


def test_rockspec_under_rockspec_dir(tmp_path: Path) -> None:
    directory = rock_dir(tmp_path, "rockspec/qjson-demo-0.1.0-1.rockspec")
    assert find_local_rock(make_target(tmp_path, directory)) == LocalRock(
        directory=str(directory),
        rockspec="rockspec/qjson-demo-0.1.0-1.rockspec",
        version="0.1.0-1",
    )


def test_no_rockspec(tmp_path: Path) -> None:
    directory = rock_dir(tmp_path, "elsewhere/qjson-demo-0.1.0-1.rockspec", "README.md")
    message = error_of(make_target(tmp_path, directory))
    assert f"no rockspec in '{directory}'" in message
    assert "looked at its root and rockspec/" in message


def test_source_is_not_a_directory(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    assert f"'{missing}' is not a directory" in error_of(make_target(tmp_path, missing))


def test_source_is_a_file(tmp_path: Path) -> None:
    spec = rock_dir(tmp_path, "qjson-demo-0.1.0-1.rockspec") / "qjson-demo-0.1.0-1.rockspec"
    assert "is not a directory" in error_of(make_target(tmp_path, spec))


@pytest.mark.parametrize(
    ("rockspecs", "listed"),
    [
        (
            ["qjson-demo-0.1.0-1.rockspec", "qjson-demo-0.1.0-2.rockspec"],
            "qjson-demo-0.1.0-1.rockspec, qjson-demo-0.1.0-2.rockspec",
        ),
        (
            ["qjson-demo-0.1.0-1.rockspec", "rockspec/qjson-demo-0.1.0-1.rockspec"],
            "qjson-demo-0.1.0-1.rockspec, rockspec/qjson-demo-0.1.0-1.rockspec",
        ),
    ],
    ids=["two-revisions", "root-and-rockspec-dir"],
)
def test_several_matching_rockspecs(tmp_path: Path, rockspecs: list[str], listed: str) -> None:
    directory = rock_dir(tmp_path, *rockspecs)
    message = error_of(make_target(tmp_path, directory))
    assert f"several rockspecs match in '{directory}' ({listed})" in message
    assert "pin rock.version" in message


def test_range_matching_several_versions(tmp_path: Path) -> None:
    directory = rock_dir(
        tmp_path, "rockspec/qjson-demo-0.1.0-1.rockspec", "rockspec/qjson-demo-0.2.0-1.rockspec"
    )
    message = error_of(make_target(tmp_path, directory, version=">=0.1"))
    assert "rockspec/qjson-demo-0.1.0-1.rockspec, rockspec/qjson-demo-0.2.0-1.rockspec" in message


@pytest.mark.parametrize(
    ("version", "chosen"),
    [("==0.2.0", "0.2.0-1"), ("<0.2", "0.1.0-1"), ("~> 0.2", "0.2.0-1"), ("0.1.0-1", "0.1.0-1")],
)
def test_requirement_picks_one_of_several(tmp_path: Path, version: str, chosen: str) -> None:
    directory = rock_dir(
        tmp_path,
        "rockspec/qjson-demo-0.1.0-1.rockspec",
        "rockspec/qjson-demo-0.2.0-1.rockspec",
        "rockspec/qjson-demo-scm-1.rockspec",
    )
    rock = find_local_rock(make_target(tmp_path, directory, version=version))
    assert rock is not None
    assert (rock.rockspec, rock.version) == (f"rockspec/qjson-demo-{chosen}.rockspec", chosen)


def test_rockspec_for_another_rock(tmp_path: Path) -> None:
    directory = rock_dir(tmp_path, "lua-cjson-2.1.0-1.rockspec", "rockspec/other-0.1.0-1.rockspec")
    message = error_of(make_target(tmp_path, directory))
    assert f"no rockspec for rock 'qjson-demo' in '{directory}'" in message
    assert "(lua-cjson-2.1.0-1.rockspec, other-0.1.0-1.rockspec)" in message


def test_rock_name_that_is_a_prefix_of_another(tmp_path: Path) -> None:
    directory = rock_dir(tmp_path, "qjson-demo-0.1.0-1.rockspec")
    message = error_of(make_target(tmp_path, directory, name="qjson"))
    assert "no rockspec for rock 'qjson'" in message


def test_version_not_satisfying_the_requirement(tmp_path: Path) -> None:
    directory = rock_dir(
        tmp_path, "rockspec/qjson-demo-0.2.0-1.rockspec", "rockspec/qjson-demo-0.3.0-1.rockspec"
    )
    message = error_of(make_target(tmp_path, directory, version="~> 0.1"))
    assert (
        f"'{directory}' has qjson-demo 0.2.0-1, 0.3.0-1, which does not satisfy"
        " rock.version '~> 0.1'"
    ) in message


@pytest.mark.parametrize("source", ["default", "https://rocks.example.org", "file:///srv/rocks"])
def test_server_sources_have_no_local_rock(tmp_path: Path, source: str) -> None:
    assert find_local_rock(make_target(tmp_path, source)) is None


def test_the_repo_demo_rock(tmp_path: Path) -> None:
    assert find_local_rock(make_target(tmp_path, DEMO_ROCK)) == LocalRock(
        directory=str(DEMO_ROCK),
        rockspec="rockspec/qjson-demo-0.1.0-1.rockspec",
        version="0.1.0-1",
    )


def test_the_offline_target_finds_the_demo_rock() -> None:
    rock = find_local_rock(load_target(PROJECT_DIR / "config" / "offline.toml"))
    assert rock is not None
    assert Path(rock.directory) == DEMO_ROCK
    assert (rock.rockspec, rock.version) == ("rockspec/qjson-demo-0.1.0-1.rockspec", "0.1.0-1")
