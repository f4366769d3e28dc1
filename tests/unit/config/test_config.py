"""Target configs: shipped files validate, every bad input gives one clear line."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from qjson_tasks import DEFAULT_TARGET
from qjson_tasks.app.targets import describe_targets, resolve_target
from qjson_tasks.app.tools import CONFIG_DIR
from qjson_tasks.config.load import (
    Overrides,
    apply_overrides,
    find_target,
    list_targets,
    load_target,
    parse_target,
)
from qjson_tasks.config.model import (
    Bootstrap,
    BuildahSettings,
    Builder,
    Output,
    Rock,
    Runtime,
    Staging,
    Target,
    TargetConfig,
    Verify,
)
from qjson_tasks.errors import ConfigError
from tests.unit.configs import (
    ABSOLUTE,
    DELETE,
    IMAGE_FORM,
    MINIMAL,
    OPERATORS,
    RUNTIME_KEYS,
    SOURCE_FORM,
    TOP_KEYS,
    mutated,
    write,
)

SHIPPED = sorted(CONFIG_DIR.glob("*.toml"))


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_target(path)
    return str(info.value)


def minimal_target(tmp_path: Path, *changes: tuple[str, Any]) -> Target:
    return load_target(write(tmp_path / "cfg" / "t.toml", mutated(*changes)))


# --- shipped configs ---------------------------------------------------------------------


def test_config_dir_ships_targets_including_the_default() -> None:
    assert SHIPPED, f"no *.toml in {CONFIG_DIR}"
    assert DEFAULT_TARGET in {p.stem for p in SHIPPED}
    assert list_targets(CONFIG_DIR) == SHIPPED


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_config_validates(path: Path) -> None:
    target = load_target(path)
    assert target.name == path.stem
    assert target.path == path
    assert isinstance(target.config, TargetConfig)
    assert find_target(path.stem, CONFIG_DIR) == target


def test_describe_targets_lists_every_shipped_config_as_valid() -> None:
    lines = describe_targets()
    assert len(lines) == len(SHIPPED)
    for path, line in zip(SHIPPED, lines, strict=True):
        assert line.startswith(f"{path.stem}"), line
        assert "INVALID" not in line, line
        assert "\n" not in line
    assert [line for line in lines if "(default)" in line] == [
        line for line in lines if line.startswith(f"{DEFAULT_TARGET} (default):")
    ]


def test_describe_targets_marks_a_broken_file_invalid(tmp_path: Path) -> None:
    write(tmp_path / "good.toml", mutated())
    write(tmp_path / "bad.toml", mutated(("runtime.luajit", "luajit")))
    bad, good = describe_targets(tmp_path)
    assert bad.startswith("bad: INVALID: ")
    assert "runtime.luajit" in bad
    assert good.startswith("good: (no description) [base docker.io/library/debian")


def test_offline_rock_source_is_resolved_against_the_config_dir() -> None:
    rock = load_target(CONFIG_DIR / "offline.toml").config.rock
    assert rock.where.kind == "directory"
    assert Path(rock.source) == (CONFIG_DIR.parent / "rocks" / "qjson-demo").resolve()


def test_minimal_config_gets_the_defaults(tmp_path: Path) -> None:
    config = minimal_target(tmp_path).config
    assert config.runtime.prefix == "/usr/local"
    assert config.runtime.user == "root"
    assert config.runtime.lua_version == "5.1"
    assert config.builder.package_manager == "apt"
    assert config.rock.source == "default"
    assert config.rock.where.kind == "default"
    assert config.staging.tree == "/qjson-rock"
    assert config.output.reference == "localhost/qjson-tasks/test:latest"
    assert config.buildah.isolation == "chroot"
    assert config.artifacts == config.default_artifacts()
    assert "lib/lua/5.1/qjson.so" in config.artifacts


# --- bad inputs ----------------------------------------------------------------------------


BAD_INPUTS = [
    pytest.param(
        '[runtime]\nbase_image = "debian"\nluajit = \n',
        ["invalid TOML", "line 3", "column 10"],
        id="toml-syntax",
    ),
    pytest.param(
        mutated(("colour", "blue")), ["colour: unknown key", TOP_KEYS], id="unknown-top-key"
    ),
    pytest.param(
        mutated(("runtime.luajt", "/usr/bin/luajit")),
        ["runtime.luajt: unknown key", RUNTIME_KEYS],
        id="unknown-nested-key",
    ),
    pytest.param(
        mutated(("runtime.luajit", DELETE), ("runtime.luajt", "/usr/bin/luajit")),
        ["runtime.luajt", RUNTIME_KEYS],
        id="typo-replacing-required-key",
    ),
    pytest.param(
        mutated(("runtime.bootstrap.suit", "bookworm")),
        ["runtime.bootstrap.suit: unknown key", "allowed: mirror, packages, suite, uid, user"],
        id="unknown-bootstrap-key",
    ),
    pytest.param(
        mutated(("runtime.luajit", DELETE)),
        ["runtime.luajit: missing required field"],
        id="missing-luajit",
    ),
    pytest.param(
        mutated(("output", DELETE)), ["output: missing required field"], id="missing-section"
    ),
    pytest.param(
        mutated(("runtime.luajit", "bin/luajit")),
        ["runtime.luajit", "'bin/luajit'", ABSOLUTE],
        id="relative-luajit",
    ),
    pytest.param(
        mutated(("runtime.luajit", "/usr/../bin/luajit")),
        ["runtime.luajit", ABSOLUTE],
        id="dotdot-luajit",
    ),
    pytest.param(
        mutated(("runtime.prefix", "/usr/local/..")),
        ["runtime.prefix", ABSOLUTE],
        id="dotdot-prefix",
    ),
    pytest.param(
        mutated(("runtime.prefix", "usr/local")),
        ["runtime.prefix", "'usr/local'", ABSOLUTE],
        id="relative-prefix",
    ),
    pytest.param(
        mutated(("staging.tree", "qjson-rock")),
        ["staging.tree", ABSOLUTE],
        id="relative-tree",
    ),
    pytest.param(
        mutated(("runtime.bootstrap.workdir", "home/app")),
        ["runtime.bootstrap.workdir", ABSOLUTE],
        id="relative-workdir",
    ),
    pytest.param(
        mutated(("runtime.base_image", "docker.io/Apache/APISIX:3.16.0")),
        ["runtime.base_image", "is not an image reference", IMAGE_FORM],
        id="image-uppercase",
    ),
    pytest.param(
        mutated(("runtime.base_image", "debian bookworm")),
        ["runtime.base_image", "'debian bookworm'", IMAGE_FORM],
        id="image-spaces",
    ),
    pytest.param(
        mutated(("runtime.base_image", "debian@sha256:abc123")),
        ["runtime.base_image", IMAGE_FORM],
        id="image-bad-digest",
    ),
    pytest.param(
        mutated(("builder.image", "")), ["builder.image", IMAGE_FORM], id="builder-image-empty"
    ),
    pytest.param(
        mutated(("output.image", "localhost/qjson:1.0")),
        ["output.image", "without tag or digest", "set 'tag'"],
        id="output-image-with-tag",
    ),
    pytest.param(
        mutated(("output.image", "localhost/qjson@sha256:" + "a" * 64)),
        ["output.image", "without tag or digest"],
        id="output-image-with-digest",
    ),
    pytest.param(
        mutated(("output.tag", "-latest")),
        ["output.tag", "'-latest' is not a tag", "letters, digits, '_', '.', '-' (max 128)"],
        id="bad-tag",
    ),
    pytest.param(
        mutated(("output.tag", "x" * 129)), ["output.tag", "(max 128)"], id="tag-too-long"
    ),
    pytest.param(
        mutated(("rock.name", "qjson demo")),
        ["rock.name", "'qjson demo' is not a rock name", "letters, digits, '.', '_', '-'"],
        id="bad-rock-name",
    ),
    *[
        pytest.param(
            mutated(("rock.version", bad)),
            ["rock.version", f"'{bad}' is not a version requirement", OPERATORS],
            id=f"bad-version[{bad}]",
        )
        for bad in (">>1.0", "1.0 beta", "", "~>", "=1.0", ">= 1.0 < 2.0")
    ],
    pytest.param(
        mutated(("runtime.lua_version", "5.4")),
        ["runtime.lua_version", "'5.1'"],
        id="lua-version",
    ),
    pytest.param(
        mutated(("builder.package_manager", "yum")),
        ["builder.package_manager", "'apt', 'apk' or 'none'"],
        id="package-manager",
    ),
    pytest.param(
        mutated(("buildah.isolation", "docker")),
        ["buildah.isolation", "'chroot', 'oci' or 'rootless'"],
        id="isolation",
    ),
    pytest.param(
        mutated(("staging.tree", "/")), ["staging.tree", "must not be '/'"], id="tree-root"
    ),
    pytest.param(
        mutated(("staging.tree", "/usr/local")),
        ["staging.tree: '/usr/local' overlaps runtime.prefix '/usr/local'", "separate path"],
        id="tree-equals-prefix",
    ),
    pytest.param(
        mutated(("staging.tree", "/usr/local/qjson")),
        ["staging.tree: '/usr/local/qjson' overlaps runtime.prefix '/usr/local'"],
        id="tree-inside-prefix",
    ),
    pytest.param(
        mutated(("staging.tree", "/opt"), ("runtime.prefix", "/opt/app")),
        ["staging.tree: '/opt' overlaps runtime.prefix '/opt/app'", "separate path"],
        id="prefix-inside-tree",
    ),
    pytest.param(
        mutated(("runtime.prefix", "/")),
        ["staging.tree: '/qjson-rock' overlaps runtime.prefix '/'"],
        id="prefix-root",
    ),
    pytest.param(
        mutated(("builder.env", {"1BAD": "x"})),
        ["builder.env", "'1BAD' is not an environment variable name"],
        id="env-name",
    ),
    pytest.param(
        mutated(("builder.env", {"MY-VAR": "x"})),
        ["builder.env", "'MY-VAR'", "letters"],
        id="env-name-allowed-form",
    ),
    pytest.param(
        mutated(("builder.env", {"OK": 1})), ["builder.env.OK", "valid string"], id="env-value"
    ),
    pytest.param(
        mutated(("builder.packages", "git")),
        ["builder.packages", "valid tuple"],
        id="packages-not-a-list",
    ),
    pytest.param(
        mutated(("rock.source", "ftp://mirror.example.org/rocks")),
        ["rock.source", "'ftp://mirror.example.org/rocks'", SOURCE_FORM],
        id="source-scheme",
    ),
    pytest.param(
        mutated(("rock.source", "")),
        ["rock.source", SOURCE_FORM],
        id="source-empty",
    ),
    pytest.param(
        mutated(("runtime.user", "app user")),
        ["runtime.user", "'app user' is not a user", "a name or uid, optionally ':group'"],
        id="bad-user",
    ),
    pytest.param(
        mutated(("runtime.user", "app:")),
        ["runtime.user", "optionally ':group'"],
        id="bad-user-group",
    ),
    pytest.param(
        mutated(("runtime.bootstrap.user", "-app")),
        ["runtime.bootstrap.user", "a name or uid, optionally ':group'"],
        id="bad-bootstrap-user",
    ),
    pytest.param(
        mutated(("runtime.bootstrap.mirror", "ftp://mirror.example.org/debian")),
        ["runtime.bootstrap.mirror", "use an http:// or https:// URL"],
        id="bad-bootstrap-mirror",
    ),
    pytest.param(
        mutated(("runtime.bootstrap.uid", 0)),
        ["runtime.bootstrap.uid", "greater than or equal to 1"],
        id="bootstrap-uid",
    ),
    pytest.param(
        mutated(("runtime", "debian")),
        ["runtime", "valid dictionary"],
        id="section-not-a-table",
    ),
]


@pytest.mark.parametrize(("text", "fragments"), BAD_INPUTS)
def test_bad_input_gives_one_clear_line(tmp_path: Path, text: str, fragments: list[str]) -> None:
    path = write(tmp_path / "targets" / "broken.toml", text)
    message = config_error(path)
    assert "\n" not in message, message
    assert message.startswith(f"{path}: "), message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_there_are_enough_bad_inputs() -> None:
    assert len(BAD_INPUTS) >= 22


def test_several_errors_are_counted_on_one_line(tmp_path: Path) -> None:
    path = write(tmp_path / "t.toml", mutated(("runtime.luajit", "luajit"), ("output.tag", "-x")))
    message = config_error(path)
    assert "\n" not in message
    assert message.endswith("(and 1 more)")


def test_parse_target_names_the_given_path() -> None:
    with pytest.raises(ConfigError, match=r"^/somewhere/x\.toml: rock\.name: "):
        parse_target(mutated(("rock.name", "?")), Path("/somewhere/x.toml"))


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    assert config_error(path) == f"{path}: no such config file"


def test_unreadable_path(tmp_path: Path) -> None:
    path = tmp_path / "dir.toml"
    path.mkdir()
    message = config_error(path)
    assert message.startswith(f"{path}: cannot read: ")
    assert "\n" not in message


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(mutated(("description", "caf\u00e9")).encode("latin-1"))
    message = config_error(path)
    assert message.startswith(f"{path}: ")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("output.tag", "latest\n"),
        ("rock.name", "qjson-demo\n"),
        ("rock.source", "https://rocks.example.org\n"),
        ("runtime.base_image", "docker.io/library/debian:bookworm\n"),
        ("runtime.user", "app\n"),
        ("builder.env", {"NAME\n": "x"}),
    ],
)
def test_trailing_newline_is_rejected(tmp_path: Path, field: str, value: Any) -> None:
    path = write(tmp_path / "t.toml", mutated((field, value)))
    assert field in config_error(path)


def test_value_with_newline_still_gives_one_line(tmp_path: Path) -> None:
    path = write(tmp_path / "t.toml", mutated(("output.tag", "v1\nv2")))
    assert "\n" not in config_error(path)


def test_double_slash_tree_still_overlaps_prefix(tmp_path: Path) -> None:
    path = write(tmp_path / "t.toml", mutated(("staging.tree", "//usr/local")))
    assert "overlaps runtime.prefix" in config_error(path)


# --- finding targets --------------------------------------------------------------------------


def test_unknown_target_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        find_target("nope", CONFIG_DIR)
    message = str(info.value)
    assert "\n" not in message
    assert "unknown target 'nope'" in message
    assert str(CONFIG_DIR) in message
    assert ", ".join(p.stem for p in SHIPPED) in message


def test_unknown_target_in_an_empty_dir(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"known targets in .*: none\)$"):
        find_target("offline", tmp_path)


def test_resolve_target_rejects_target_and_config_together() -> None:
    with pytest.raises(ConfigError, match="either --target or --config, not both"):
        resolve_target("offline", str(CONFIG_DIR / "offline.toml"))


def test_resolve_target_defaults_to_the_default_target() -> None:
    assert resolve_target(None).name == DEFAULT_TARGET


def test_resolve_target_by_config_path(tmp_path: Path) -> None:
    path = write(tmp_path / "mine.toml", mutated())
    target = resolve_target(None, str(path))
    assert (target.name, target.path) == ("mine", path)


def test_resolve_target_by_name_in_a_dir(tmp_path: Path) -> None:
    write(tmp_path / "mine.toml", mutated())
    assert resolve_target("mine", config_dir=tmp_path).name == "mine"
    with pytest.raises(ConfigError, match=r"unknown target 'other' .*: mine\)"):
        resolve_target("other", config_dir=tmp_path)


def test_resolve_target_applies_overrides(tmp_path: Path) -> None:
    path = write(tmp_path / "mine.toml", mutated())
    target = resolve_target(None, str(path), Overrides(tag="v9"))
    assert target.config.output.tag == "v9"


# --- overrides -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "section", "key", "expected"),
    [
        (
            Overrides(base_image="docker.io/library/debian:12"),
            "runtime",
            "base_image",
            "docker.io/library/debian:12",
        ),
        (
            Overrides(builder_image="registry.example.org:5000/ci/rust@sha256:" + "0" * 64),
            "builder",
            "image",
            "registry.example.org:5000/ci/rust@sha256:" + "0" * 64,
        ),
        (Overrides(tag="2024.1-rc1"), "output", "tag", "2024.1-rc1"),
        (
            Overrides(rock_source="https://rocks.example.org/manifests"),
            "rock",
            "source",
            "https://rocks.example.org/manifests",
        ),
        (Overrides(rock_source="default"), "rock", "source", "default"),
    ],
    ids=["base-image", "builder-image", "tag", "rock-source-url", "rock-source-default"],
)
def test_each_flag_replaces_its_field(
    tmp_path: Path, overrides: Overrides, section: str, key: str, expected: str
) -> None:
    target = minimal_target(tmp_path, ("rock.source", "file:///srv/rocks"))
    result = apply_overrides(target, overrides)
    assert getattr(getattr(result.config, section), key) == expected
    assert (result.name, result.path) == (target.name, target.path)
    # Nothing else changes.
    before = target.config.model_dump()
    after = result.config.model_dump()
    for dump in (before, after):
        # The flag's section: [rock] is the first of the target's rocks.
        (dump["rocks"][0] if section == "rock" else dump[section]).pop(key)
    assert before == after


def test_tag_override_changes_the_reference(tmp_path: Path) -> None:
    result = apply_overrides(minimal_target(tmp_path), Overrides(tag="ci-42"))
    assert result.config.output.reference == "localhost/qjson-tasks/test:ci-42"


def test_no_overrides_returns_the_target(tmp_path: Path) -> None:
    target = minimal_target(tmp_path)
    assert apply_overrides(target, Overrides()) is target


@pytest.mark.parametrize(
    ("overrides", "flag", "field", "allowed"),
    [
        (Overrides(base_image="Not An Image"), "--base-image", "runtime.base_image", IMAGE_FORM),
        (Overrides(builder_image="Bad/Image"), "--builder-image", "builder.image", IMAGE_FORM),
        (Overrides(tag="no spaces"), "--tag", "output.tag", "letters, digits"),
        (Overrides(rock_source="ftp://x/y"), "--rock-source", "rock.source", SOURCE_FORM),
    ],
    ids=["base-image", "builder-image", "tag", "rock-source"],
)
def test_bad_flag_value_names_the_flag(
    tmp_path: Path, overrides: Overrides, flag: str, field: str, allowed: str
) -> None:
    with pytest.raises(ConfigError) as info:
        apply_overrides(minimal_target(tmp_path), overrides)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{flag}: "), message
    assert field not in message
    assert allowed in message


def test_relative_rock_source_flag_resolves_against_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = minimal_target(tmp_path)
    workdir = tmp_path / "work"
    (workdir / "rocks" / "demo").mkdir(parents=True)
    monkeypatch.chdir(workdir)
    result = apply_overrides(target, Overrides(rock_source="rocks/demo"))
    assert result.config.rock.where.kind == "directory"
    assert result.config.rock.source == str((workdir / "rocks" / "demo").resolve())


def test_relative_rock_source_in_file_resolves_against_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    target = minimal_target(tmp_path, ("rock.source", "../rocks/demo"))
    expected = str((tmp_path / "rocks" / "demo").resolve())
    assert target.config.rock.source == expected
    # Another flag keeps the already-resolved directory.
    assert apply_overrides(target, Overrides(tag="v2")).config.rock.source == expected


def test_relative_config_path_resolves_source_against_its_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "cfg" / "t.toml", mutated(("rock.source", "demo")))
    monkeypatch.chdir(tmp_path)
    target = load_target(Path("cfg/t.toml"))
    assert target.config.rock.source == str((tmp_path / "cfg" / "demo").resolve())


def test_home_in_rock_source_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    target = minimal_target(tmp_path, ("rock.source", "~/rocks"))
    assert target.config.rock.source == str((tmp_path / "home" / "rocks").resolve())


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("default", "default"),
        ("https://rocks.example.org", "server"),
        ("http://mirror:8080/rocks", "server"),
        ("file:///srv/rocks", "server"),
    ],
)
def test_server_sources_are_not_resolved(tmp_path: Path, source: str, kind: str) -> None:
    rock = minimal_target(tmp_path, ("rock.source", source)).config.rock
    assert (rock.source, rock.where.kind) == (source, kind)


# --- models ----------------------------------------------------------------------------------


def test_models_are_frozen(tmp_path: Path) -> None:
    target = minimal_target(tmp_path)
    with pytest.raises(ValidationError, match="frozen"):
        target.config.runtime.luajit = "/bin/luajit"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        target.config.output = Output(image="localhost/x")  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        target.name = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Overrides().tag = "x"  # type: ignore[misc]


VALID_SECTIONS: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (TargetConfig, copy.deepcopy(MINIMAL)),
    (Runtime, MINIMAL["runtime"]),
    (Bootstrap, {}),
    (Builder, MINIMAL["builder"]),
    (Rock, MINIMAL["rock"]),
    (Staging, {}),
    (Output, MINIMAL["output"]),
    (Verify, {}),
    (BuildahSettings, {}),
]


@pytest.mark.parametrize(
    ("model", "data"), VALID_SECTIONS, ids=[m.__name__ for m, _ in VALID_SECTIONS]
)
def test_unknown_keys_are_forbidden(model: type[BaseModel], data: dict[str, Any]) -> None:
    model.model_validate(data)
    with pytest.raises(ValidationError) as info:
        model.model_validate({**data, "unexpected": 1})
    assert [e["type"] for e in info.value.errors()] == ["extra_forbidden"]
