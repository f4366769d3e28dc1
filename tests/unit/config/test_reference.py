"""The config's JSON Schema and reference page: committed ones are current, every key is
described, and the schema accepts every shipped target and rejects what the models reject."""

from __future__ import annotations

import tomllib
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel

from qjson_tasks.app.schema import generated_files
from qjson_tasks.app.tools import CONFIG_DIR, PROJECT_DIR
from qjson_tasks.config.load import list_targets, load_target
from qjson_tasks.config.model import TargetConfig
from qjson_tasks.config.reference import (
    SCHEMA_FILE,
    reference_markdown,
    schema_json,
    target_schema,
)

TARGET_FILES = list_targets(CONFIG_DIR)
SCHEMA_LINE = "#:schema ../schema/target.schema.json"


def _nested(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds (itself, optional, or a tuple of them), else None."""
    for kind in (annotation, *typing.get_args(annotation)):
        for inner in (kind, *typing.get_args(kind)):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner
    return None


def _models(model: type[BaseModel], path: str = "") -> Iterator[tuple[str, type[BaseModel]]]:
    """(TOML path of its table, model) for TargetConfig and every model inside it."""
    yield path, model
    for name, field in model.model_fields.items():
        inner = _nested(field.annotation)
        if inner is not None:
            table = "rocks[i]" if name == "rocks" and not path else f"{path}{name}"
            yield from _models(inner, f"{table}.")


def _leaf_paths() -> list[str]:
    """The TOML path of every key that is not a table, as the reference writes it."""
    return [
        f"{path}{name}"
        for path, model in _models(TargetConfig)
        for name, field in model.model_fields.items()
        if _nested(field.annotation) is None
    ]


def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(target_schema())


def _errors(data: dict[str, Any]) -> list[str]:
    return [error.message for error in _validator().iter_errors(data)]


@pytest.mark.parametrize("path", sorted(generated_files()), ids=lambda p: p.name)
def test_committed_file_is_up_to_date(path: Path) -> None:
    assert path.is_file(), "run: invoke schema"
    assert path.read_text(encoding="utf-8") == generated_files()[path], (
        f"{path} is out of date; run: invoke schema"
    )


def test_every_field_and_table_is_described() -> None:
    undescribed = [
        f"{path}{name}"
        for path, model in _models(TargetConfig)
        for name, field in model.model_fields.items()
        if not (field.description or "").strip()
    ]
    assert undescribed == [], "give each a Field(description=...)"
    undocumented = [model.__name__ for _, model in _models(TargetConfig) if not model.__doc__]
    assert undocumented == [], "give each model a docstring: the reference's table text"


def test_the_reference_lists_every_key() -> None:
    text = reference_markdown()
    missing = [path for path in _leaf_paths() if f"| `{path}` |" not in text]
    assert missing == []
    assert "| `runtime.bootstrap.uid` | integer | `636` | >= 1, <= 65535 |" in text
    assert '| `builder.package_manager` | string | `"apt"` | `"apt"`, `"apk"`, `"none"` |' in text
    assert "| `runtime.base_image` | string | required |" in text
    assert "| `builder.env` | table of strings | `{}` |" in text


def test_the_schema_is_a_valid_schema_for_editors() -> None:
    schema = target_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["title"] == "qjson-tasks target config"
    assert schema["additionalProperties"] is False
    assert all(d["additionalProperties"] is False for d in schema["$defs"].values())
    text = schema_json(schema)
    assert '"title": "Base Image"' not in text  # pydantic's generated titles are dropped
    assert '"type": "null"' not in text  # TOML has no null: an unset key is left out


@pytest.mark.parametrize("path", TARGET_FILES, ids=lambda p: p.stem)
def test_every_shipped_target_names_the_schema_and_passes_it(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == SCHEMA_LINE
    assert (path.parent / SCHEMA_LINE.split(" ", 1)[1]).resolve() == PROJECT_DIR / SCHEMA_FILE
    assert _errors(tomllib.loads(text)) == []
    assert load_target(path).name == path.stem  # the directive is a comment to the loader


def _apisix() -> dict[str, Any]:
    return tomllib.loads((CONFIG_DIR / "apisix.toml").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("table", "typo", "message"),
    [
        ("runtime", "luajt", "'luajt' was unexpected"),
        ("rock", "verison", "'verison' was unexpected"),
        ("verify.gateway", "except", "'except' was unexpected"),
        ("", "descripton", "'descripton' was unexpected"),
    ],
)
def test_a_typo_is_rejected_by_the_schema(table: str, typo: str, message: str) -> None:
    data = _apisix()
    where = data
    for part in filter(None, table.split(".")):
        where = where[part]
    where[typo] = "x"
    assert any(message in error for error in _errors(data)), _errors(data)


def test_the_schema_knows_rock_and_rocks_as_the_models_do() -> None:
    data = _apisix()
    rocks = {**data, "rocks": [data["rock"]]}
    del rocks["rock"]
    assert _errors(rocks) == []
    assert _errors({**rocks, "rocks": []}) != []
    assert _errors({**data, "rocks": [data["rock"]]}) != []  # both
    neither = {key: value for key, value in data.items() if key != "rock"}
    assert _errors(neither) != []


@pytest.mark.parametrize(
    ("table", "key", "value"),
    [
        ("builder", "package_manager", "yum"),
        ("runtime.bootstrap", "uid", 0),
        ("verify.gateway", "timeout", 0),
        ("builder", "packages", "git"),
    ],
)
def test_a_value_the_models_reject_by_type_or_range_the_schema_rejects(
    table: str, key: str, value: Any
) -> None:
    data = _apisix()
    data["runtime"]["bootstrap"] = {}
    where = data
    for part in table.split("."):
        where = where[part]
    where[key] = value
    assert _errors(data) != []
    with pytest.raises(ValueError):
        TargetConfig.model_validate(data)
