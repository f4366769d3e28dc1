"""The shipped targets: each validates, renders, and says the right things about its image.

The facts checked here come from the real images (../shared/FACTS.md): where each image's
LuaJIT is, which user it runs as, which libc and release it is built on, so which builder
makes a library that loads there. Image references may be pinned by digest.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from qjson_tasks.app.containerfile import render_containerfile
from qjson_tasks.app.pinning import floating_refs
from qjson_tasks.app.targets import resolve_target
from qjson_tasks.app.tools import CONFIG_DIR, CONTAINERFILE_DIR
from qjson_tasks.config.load import list_targets, load_target, parse_target
from qjson_tasks.config.model import TargetConfig
from qjson_tasks.errors import ConfigError

CONFIG_DIR = CONFIG_DIR
OPENRESTY_LUAJIT = "/usr/local/openresty/luajit/bin/luajit"
DIGEST = "sha256:" + "0123456789abcdef" * 4
SHIPPED_TARGETS = {
    "offline",
    "apisix",
    "apisix-bullseye",
    "openresty",
    "openresty-alpine",
    "debian",
}


def config_of(name: str) -> TargetConfig:
    return load_target(CONFIG_DIR / f"{name}.toml").config


def test_every_target_of_the_issue_is_shipped() -> None:
    assert {path.stem for path in list_targets(CONFIG_DIR)} >= SHIPPED_TARGETS


@pytest.mark.parametrize("name", sorted(SHIPPED_TARGETS))
def test_target_validates_and_renders(name: str) -> None:
    target = resolve_target(name)
    text = render_containerfile(target)
    config = target.config
    assert text.count("\nFROM ") == 2
    assert f"FROM {config.builder.image} AS builder\nUSER root\n" in text
    assert f"--tree={config.staging.tree}" in text
    assert text.endswith(f"USER {config.runtime.user}\n")


# --- facts about the real images ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "base", "luajit", "user"),
    [
        ("apisix", "docker.io/apache/apisix:3.16.0-debian", OPENRESTY_LUAJIT, "apisix"),
        ("apisix-bullseye", "docker.io/apache/apisix:3.15.0-debian", OPENRESTY_LUAJIT, "apisix"),
        ("openresty", "docker.io/openresty/openresty:bookworm", OPENRESTY_LUAJIT, "root"),
        ("openresty-alpine", "docker.io/openresty/openresty:alpine", OPENRESTY_LUAJIT, "root"),
        ("debian", "localhost/qjson-tasks/debian-luajit:bookworm", "/usr/bin/luajit", "root"),
        ("offline", "localhost/qjson-tasks/bookworm-luajit:latest", "/usr/bin/luajit", "app"),
    ],
)
def test_runtime_image_luajit_and_user(name: str, base: str, luajit: str, user: str) -> None:
    runtime = config_of(name).runtime
    assert (runtime.base_image, runtime.luajit, runtime.user) == (base, luajit, user)
    # LuaJIT's default package paths include /usr/local/{share,lib}/lua/5.1 (APISIX's too).
    assert (runtime.prefix, runtime.lua_version) == ("/usr/local", "5.1")


@pytest.mark.parametrize(
    ("name", "builder"),
    [
        ("apisix", "docker.io/library/rust:1-bookworm"),
        ("apisix-bullseye", "docker.io/library/rust:1-bullseye"),
        ("openresty", "docker.io/library/rust:1-bookworm"),
        ("debian", "docker.io/library/rust:1-bookworm"),
    ],
)
def test_glibc_builders_are_pinned_to_the_runtimes_debian_release(name: str, builder: str) -> None:
    # A floating rust:1 is trixie (glibc 2.41): too new for bookworm (2.36) and bullseye (2.31).
    config = config_of(name).builder
    assert config.image == builder
    assert config.package_manager == "apt"
    assert {"git", "luajit", "libluajit-5.1-dev", "luarocks"} <= set(config.packages)


def test_debian_runtime_is_made_with_debians_luajit_as_root() -> None:
    bootstrap = config_of("debian").runtime.bootstrap
    assert bootstrap is not None
    assert (bootstrap.suite, bootstrap.packages, bootstrap.user) == ("bookworm", ("luajit",), None)


def test_alpine_builder_makes_a_musl_cdylib() -> None:
    builder = config_of("openresty-alpine").builder
    assert builder.image.startswith("docker.io/library/rust:1-alpine3.")
    assert builder.package_manager == "apk"
    assert builder.luarocks == "luarocks-5.1"
    assert {"luarocks5.1", "luajit-dev", "musl-dev", "gcc", "make", "git"} <= set(builder.packages)
    # Without it Rust links musl statically and drops the cdylib crate type.
    assert builder.env["RUSTFLAGS"] == "-C target-feature=-crt-static"
    assert builder.env["CARGO_PROFILE_RELEASE_STRIP"] == "symbols"


def test_every_builder_strips_the_library() -> None:
    for name in SHIPPED_TARGETS:
        assert config_of(name).builder.env.get("CARGO_PROFILE_RELEASE_STRIP") == "symbols", name


def test_no_builder_floats_on_rust_1() -> None:
    for name in SHIPPED_TARGETS:
        image = config_of(name).builder.image
        assert not image.endswith(("rust:1", "rust:latest", "rust")), (name, image)


def test_only_local_images_are_exempt_from_the_floating_warning() -> None:
    floating = {
        name: [ref.field for ref in floating_refs(config_of(name))] for name in SHIPPED_TARGETS
    }
    assert floating == {
        "offline": [],
        "debian": ["builder.image"],
        "apisix": ["runtime.base_image", "builder.image"],
        "apisix-bullseye": ["runtime.base_image", "builder.image"],
        "openresty": ["runtime.base_image", "builder.image"],
        "openresty-alpine": ["runtime.base_image", "builder.image"],
    }


# --- the rendered Containerfile per kind of builder -----------------------------------------


def test_alpine_containerfile_passes_rustflags_to_the_rock_install() -> None:
    text = render_containerfile(resolve_target("openresty-alpine"))
    assert "RUN apk add --no-cache git make gcc musl-dev luajit luajit-dev luarocks5.1\n" in text
    assert (
        "RUN CARGO_PROFILE_RELEASE_STRIP=symbols RUSTFLAGS='-C target-feature=-crt-static'"
        " luarocks-5.1 --lua-version=5.1 install --tree=/qjson-rock lua-qjson 0.1.0\n"
    ) in text
    assert "DEBIAN_FRONTEND" not in text


def test_apt_containerfile_updates_and_installs_in_one_run() -> None:
    text = render_containerfile(resolve_target("apisix"))
    assert (
        "ARG DEBIAN_FRONTEND=noninteractive\n"
        "RUN apt-get update \\\n"
        " && apt-get install -y --no-install-recommends git luajit libluajit-5.1-dev luarocks \\\n"
        " && apt-get clean\n"
    ) in text


def test_a_made_base_says_how_to_make_it() -> None:
    text = render_containerfile(resolve_target("debian"))
    assert "not pulled: invoke base-image --target debian\n" in text
    apisix = render_containerfile(resolve_target("apisix"))
    assert "invoke base-image" not in apisix


def test_setup_scripts_keep_their_own_run(tmp_path: Path) -> None:
    data = tomllib.loads((CONFIG_DIR / "apisix.toml").read_text())
    data["builder"]["setup"] = ["echo one", "echo two"]
    path = tmp_path / "setup.toml"
    path.write_text(tomli_w.dumps(data))
    text = render_containerfile(load_target(path))
    assert " && apt-get clean\nRUN echo one\nRUN echo two\n" in text


def test_no_committed_containerfile_without_a_target() -> None:
    committed = {path.name for path in CONTAINERFILE_DIR.glob("*.Containerfile")}
    assert committed == {f"{path.stem}.Containerfile" for path in list_targets(CONFIG_DIR)}


# --- digests in image references -------------------------------------------------------------

MINIMAL: dict[str, Any] = {
    "runtime": {
        "base_image": "docker.io/library/debian:bookworm-slim",
        "luajit": "/usr/bin/luajit",
    },
    "builder": {"image": "docker.io/library/rust:1-bookworm"},
    "rock": {"name": "lua-qjson", "version": "==0.1.0"},
    "output": {"image": "localhost/qjson-tasks/test"},
}


def with_images(base: str, builder: str) -> str:
    data = {**MINIMAL, "runtime": {**MINIMAL["runtime"], "base_image": base}}
    data["builder"] = {"image": builder}
    return tomli_w.dumps(data)


@pytest.mark.parametrize(
    "ref",
    [
        f"docker.io/apache/apisix:3.16.0-debian@{DIGEST}",
        f"docker.io/apache/apisix@{DIGEST}",
        f"debian@{DIGEST}",
        f"debian:bookworm-slim@{DIGEST}",
        f"registry.example.org:5000/team/rust:1-bookworm@{DIGEST}",
        f"localhost/qjson-tasks/bookworm-luajit:latest@{DIGEST}",
    ],
)
def test_digest_references_are_accepted(ref: str) -> None:
    config = parse_target(with_images(ref, ref), Path("t.toml"))
    assert (config.runtime.base_image, config.builder.image) == (ref, ref)
    assert floating_refs(config) == []


@pytest.mark.parametrize(
    "ref",
    [
        "docker.io/apache/apisix@sha256:abc",
        f"docker.io/apache/apisix@sha512:{'0' * 128}",
        f"docker.io/apache/apisix@{DIGEST.upper()}",
        f"docker.io/apache/apisix:3.16@@{DIGEST}",
        f"docker.io/apache/apisix@{DIGEST}:3.16",
    ],
)
@pytest.mark.parametrize("field", ["runtime.base_image", "builder.image"])
def test_malformed_digests_are_rejected(ref: str, field: str) -> None:
    base, builder = (ref, MINIMAL["builder"]["image"])
    if field == "builder.image":
        base, builder = MINIMAL["runtime"]["base_image"], ref
    with pytest.raises(ConfigError) as info:
        parse_target(with_images(base, builder), Path("t.toml"))
    assert str(info.value).startswith(f"t.toml: {field}: ")
    assert "[registry/]name[:tag][@sha256:<64 hex>]" in str(info.value)
