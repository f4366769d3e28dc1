"""Builds against a base laid out like the real APISIX image, and a build whose check fails.

The APISIX-like base keeps LuaJIT at /usr/local/openresty/luajit/bin/luajit, runs as user
`apisix` (uid 6360, as 636 is the base's own user) in /usr/local/apisix with an entrypoint,
cmd, env and a port: the runtime image must keep all of that while the tree lands in
/usr/local as root.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from qjson_tasks.app.build import run_build
from qjson_tasks.app.tools import Tools
from qjson_tasks.build.pipeline import BuildResult
from qjson_tasks.config.load import load_target
from qjson_tasks.config.model import Target
from qjson_tasks.errors import StepError
from qjson_tasks.host.buildah import Buildah
from tests.conftest import PROJECT_DIR
from tests.integration.conftest import OURS, SUFFIX, TEST_REPOSITORY

OPENRESTY_LUAJIT = "/usr/local/openresty/luajit/bin/luajit"
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


@pytest.fixture(scope="module")
def apisix_like_base(built: BuildResult, buildah: Buildah) -> str:
    """A base shaped like apache/apisix (debian flavour), made from the bookworm base."""
    with buildah.container(
        "localhost/qjson-tasks/bookworm-luajit:latest", f"{OURS}apisix-like-{SUFFIX}"
    ) as ctr:
        script = (
            "set -e; mkdir -p /usr/local/openresty/luajit/bin /usr/local/apisix;"
            f" cp /usr/bin/luajit {OPENRESTY_LUAJIT};"
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
    target = write_config(tmp_path, "apisix-like", apisix_like_base, OPENRESTY_LUAJIT, "apisix")
    result = run_build(target, tools)

    assert result.verification is not None and result.verification.passed
    smoke = next(c for c in result.verification.checks if c.name == "smoke")  # type: ignore[attr-defined]
    assert f"{OPENRESTY_LUAJIT} as apisix: qjson smoke ok" in smoke.detail
    info = tools.buildah.inspect_image(result.image_ref)
    base = tools.buildah.inspect_image(apisix_like_base)
    assert info is not None and base is not None
    mine, theirs = info.config, base.config
    for field in ("User", "Entrypoint", "Cmd", "WorkingDir", "Env", "ExposedPorts"):
        assert mine.get(field) == theirs.get(field), field
    assert mine["User"] == "apisix"


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
