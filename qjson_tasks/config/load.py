"""Reading target configs: read the file, validate it, resolve what depends on where it
lives (relative rock directories), and apply flags for one run. pydantic's errors are
translated here into one line naming the file (or flag), the field and what is allowed.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from qjson_tasks.config.model import NAME, Target, TargetConfig, check_image_ref
from qjson_tasks.config.sources import SOURCE_FORMS
from qjson_tasks.errors import ConfigError


@dataclass(frozen=True)
class Overrides:
    """Flags that replace config values for one run; None means 'use the config'."""

    base_image: str | None = None
    builder_image: str | None = None
    tag: str | None = None
    rock_source: str | None = None
    cache_repo: str | None = None
    cache_push: bool | None = None  # False: --no-cache-push

    def as_updates(self) -> dict[str, dict[str, object]]:
        updates: dict[str, dict[str, object]] = {}
        for value, section, key in (
            (self.base_image, "runtime", "base_image"),
            (self.builder_image, "builder", "image"),
            (self.tag, "output", "tag"),
            (self.rock_source, "rock", "source"),
            (self.cache_repo, "cache", "repository"),
            (self.cache_push, "cache", "push"),
        ):
            if value is not None:
                updates.setdefault(section, {})[key] = value
        return updates


FLAG_FOR_FIELD = {
    "runtime.base_image": "--base-image",
    "builder.image": "--builder-image",
    "output.tag": "--tag",
    "rock.source": "--rock-source",
    "cache.repository": "--cache-repo",
}


def _field_path(loc: Sequence[Any], single_rock: bool = False) -> str:
    """`rocks.1.version` as the file spells it: `rocks[1].version`, or `rock.version` when the
    file has a single [rock] table."""
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int) and parts:
            parts[-1] = "rock" if single_rock and parts[-1] == "rocks" else f"{parts[-1]}[{part}]"
        else:
            parts.append(str(part))
    return ".".join(parts)


def _describe_error(error: Mapping[str, Any], single_rock: bool = False) -> str:
    loc = _field_path(error["loc"], single_rock)
    kind = error["type"]
    if not loc and kind == "value_error":
        # A check across sections (staging.tree vs runtime.prefix): its message names them.
        return str(error["msg"]).removeprefix("Value error, ")
    loc = loc or "(top level)"
    if kind == "extra_forbidden":
        allowed = _allowed_keys(tuple(error["loc"][:-1]))
        return f"{loc}: unknown key (allowed: {', '.join(allowed)})"
    if kind == "missing" and loc == "rocks":
        return "rock: missing required field (add a [rock] table or [[rocks]] entries)"
    if kind == "missing":
        *section, key = loc.split(".")
        table = ".".join(section)
        if "[" in table:  # an entry of an array of tables, e.g. rocks[1]
            where = f"{key} = ... to that [[{table.split('[')[0]}]] entry"
        else:
            where = f"{key} = ... under [{table}]" if section else f"a [{key}] table"
        return f"{loc}: missing required field (add {where})"
    if kind == "literal_error":
        return f"{loc}: {error['msg'].lower()}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{loc}: {message}"


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = TargetConfig
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            break
        model = nested[0]
    keys = set(model.model_fields)
    if model is TargetConfig:
        keys.add("rock")  # short for [[rocks]] (see _one_rock_table)
    return sorted(keys)


def _translate(error: ValidationError, where: str, single_rock: bool = False) -> ConfigError:
    # A typo shows up both as an unknown key and as the missing key it was meant to be:
    # name the typo first.
    errors = sorted(error.errors(), key=lambda e: e["type"] != "extra_forbidden")
    first = _describe_error(errors[0], single_rock)
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return ConfigError(f"{where}: {first}{more}")


def parse_target(text: str, path: Path) -> TargetConfig:
    """Validate TOML text as a target config; errors name the file and the field."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    try:
        return TargetConfig.model_validate(data)
    except ValidationError as exc:
        single = isinstance(data.get("rock"), dict) and "rocks" not in data
        raise _translate(exc, str(path), single) from None


def _resolve_paths(config: TargetConfig, base: Path) -> TargetConfig:
    """Relative rock directories and files, and a local server, against the config's dir."""

    def local(value: str) -> str:
        return str((base / Path(value).expanduser()).resolve())

    rocks = tuple(
        rock.model_copy(update={"source": local(rock.source)})
        if rock.where.kind in ("directory", "file")
        else rock
        for rock in config.rocks
    )
    server = config.luarocks.where
    luarocks = config.luarocks
    if server is not None and server.text == server.host_path:  # a directory, not a URL
        luarocks = luarocks.model_copy(update={"server": local(server.text)})
    return config.model_copy(update={"rocks": rocks, "luarocks": luarocks})


def load_target(path: Path) -> Target:
    """Read, validate and resolve one target file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; a target config is a UTF-8 TOML file") from None
    config = _resolve_paths(parse_target(text, path), path.parent)
    return Target(name=path.stem, path=path, config=config)


def list_targets(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.toml"))


def find_target(name: str, directory: Path) -> Target:
    path = directory / f"{name}.toml"
    if not NAME.fullmatch(name) or not path.is_file():
        known = ", ".join(p.stem for p in list_targets(directory)) or "none"
        raise ConfigError(f"unknown target '{name}' (known targets in {directory}: {known})")
    return load_target(path)


def check_image_flag(flag: str, value: str) -> str:
    """A flag naming an image (reference or ID) outside any config; errors name the flag."""
    try:
        return check_image_ref(value)
    except ValueError as exc:
        raise ConfigError(f"{flag}: {exc}") from None


def apply_overrides(target: Target, overrides: Overrides) -> Target:
    """Return the target with flag values in place; a bad flag value names the flag."""
    updates = overrides.as_updates()
    if not updates:
        return target
    data = target.config.model_dump()
    if data["cache"] is None and "repository" not in updates.get("cache", {"repository": ""}):
        raise ConfigError(
            f"--no-cache-push: {target.path} has no [cache] table; give --cache-repo"
            " REGISTRY/NAMESPACE too (or drop --no-cache-push)"
        )
    for section, values in updates.items():
        if section == "rock":
            data["rocks"] = [{**data["rocks"][0], **values}, *data["rocks"][1:]]
        else:
            data[section] = {**(data[section] or {}), **values}
    try:
        config = TargetConfig.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = _field_path(error["loc"], single_rock=True)
        flag = FLAG_FOR_FIELD.get(field, field)
        raise ConfigError(f"{flag}: {_describe_error(error).split(': ', 1)[1]}") from None
    resolved = _resolve_paths(config, Path.cwd())
    kind = resolved.rock.where.kind
    missing = (kind == "directory" and not Path(resolved.rock.source).is_dir()) or (
        kind == "file" and not Path(resolved.rock.source).is_file()
    )
    if overrides.rock_source is not None and missing:
        # Said here, as the flag's error: the file's rock.source is not what was wrong.
        what = "a directory" if kind == "directory" else "a file"
        raise ConfigError(
            f"--rock-source: '{resolved.rock.source}' is not {what}: use {SOURCE_FORMS}"
        )
    return Target(target.name, target.path, resolved)
