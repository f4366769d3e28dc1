"""The target config's schema: frozen pydantic models; validators never touch the disk.

Reading a file, translating pydantic's errors and applying flags live in config.load.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from qjson_tasks.config.sources import (
    DEFAULT_SOURCE,
    RockSource,
    check_rock_server,
    check_rock_source,
    rock_source,
    server_source,
)
from qjson_tasks.luarocks.versions import Requirement

# [registry[:port]/]path[:tag][@sha256:digest], lower-case path components as OCI requires.
_IMAGE_REF = re.compile(
    r"^(?:(?P<registry>[a-zA-Z0-9.-]+(?::\d+)?)/)?"
    r"(?P<path>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(?::[A-Za-z0-9_][A-Za-z0-9_.-]*)?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_image_ref(value: str) -> str:
    match = _IMAGE_REF.fullmatch(value)
    if not match or (match.group("registry") and "/" not in value):
        raise ValueError(
            f"{value!r} is not an image reference: use [registry/]name[:tag][@sha256:<64 hex>]"
        )
    return value


def _image_name(value: str) -> str:
    check_image_ref(value)
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
    if not NAME.fullmatch(value):
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


ImageRef = Annotated[str, AfterValidator(check_image_ref)]
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
    source: Annotated[str, AfterValidator(check_rock_source)] = DEFAULT_SOURCE
    smoke_script: str | None = Field(
        default=None, description="Lua file run by the image's LuaJIT to check this rock"
    )

    @property
    def requirement(self) -> Requirement:
        return Requirement.parse(self.version)

    @property
    def where(self) -> RockSource:
        """The source, classified (see config.sources)."""
        return rock_source(self.source)


class Luarocks(_Model):
    server: Annotated[
        str | None, AfterValidator(lambda v: v if v is None else check_rock_server(v))
    ] = Field(
        default=None,
        description="where dependencies and rocks with source 'default' come from;"
        " default: luarocks' own servers",
    )

    @property
    def where(self) -> RockSource | None:
        return None if self.server is None else server_source(self.server)


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


def _request_path(value: str) -> str:
    if not re.fullmatch(r"/[!-~]*", value):
        raise ValueError(f"{value!r} is not a request path: '/' then printable ASCII, no spaces")
    return value


def _json_text(value: str) -> str:
    try:
        json.loads(value)
    except ValueError as exc:
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise ValueError(
            f"{shown!r} is not JSON ({exc}): give a JSON text for the worker to decode"
        ) from None
    return value


def _include(value: str) -> str:
    if not value.startswith("/") or any(c in value for c in ";{}\n"):
        raise ValueError(f"{value!r} must be an absolute path (a glob is fine) without ';'")
    return value


class Gateway(_Model):
    """The gateway check: nginx in a throwaway container answers a JSON POST through qjson."""

    nginx: AbsPath = Field(description="the nginx binary in the image")
    snippet: str = Field(
        description="file (relative to the target file) with the http-block directives of the"
        " check's nginx.conf: lua_package_path/cpath and a server that listens on @LISTEN@"
    )
    modules: tuple[Annotated[str, AfterValidator(_include)], ...] = Field(
        default=(),
        description="files included at the top of the nginx.conf (load_module lines), e.g."
        " /etc/nginx/modules-enabled/*.conf for Debian's modules; none for OpenResty",
    )
    path: Annotated[str, AfterValidator(_request_path)] = Field(
        default="/qjson", description="the request path the POST goes to"
    )
    body: Annotated[str, AfterValidator(_json_text)] = Field(description="the JSON request body")
    status: int = Field(default=200, ge=100, le=599, description="the expected HTTP status")
    expect: str = Field(description="the expected answer body (trailing whitespace ignored)")
    worker_user: Annotated[str | None, AfterValidator(lambda v: v if v is None else _user(v))] = (
        Field(
            default=None,
            description="the user nginx's workers run as; default: the image's user, or"
            " nobody (nginx's default) when the image runs as root",
        )
    )
    timeout: float = Field(
        default=10.0, gt=0, le=120, description="seconds to wait for nginx to start and answer"
    )


class Verify(_Model):
    smoke_script: str | None = Field(
        default=None, description="Lua file run by the image's LuaJIT; default: the built-in one"
    )
    artifacts: tuple[str, ...] | None = Field(
        default=None, description="paths relative to the prefix that must exist"
    )
    gateway: Gateway | None = Field(
        default=None, description="start nginx from the image and POST JSON through qjson"
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
