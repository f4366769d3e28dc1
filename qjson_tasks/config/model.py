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

from qjson_tasks.config.platforms import Platform, check_platforms, parse_platform
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


def _platform(value: str) -> str:
    return parse_platform(value).text


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

    suite: str = Field(
        default="bookworm", description="the Debian release debootstrap installs (its codename)"
    )
    mirror: Annotated[str | None, AfterValidator(lambda v: v if v is None else _mirror(v))] = Field(
        default=None,
        description="the Debian mirror, an http:// or https:// URL; default: the host's"
        " mirror from /etc/apt/sources.list(.d)",
    )
    packages: tuple[str, ...] = Field(
        default=("luajit",),
        description="Debian packages installed into the base (debootstrap --include);"
        " they must give the LuaJIT runtime.luajit names",
    )
    user: Annotated[str | None, AfterValidator(lambda v: v if v is None else _user(v))] = Field(
        default=None,
        description="a user created in the base with this name and set as its USER;"
        " default: none, the base runs as root",
    )
    uid: int = Field(default=636, ge=1, le=65535, description="the uid of bootstrap.user")
    workdir: AbsPath | None = Field(
        default=None, description="the base image's WORKDIR, an absolute path; default: unset"
    )


class Runtime(_Model):
    """The image users deploy: its base, its LuaJIT and where the rock tree goes."""

    base_image: ImageRef = Field(
        description="the runtime base image, [registry/]name[:tag][@sha256:<64 hex>];"
        " its user, entrypoint, cmd, workdir, env and ports are kept as they are"
    )
    luajit: AbsPath = Field(
        description="the LuaJIT binary inside the image (absolute path), run by the smoke check"
    )
    lua_version: Literal["5.1"] = Field(
        default="5.1", description="the Lua ABI of the tree (LuaJIT's is 5.1)"
    )
    prefix: AbsPath = Field(
        default="/usr/local",
        description="where the rock tree is copied in the image: a directory on LuaJIT's"
        " default package paths",
    )
    user: Annotated[str, AfterValidator(_user)] = Field(
        default="root",
        description="the user the image runs as (a name or uid, optionally ':group');"
        " the contract check fails unless the image's USER is this one",
    )
    bootstrap: Bootstrap | None = Field(
        default=None,
        description="make base_image from Debian packages with debootstrap when it is missing",
    )


class Builder(_Model):
    """The image the rock is compiled in: Rust, luarocks and build tools; never shipped."""

    image: ImageRef = Field(
        description="the builder image, [registry/]name[:tag][@sha256:<64 hex>]; use the"
        " runtime's OS release, or the library needs a newer glibc than the runtime has"
    )
    package_manager: Literal["apt", "apk", "none"] = Field(
        default="apt", description="how builder.packages are installed"
    )
    packages: tuple[str, ...] = Field(
        default=(), description="packages installed into the builder unit, as root"
    )
    setup: tuple[str, ...] = Field(
        default=(),
        description="shell commands run as root in the builder after the packages",
    )
    env: Annotated[dict[str, str], AfterValidator(_env)] = Field(
        default_factory=dict,
        description="environment of the rock install only (buildah run --env), never of an"
        " image; credential-like names (*_TOKEN ...) enter the unit hash by name only",
    )
    luarocks: str = Field(
        default="luarocks",
        description="the luarocks command in the builder (e.g. luarocks-5.1 on Alpine);"
        " NAME-admin is its luarocks-admin",
    )


class Rock(_Model):
    """A rock installed into the tree, in the order listed; the first is the target's."""

    name: Annotated[str, AfterValidator(_rock_name)] = Field(
        description="the rock's name: letters, digits, '.', '_', '-'"
    )
    version: Annotated[str, AfterValidator(_requirement)] = Field(
        description="a version requirement: a version ('1.2.3' or '1.2.3-1') optionally"
        " preceded by ==, ~=, <, >, <=, >= or ~> (bare means ==); several joined by ','"
    )
    source: Annotated[str, AfterValidator(check_rock_source)] = Field(
        default=DEFAULT_SOURCE,
        description="'default' (luarocks.server, else luarocks' own servers), an http(s):// or"
        " file:// server URL, a local directory with a rockspec, or a .rock/.src.rock file;"
        " relative paths are relative to the target file",
    )
    smoke_script: str | None = Field(
        default=None,
        description="Lua file run by the image's LuaJIT to check this rock (relative to the"
        " target file)",
    )

    @property
    def requirement(self) -> Requirement:
        return Requirement.parse(self.version)

    @property
    def where(self) -> RockSource:
        """The source, classified (see config.sources)."""
        return rock_source(self.source)


class Luarocks(_Model):
    """Where luarocks finds dependencies."""

    server: Annotated[
        str | None, AfterValidator(lambda v: v if v is None else check_rock_server(v))
    ] = Field(
        default=None,
        description="where dependencies and rocks with source 'default' come from: an"
        " http(s):// or file:// URL, or a local directory holding a luarocks manifest;"
        " default: luarocks' own servers",
    )

    @property
    def where(self) -> RockSource | None:
        return None if self.server is None else server_source(self.server)


class Staging(_Model):
    """Where the rocks are installed in the builder before the tree is copied out."""

    tree: AbsPath = Field(
        default="/qjson-rock",
        description="luarocks' --tree in the builder (absolute path); must not be / nor"
        " overlap runtime.prefix",
    )


class Output(_Model):
    """The image a build tags once it is verified."""

    image: ImageName = Field(
        description="the output image name, without tag or digest ([registry/]name, lower case)"
    )
    tag: Annotated[str, AfterValidator(_tag)] = Field(
        default="latest",
        description="the output tag: letters, digits, '_', '.', '-' (at most 128)",
    )
    source_date_epoch: int | None = Field(
        default=None,
        ge=0,
        description="image timestamp (seconds); default: the base image's creation time",
    )
    platforms: (
        Annotated[
            tuple[Annotated[str, AfterValidator(_platform)], ...],
            AfterValidator(check_platforms),
        ]
        | None
    ) = Field(
        default=None,
        description="build one image per platform (os/arch, e.g. linux/amd64, linux/arm64)"
        " and tag a manifest list of them; default: one image for the host's platform",
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
    """What verification checks beyond the fixed checks (see docs/verification.md)."""

    smoke_script: str | None = Field(
        default=None,
        description="Lua file run by the image's LuaJIT as the image's user (relative to the"
        " target file); default: the built-in one (require, parse, read a string and an int64)",
    )
    artifacts: tuple[str, ...] | None = Field(
        default=None,
        description="paths relative to the prefix that must exist; default: qjson.so,"
        " qjson.lua, qjson/lib.lua and qjson/table.lua",
    )
    gateway: Gateway | None = Field(
        default=None, description="start nginx from the image and POST JSON through qjson"
    )


class BuildahSettings(_Model):
    """How buildah runs the build steps."""

    isolation: Literal["chroot", "oci", "rootless"] = Field(
        default="chroot",
        description="buildah run --isolation; chroot works on rootless runners and where OCI"
        " isolation can't",
    )


def _cache_repository(value: str) -> str:
    """REGISTRY/NAMESPACE: a registry (a host with a dot or a port, or localhost) and a
    repository path, with no tag or digest (the units' tags are their hashes)."""
    match = _IMAGE_REF.fullmatch(value)
    registry = value.split("/", 1)[0]
    is_registry = "." in registry or ":" in registry or registry == "localhost"
    if not match or "/" not in value or not is_registry or match.group("tag") or "@" in value:
        raise ValueError(
            f"{value!r} is not a cache repository: use REGISTRY/NAMESPACE (a host with a dot or"
            " a port, or localhost, then a lower-case path; no tag or digest), for example"
            " ghcr.io/org/qjson-cache"
        )
    return value


class Cache(_Model):
    """A registry shared by CI runners: units built here are pushed, missing ones pulled."""

    repository: Annotated[str, AfterValidator(_cache_repository)] = Field(
        description="REGISTRY/NAMESPACE; a unit is kept there as NAMESPACE/unit-KIND:HASH"
    )
    push: bool = Field(
        default=True,
        description="push the units a build makes; false (or --no-cache-push) only reads",
    )
    tls_verify: bool = Field(
        default=True,
        description="check the registry's TLS certificate; false only for a registry on"
        " this machine or a network you trust (plain HTTP)",
    )


class TargetConfig(_Model):
    """A target: one config/NAME.toml file, the image to build and how."""

    description: str = Field(default="", description="the one line `invoke targets` shows")
    runtime: Runtime = Field(description="the image users deploy")
    builder: Builder = Field(description="the image the rocks are built in")
    rocks: tuple[Rock, ...] = Field(
        description="the rocks, installed in this order; a single [rock] table is short for"
        " a list of one"
    )
    luarocks: Luarocks = Field(default=Luarocks(), description="where dependencies come from")
    staging: Staging = Field(default=Staging(), description="the tree in the builder")
    output: Output = Field(description="the image a verified build tags")
    verify: Verify = Field(default=Verify(), description="what verification checks")
    buildah: BuildahSettings = Field(
        default=BuildahSettings(), description="how buildah runs the steps"
    )
    cache: Cache | None = Field(
        default=None,
        description="a registry of build units shared between runners; default: none (the"
        " units stay in local storage only)",
    )

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
    # Set on the per-platform views of a multi-platform build (see build/platforms.py);
    # None: the host's platform, as a target without output.platforms builds.
    platform: Platform | None = None
