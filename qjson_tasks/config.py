"""Target configs: TOML files validated by frozen pydantic models.

Reading is three steps: read the file, validate it, resolve what depends on where it lives
(relative rock directories). Validators never touch the disk or the network.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from qjson_tasks.errors import ConfigError
from qjson_tasks.versions import Requirement

DEFAULT_SOURCE = "default"

# [registry[:port]/]path[:tag][@sha256:digest], lower-case path components as OCI requires.
_IMAGE_REF = re.compile(
    r"^(?:(?P<registry>[a-zA-Z0-9.-]+(?::\d+)?)/)?"
    r"(?P<path>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(?::[A-Za-z0-9_][A-Za-z0-9_.-]*)?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_URL = re.compile(r"^(https?|file)://\S+$")


def _image_ref(value: str) -> str:
    match = _IMAGE_REF.fullmatch(value)
    if not match or (match.group("registry") and "/" not in value):
        raise ValueError(
            f"{value!r} is not an image reference: use [registry/]name[:tag][@sha256:<64 hex>]"
        )
    return value


def _image_name(value: str) -> str:
    _image_ref(value)
    last = value.rsplit("/", 1)[-1]
    if ":" in last or "@" in value:
        raise ValueError(f"{value!r} must be an image name without tag or digest (set 'tag')")
    return value


def _abs_path(value: str) -> str:
    path = PurePosixPath(value)
    if not path.is_absolute() or ".." in path.parts or "\n" in value:
        raise ValueError(f"{value!r} must be an absolute POSIX path without '..'")
    # POSIX keeps a leading '//' distinct; in an image it is just '/'.
    return str(PurePosixPath("/", *path.parts[1:]))


def _tag(value: str) -> str:
    if not _TAG.fullmatch(value):
        raise ValueError(f"{value!r} is not a tag: letters, digits, '_', '.', '-' (max 128)")
    return value


def _rock_name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a rock name: letters, digits, '.', '_', '-'")
    return value


def _requirement(value: str) -> str:
    Requirement.parse(value)
    return value


def _user(value: str) -> str:
    if not _USER.fullmatch(value):
        raise ValueError(f"{value!r} is not a user: a name or uid, optionally ':group'")
    return value


def _mirror(value: str) -> str:
    if not re.fullmatch(r"https?://\S+", value):
        raise ValueError(f"{value!r} is not a Debian mirror: use an http:// or https:// URL")
    return value


def _env(value: Mapping[str, str]) -> Mapping[str, str]:
    for name in value:
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(
                f"{name!r} is not an environment variable name: letters, digits and '_',"
                " not starting with a digit"
            )
    return value


SOURCE_FORMS = (
    "'default', an http(s):// or file:// server URL, a local directory with a rockspec,"
    " or a local .rock/.src.rock file"
)
SERVER_FORMS = "an http(s):// or file:// URL, or a local directory holding a luarocks manifest"
ROCK_FILE_SUFFIXES = (".src.rock", ".rock")

SourceKind = Literal["default", "server", "directory", "file"]


def _rock_source(value: str) -> str:
    if value == DEFAULT_SOURCE or _URL.fullmatch(value):
        return value
    if "://" in value or not value.strip() or "\n" in value:
        raise ValueError(f"{value!r} is not a rock source: use {SOURCE_FORMS}")
    return value


def _rock_server(value: str) -> str:
    if _URL.fullmatch(value):
        return value
    if "://" in value or not value.strip() or "\n" in value:
        raise ValueError(f"{value!r} is not a rock server: use {SERVER_FORMS}")
    return value


def source_kind(source: str) -> SourceKind:
    if source == DEFAULT_SOURCE:
        return "default"
    if _URL.fullmatch(source):
        return "server"
    return "file" if source.endswith(ROCK_FILE_SUFFIXES) else "directory"


def is_local_server(server: str) -> bool:
    """A server on this machine (a directory or a file:// URL): copied into the builder."""
    return not re.match(r"^https?://", server)


def host_dir(server: str) -> str:
    """A local server's directory on this machine."""
    return server.removeprefix("file://")


ImageRef = Annotated[str, AfterValidator(_image_ref)]
ImageName = Annotated[str, AfterValidator(_image_name)]
AbsPath = Annotated[str, AfterValidator(_abs_path)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Bootstrap(_Model):
    """How to make the runtime base image from Debian packages when it is missing."""

    suite: str = "bookworm"
    mirror: Annotated[str | None, AfterValidator(lambda v: v if v is None else _mirror(v))] = None
    packages: tuple[str, ...] = ("luajit",)
    user: Annotated[str | None, AfterValidator(lambda v: v if v is None else _user(v))] = None
    uid: int = Field(default=636, ge=1, le=65535)
    workdir: AbsPath | None = None


class Runtime(_Model):
    base_image: ImageRef
    luajit: AbsPath
    lua_version: Literal["5.1"] = "5.1"
    prefix: AbsPath = "/usr/local"
    user: Annotated[str, AfterValidator(_user)] = "root"
    bootstrap: Bootstrap | None = None


class Builder(_Model):
    image: ImageRef
    package_manager: Literal["apt", "apk", "none"] = "apt"
    packages: tuple[str, ...] = ()
    setup: tuple[str, ...] = Field(default=(), description="shell commands run after packages")
    env: Annotated[dict[str, str], AfterValidator(_env)] = Field(default_factory=dict)
    luarocks: str = "luarocks"


class Rock(_Model):
    name: Annotated[str, AfterValidator(_rock_name)]
    version: Annotated[str, AfterValidator(_requirement)]
    source: Annotated[str, AfterValidator(_rock_source)] = DEFAULT_SOURCE
    smoke_script: str | None = Field(
        default=None, description="Lua file run by the image's LuaJIT to check this rock"
    )

    @property
    def requirement(self) -> Requirement:
        return Requirement.parse(self.version)

    @property
    def source_kind(self) -> SourceKind:
        return source_kind(self.source)


class Luarocks(_Model):
    server: Annotated[str | None, AfterValidator(lambda v: v if v is None else _rock_server(v))] = (
        Field(
            default=None,
            description="where dependencies and rocks with source 'default' come from;"
            " default: luarocks' own servers",
        )
    )


class Staging(_Model):
    tree: AbsPath = "/qjson-rock"


class Output(_Model):
    image: ImageName
    tag: Annotated[str, AfterValidator(_tag)] = "latest"
    source_date_epoch: int | None = Field(
        default=None,
        ge=0,
        description="image timestamp (seconds); default: the base image's creation time",
    )

    @property
    def reference(self) -> str:
        return f"{self.image}:{self.tag}"


class Verify(_Model):
    smoke_script: str | None = Field(
        default=None, description="Lua file run by the image's LuaJIT; default: the built-in one"
    )
    artifacts: tuple[str, ...] | None = Field(
        default=None, description="paths relative to the prefix that must exist"
    )


class BuildahSettings(_Model):
    isolation: Literal["chroot", "oci", "rootless"] = "chroot"


class TargetConfig(_Model):
    description: str = ""
    runtime: Runtime
    builder: Builder
    rocks: tuple[Rock, ...]
    luarocks: Luarocks = Luarocks()
    staging: Staging = Staging()
    output: Output
    verify: Verify = Verify()
    buildah: BuildahSettings = BuildahSettings()

    @model_validator(mode="before")
    @classmethod
    def _one_rock_table(cls, data: Any) -> Any:
        """`[rock]` is short for a `[[rocks]]` list of one."""
        if isinstance(data, Mapping) and "rock" in data:
            if "rocks" in data:
                raise ValueError("rock: give either [rock] or [[rocks]] entries, not both")
            rock = data["rock"]
            if not isinstance(rock, Mapping):
                # `[[rock]]` or `rock = "..."`: said here, or the error would name `rocks[0]`.
                raise ValueError("rock: must be one [rock] table; list several as [[rocks]]")
            data = {key: value for key, value in data.items() if key != "rock"}
            data["rocks"] = [rock]
        return data

    @model_validator(mode="after")
    def _rock_names_unique(self) -> TargetConfig:
        if not self.rocks:
            raise ValueError("rocks: the list is empty; a target needs at least one rock")
        names = [rock.name for rock in self.rocks]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"rocks: '{twice[0]}' is listed twice; list each rock once")
        return self

    def rock_field(self, index: int, key: str) -> str:
        """How an error names a rock's field: `rock.source`, or `rocks[1].source` in a list."""
        return f"rock.{key}" if len(self.rocks) == 1 else f"rocks[{index}].{key}"

    @property
    def rock(self) -> Rock:
        """The first rock: the one the target is about (lua-qjson), `--rock-source`'s."""
        return self.rocks[0]

    @model_validator(mode="after")
    def _tree_apart_from_prefix(self) -> TargetConfig:
        tree, prefix = PurePosixPath(self.staging.tree), PurePosixPath(self.runtime.prefix)
        if tree == PurePosixPath("/"):
            raise ValueError("staging.tree: must not be '/': use a directory of its own")
        if tree == prefix or tree in prefix.parents or prefix in tree.parents:
            raise ValueError(
                f"staging.tree: '{tree}' overlaps runtime.prefix '{prefix}': use a separate path"
            )
        return self

    def default_artifacts(self) -> tuple[str, ...]:
        ver = self.runtime.lua_version
        return (
            f"lib/lua/{ver}/qjson.so",
            f"share/lua/{ver}/qjson.lua",
            f"share/lua/{ver}/qjson/lib.lua",
            f"share/lua/{ver}/qjson/table.lua",
        )

    @property
    def artifacts(self) -> tuple[str, ...]:
        return self.verify.artifacts or self.default_artifacts()


@dataclass(frozen=True)
class Target:
    """A validated config with the name and file it came from."""

    name: str
    path: Path
    config: TargetConfig


@dataclass(frozen=True)
class Overrides:
    """Flags that replace config values for one run; None means 'use the config'."""

    base_image: str | None = None
    builder_image: str | None = None
    tag: str | None = None
    rock_source: str | None = None

    def as_updates(self) -> dict[str, dict[str, str]]:
        updates: dict[str, dict[str, str]] = {}
        for value, section, key in (
            (self.base_image, "runtime", "base_image"),
            (self.builder_image, "builder", "image"),
            (self.tag, "output", "tag"),
            (self.rock_source, "rock", "source"),
        ):
            if value is not None:
                updates.setdefault(section, {})[key] = value
        return updates


FLAG_FOR_FIELD = {
    "runtime.base_image": "--base-image",
    "builder.image": "--builder-image",
    "output.tag": "--tag",
    "rock.source": "--rock-source",
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
        if rock.source_kind in ("directory", "file")
        else rock
        for rock in config.rocks
    )
    server = config.luarocks.server
    luarocks = config.luarocks
    if server is not None and "://" not in server:
        luarocks = luarocks.model_copy(update={"server": local(server)})
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
    if not _NAME.fullmatch(name) or not path.is_file():
        known = ", ".join(p.stem for p in list_targets(directory)) or "none"
        raise ConfigError(f"unknown target '{name}' (known targets in {directory}: {known})")
    return load_target(path)


def check_image_flag(flag: str, value: str) -> str:
    """A flag naming an image (reference or ID) outside any config; errors name the flag."""
    try:
        return _image_ref(value)
    except ValueError as exc:
        raise ConfigError(f"{flag}: {exc}") from None


def apply_overrides(target: Target, overrides: Overrides) -> Target:
    """Return the target with flag values in place; a bad flag value names the flag."""
    updates = overrides.as_updates()
    if not updates:
        return target
    data = target.config.model_dump()
    for section, values in updates.items():
        if section == "rock":
            data["rocks"] = [{**data["rocks"][0], **values}, *data["rocks"][1:]]
        else:
            data[section] = {**data[section], **values}
    try:
        config = TargetConfig.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = _field_path(error["loc"], single_rock=True)
        flag = FLAG_FOR_FIELD.get(field, field)
        raise ConfigError(f"{flag}: {_describe_error(error).split(': ', 1)[1]}") from None
    resolved = _resolve_paths(config, Path.cwd())
    kind = resolved.rock.source_kind
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
