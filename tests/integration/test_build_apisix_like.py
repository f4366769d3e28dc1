"""Builds against a base laid out like the real APISIX image, and a build whose check fails.

The APISIX-like base is made from the gateway target's base (nginx, lua-nginx-module and
luajit2, OpenResty's LuaJIT fork): it keeps LuaJIT at /usr/local/openresty/luajit/bin/luajit
and nginx at /usr/local/openresty/nginx/sbin/nginx, runs as user `apisix` (uid 6360, as 636
is the base's own user) in /usr/local/apisix with an entrypoint, cmd, env and a port: the
runtime image must keep all of that while the tree lands in /usr/local as root. Its build
runs the apisix target's own gateway check (config/apisix/qjson.conf: APISIX's Lua paths)
with a real nginx worker.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import tomli_w

from qjson_tasks.app.build import run_build
from qjson_tasks.app.targets import resolve_target
from qjson_tasks.app.tools import Tools
from qjson_tasks.app.verify import run_verify
from qjson_tasks.build.pipeline import BuildResult
from qjson_tasks.config.load import load_target
from qjson_tasks.config.model import Target
from qjson_tasks.errors import StepError
from qjson_tasks.host.buildah import Buildah
from qjson_tasks.verify.report import VerifyReport
from tests.conftest import PROJECT_DIR
from tests.integration.conftest import OURS, SUFFIX, TEST_REPOSITORY

OPENRESTY_LUAJIT = "/usr/local/openresty/luajit/bin/luajit"
OPENRESTY_NGINX = "/usr/local/openresty/nginx/sbin/nginx"
APISIX_LIKE = f"{TEST_REPOSITORY}/apisix-like-base-{SUFFIX}:latest"

CONFIG = """
description = "APISIX-like base, demo rock"

[runtime]
base_image = "{base}"
luajit = "{luajit}"
user = "{user}"

[builder]
image = "localhost/qjson-tasks/bookworm-luajit:latest"
packages = ["cargo", "rustc", "luarocks", "libluajit-5.1-dev", "gcc", "libc6-dev", "make"]
env = {{ CARGO_PROFILE_RELEASE_STRIP = "symbols" }}

[rock]
name = "qjson-demo"
version = "~> 0.1"
source = "{rock}"

[output]
image = "{output}"

{verify}
"""


def write_config(
    tmp: Path, name: str, base: str, luajit: str, user: str, verify: str = ""
) -> Target:
    path = tmp / f"{name}.toml"
    path.write_text(
        CONFIG.format(
            base=base,
            luajit=luajit,
            user=user,
            rock=PROJECT_DIR / "rocks" / "qjson-demo",
            output=f"{TEST_REPOSITORY}/{name}-{SUFFIX}",
            verify=verify,
        )
    )
    return load_target(path)


def apisix_gateway_check() -> str:
    """The apisix target's [verify.gateway], for the stand-in: Debian's nginx loads the Lua
    module from modules-enabled, where OpenResty's has it built in."""
    gateway = resolve_target("apisix").config.verify.gateway
    assert gateway is not None and gateway.nginx == OPENRESTY_NGINX
    data = gateway.model_dump(mode="json", exclude_none=True)
    data["snippet"] = str(PROJECT_DIR / "config" / gateway.snippet)
    data["modules"] = ["/etc/nginx/modules-enabled/*.conf"]
    return tomli_w.dumps({"verify": {"gateway": data}})


@pytest.fixture(scope="module")
def apisix_like_base(built: BuildResult, gateway_base: str, buildah: Buildah) -> str:
    """A base shaped like apache/apisix (debian flavour), made from the gateway base; the
    offline build (`built`) made the builder unit its config shares."""
    with buildah.container(gateway_base, f"{OURS}apisix-like-{SUFFIX}") as ctr:
        script = (
            "set -e; mkdir -p /usr/local/openresty/luajit/bin /usr/local/openresty/nginx/sbin"
            " /usr/local/apisix;"
            f" cp /usr/bin/luajit {OPENRESTY_LUAJIT}; cp /usr/sbin/nginx {OPENRESTY_NGINX};"
            " useradd --uid 6360 --no-create-home --shell /bin/false apisix;"
            " printf '#!/bin/sh\\nexec \"$@\"\\n' > /docker-entrypoint.sh;"
            " chmod 755 /docker-entrypoint.sh"
        )
        buildah.run(ctr, ["sh", "-c", script], user="0:0", stream=False)
        buildah.runner.run(
            ["buildah", "config", "--user", "apisix", "--workingdir", "/usr/local/apisix",
             "--entrypoint", '["/docker-entrypoint.sh"]', "--cmd", "docker-start",
             "--port", "9080/tcp", "--env", "APISIX_STAND_ALONE=true", ctr]
        )  # fmt: skip
        buildah.commit(ctr, APISIX_LIKE)
    return APISIX_LIKE


def test_apisix_like_runtime_keeps_its_contract(
    apisix_like_base: str, tools: Tools, tmp_path: Path
) -> None:
    target = write_config(
        tmp_path,
        "apisix-like",
        apisix_like_base,
        OPENRESTY_LUAJIT,
        "apisix",
        verify=apisix_gateway_check(),
    )
    result = run_build(target, tools)

    assert result.verification is not None and result.verification.passed
    checks = {c.name: c for c in result.verification.checks}  # type: ignore[attr-defined]
    assert f"{OPENRESTY_LUAJIT} as apisix: qjson smoke ok" in checks["smoke"].detail
    # qjson.so in /usr/local is found through APISIX's cpath, which ends with `;;`.
    assert checks["gateway"].detail == (
        f"{OPENRESTY_NGINX} as apisix: POST /qjson answered 200 'model=gpt-4o n=42 user=ada'"
    )
    info = tools.buildah.inspect_image(result.image_ref)
    base = tools.buildah.inspect_image(apisix_like_base)
    assert info is not None and base is not None
    mine, theirs = info.config, base.config
    for field in ("User", "Entrypoint", "Cmd", "WorkingDir", "Env", "ExposedPorts"):
        assert mine.get(field) == theirs.get(field), field
    assert mine["User"] == "apisix"


def with_extra_lua_paths(tmp: Path, prefix: str) -> str:
    """config/apisix/qjson.conf with a prefix's Lua paths added in front, as APISIX's
    extra_lua_path and extra_lua_cpath add them."""
    text = (PROJECT_DIR / "config" / "apisix" / "qjson.conf").read_text()
    for directive, entry in (
        ("lua_package_path", f"{prefix}/share/lua/5.1/?.lua;"),
        ("lua_package_cpath", f"{prefix}/lib/lua/5.1/?.so;"),
    ):
        assert f'\n{directive} "' in text
        text = text.replace(f'\n{directive} "', f'\n{directive} "{entry}', 1)
    path = tmp / "extra.conf"
    path.write_text(text)
    return str(path)


def failing(report: VerifyReport) -> set[str]:
    return {check.name for check in report.failed()}


def test_a_prefix_off_apisixs_paths_needs_extra_lua_paths(
    apisix_like_base: str, tools: Tools, tmp_path: Path
) -> None:
    target = write_config(
        tmp_path,
        "apisix-like-opt",
        apisix_like_base,
        OPENRESTY_LUAJIT,
        "apisix",
        verify=apisix_gateway_check(),
    )
    runtime = target.config.runtime.model_copy(update={"prefix": "/opt/qjson"})
    target = Target(target.name, target.path, target.config.model_copy(update={"runtime": runtime}))
    image = run_build(target, tools, verify=False).image_ref
    gateway = target.config.verify.gateway
    assert gateway is not None
    extra = gateway.model_copy(update={"snippet": with_extra_lua_paths(tmp_path, "/opt/qjson")})
    verify = target.config.verify.model_copy(update={"gateway": extra})
    wired = Target(target.name, target.path, target.config.model_copy(update={"verify": verify}))

    plain, with_extra = (
        run_verify(target, tools, image=image),
        run_verify(wired, tools, image=image),
    )

    # The smoke test's bare LuaJIT searches only its defaults, so it fails both times; a
    # worker with APISIX's paths can't find qjson either, one with the extra paths can.
    assert failing(plain) == {"smoke", "gateway"}, plain.table()
    [gateway_check] = [c for c in plain.checks if c.name == "gateway"]
    assert "module 'qjson' not found" in gateway_check.detail
    assert failing(with_extra) == {"smoke"}, with_extra.table()


def test_a_failed_verification_keeps_the_previous_image_under_the_tag(
    built: BuildResult, tools: Tools, tmp_path: Path
) -> None:
    base = "localhost/qjson-tasks/bookworm-luajit:latest"
    good = write_config(tmp_path, "keep-tag", base, "/usr/bin/luajit", "app")
    first = run_build(good, tools)
    (tmp_path / "failing.lua").write_text('error("planted smoke failure")\n')
    bad = write_config(
        tmp_path,
        "keep-tag",
        base,
        "/usr/bin/luajit",
        "app",
        verify='[verify]\nsmoke_script = "failing.lua"',
    )
    images_before = {i.image_id for i in tools.buildah.images()}

    with pytest.raises(StepError) as caught:
        run_build(bad, tools)

    assert caught.value.step == "verify"
    assert "planted smoke failure" in str(caught.value)
    assert tools.buildah.image_id(first.image_ref) == first.image_id
    assert {i.image_id for i in tools.buildah.images()} == images_before
