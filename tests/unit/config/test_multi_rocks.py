"""Several rocks per target: [[rocks]] or the [rock] shorthand, [luarocks] server, source
kinds, relative paths, and the one-line errors that name `rocks[1].version` or `rock.version`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import tomli_w

from qjson_tasks.config.load import (
    Overrides,
    apply_overrides,
    find_target,
    load_target,
    parse_target,
)
from qjson_tasks.config.model import Target
from qjson_tasks.errors import ConfigError
from tests.unit.rockfiles import BASE_CONFIG, PROJECT_DIR

A = {"name": "a", "version": "1.0"}
B = {"name": "b", "version": "~> 2"}
REQUIREMENT_FORMS = (
    "use a version ('1.2.3' or '1.2.3-1') optionally preceded by one of"
    " ==, ~=, <=, >=, ~>, <, >; several joined by ','"
)
SOURCE_FORMS = (
    "use 'default', an http(s):// or file:// server URL, a local directory with a rockspec,"
    " or a local .rock/.src.rock file"
)


def config_text(**sections: Any) -> str:
    return tomli_w.dumps({**BASE_CONFIG, **sections})


def load(tmp_path: Path, **sections: Any) -> Target:
    path = tmp_path / "cfg" / "t.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config_text(**sections), encoding="utf-8")
    return load_target(path)


def error(tmp_path: Path, **sections: Any) -> str:
    """The message for a config with these sections; checked to be one line naming the file."""
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, **sections)
    message = str(caught.value)
    path = tmp_path / "cfg" / "t.toml"
    assert "\n" not in message
    assert message.startswith(f"{path}: "), message
    return message.removeprefix(f"{path}: ")


# --- [[rocks]] and [rock] ----------------------------------------------------------------------


def test_a_rocks_list_keeps_its_order(tmp_path: Path) -> None:
    config = load(tmp_path, rocks=[B, A]).config
    assert [(r.name, r.version) for r in config.rocks] == [("b", "~> 2"), ("a", "1.0")]
    assert config.rock.name == "b"  # the first is the target's own rock


def test_rock_table_is_a_list_of_one(tmp_path: Path) -> None:
    short = load(tmp_path, rock=A).config
    listed = load(tmp_path, rocks=[A]).config
    assert short == listed
    assert [r.name for r in short.rocks] == ["a"]


def test_shipped_multi_target_has_two_rocks_and_a_local_server() -> None:
    config = find_target("multi", PROJECT_DIR / "config").config
    rocks = PROJECT_DIR / "rocks"
    assert [(r.name, r.where.kind) for r in config.rocks] == [
        ("qjson-demo", "directory"),
        ("cdemo", "file"),
    ]
    assert config.rocks[0].source == str(rocks / "qjson-demo")
    assert config.rocks[1].source == str(rocks / "cdemo" / "cdemo-1.0-1.src.rock")
    assert config.luarocks.server == str(rocks / "server")


def test_a_rock_listed_twice(tmp_path: Path) -> None:
    message = error(tmp_path, rocks=[A, B, {"name": "a", "version": "2.0"}])
    assert message == "rocks: 'a' is listed twice; list each rock once"


def test_rock_and_rocks_together(tmp_path: Path) -> None:
    message = error(tmp_path, rock=A, rocks=[B])
    assert message == "rock: give either [rock] or [[rocks]] entries, not both"


def test_an_empty_rocks_list(tmp_path: Path) -> None:
    message = error(tmp_path, rocks=[])
    assert message == "rocks: the list is empty; a target needs at least one rock"


def test_no_rock_at_all(tmp_path: Path) -> None:
    message = error(tmp_path)
    assert message == "rock: missing required field (add a [rock] table or [[rocks]] entries)"


def test_rock_as_a_list_of_tables(tmp_path: Path) -> None:
    # `[[rock]]` instead of `[[rocks]]`: the error names what the file has, not `rocks[0]`.
    message = error(tmp_path, rock=[A, B])
    assert message == "rock: must be one [rock] table; list several as [[rocks]]"


def test_rock_as_a_string(tmp_path: Path) -> None:
    assert error(tmp_path, rock="a") == "rock: must be one [rock] table; list several as [[rocks]]"


# --- where an error points --------------------------------------------------------------------


def test_bad_version_in_a_list_names_the_entry(tmp_path: Path) -> None:
    message = error(tmp_path, rocks=[A, {"name": "b", "version": "latest"}])
    assert (
        message == f"rocks[1].version: 'latest' is not a version requirement: {REQUIREMENT_FORMS}"
    )


def test_bad_version_in_a_list_of_one_names_the_entry(tmp_path: Path) -> None:
    message = error(tmp_path, rocks=[{"name": "b", "version": "latest"}])
    assert (
        message == f"rocks[0].version: 'latest' is not a version requirement: {REQUIREMENT_FORMS}"
    )


def test_bad_version_in_rock_names_rock(tmp_path: Path) -> None:
    message = error(tmp_path, rock={"name": "b", "version": "latest"})
    assert message == f"rock.version: 'latest' is not a version requirement: {REQUIREMENT_FORMS}"


def test_unknown_key_in_a_list_entry(tmp_path: Path) -> None:
    message = error(tmp_path, rocks=[A, {**B, "colour": "red"}])
    assert message == "rocks[1].colour: unknown key (allowed: name, smoke_script, source, version)"


def test_unknown_key_in_rock(tmp_path: Path) -> None:
    message = error(tmp_path, rock={**B, "colour": "red"})
    assert message == "rock.colour: unknown key (allowed: name, smoke_script, source, version)"


def test_missing_name_in_a_list_entry(tmp_path: Path) -> None:
    message = error(tmp_path, rocks=[A, {"version": "1.0"}])
    expected = "rocks[1].name: missing required field (add name = ... to that [[rocks]] entry)"
    assert message == expected


def test_missing_name_in_rock(tmp_path: Path) -> None:
    message = error(tmp_path, rock={"version": "1.0"})
    assert message == "rock.name: missing required field (add name = ... under [rock])"


def test_bad_name_in_a_list_entry(tmp_path: Path) -> None:
    message = error(tmp_path, rocks=[A, {"name": "b c", "version": "1.0"}])
    assert message == "rocks[1].name: 'b c' is not a rock name: letters, digits, '.', '_', '-'"


def test_bad_source_in_a_list_entry(tmp_path: Path) -> None:
    message = error(tmp_path, rocks=[A, {**B, "source": "ftp://rocks.example.org"}])
    assert (
        message
        == f"rocks[1].source: 'ftp://rocks.example.org' is not a rock source: {SOURCE_FORMS}"
    )


def test_the_rock_field_names_follow_the_file(tmp_path: Path) -> None:
    assert load(tmp_path, rock=A).config.rock_field(0, "source") == "rock.source"
    two = load(tmp_path, rocks=[A, B]).config
    assert two.rock_field(1, "source") == "rocks[1].source"


# --- [luarocks] server ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "server", ["https://rocks.example.org/", "http://127.0.0.1:8080/rocks", "file:///srv/rocks"]
)
def test_a_server_url_is_kept(tmp_path: Path, server: str) -> None:
    assert load(tmp_path, rock=A, luarocks={"server": server}).config.luarocks.server == server


def test_a_relative_server_directory_is_resolved_against_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load(tmp_path, rock=A, luarocks={"server": "../rocks/server"}).config
    assert config.luarocks.server == str((tmp_path / "rocks" / "server").resolve())


def test_no_server_means_luarocks_own(tmp_path: Path) -> None:
    assert load(tmp_path, rock=A).config.luarocks.server is None


def test_a_bad_server(tmp_path: Path) -> None:
    message = error(tmp_path, rock=A, luarocks={"server": "ftp://rocks.example.org"})
    assert message == (
        "luarocks.server: 'ftp://rocks.example.org' is not a rock server: use an http(s):// or"
        " file:// URL, or a local directory holding a luarocks manifest"
    )


def test_an_unknown_luarocks_key(tmp_path: Path) -> None:
    message = error(tmp_path, rock=A, luarocks={"mirror": "https://rocks.example.org"})
    assert message == "luarocks.mirror: unknown key (allowed: server)"


# --- source kinds and paths ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("default", "default"),
        ("https://rocks.example.org", "server"),
        ("http://127.0.0.1:8080/rocks", "server"),
        ("file:///srv/rocks", "server"),
        ("../rocks/demo", "directory"),
        ("/abs/rocks/demo", "directory"),
        ("../rocks/demo-1.0-1.src.rock", "file"),
        ("demo-1.0-1.linux-x86_64.rock", "file"),
    ],
)
def test_source_kinds(tmp_path: Path, source: str, kind: str) -> None:
    rock = load(tmp_path, rocks=[A, {**B, "source": source}]).config.rocks[1]
    assert rock.where.kind == kind


def test_a_source_left_out_is_default(tmp_path: Path) -> None:
    rock = load(tmp_path, rocks=[A]).config.rock
    assert (rock.source, rock.where.kind) == ("default", "default")


def test_local_sources_are_resolved_against_the_config_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    rocks = [
        {**A, "source": "../rocks/a"},
        {**B, "source": "b-2.0-1.src.rock"},
        {"name": "c", "version": "1", "source": "https://rocks.example.org"},
        {"name": "d", "version": "1"},
    ]
    config = load(tmp_path, rocks=rocks).config
    assert [r.source for r in config.rocks] == [
        str((tmp_path / "rocks" / "a").resolve()),
        str((tmp_path / "cfg" / "b-2.0-1.src.rock").resolve()),
        "https://rocks.example.org",
        "default",
    ]


def test_rock_source_flag_replaces_only_the_first_rock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = load(tmp_path, rocks=[A, {**B, "source": "b-2.0-1.src.rock"}])
    (tmp_path / "work" / "a").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "work")
    rocks = apply_overrides(target, Overrides(rock_source="a")).config.rocks
    assert [r.source for r in rocks] == [
        str((tmp_path / "work" / "a").resolve()),
        str((tmp_path / "cfg" / "b-2.0-1.src.rock").resolve()),
    ]


def test_parse_target_does_not_touch_paths() -> None:
    config = parse_target(config_text(rocks=[{**A, "source": "../x"}]), Path("cfg/t.toml"))
    assert config.rock.source == "../x"
