"""The default target built for real: the runtime image is Rust-free and its LuaJIT parses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from qjson_tasks.app.tools import Tools
from qjson_tasks.app.verify import run_verify
from qjson_tasks.build.names import UNIT_REPOSITORY
from qjson_tasks.build.pipeline import BuildResult
from qjson_tasks.config.model import Target
from qjson_tasks.host.buildah import Buildah
from qjson_tasks.verify.checks import CHECKS
from tests.conftest import PROJECT_DIR

ARTIFACTS = (
    "/usr/local/lib/lua/5.1/qjson.so",
    "/usr/local/share/lua/5.1/qjson.lua",
    "/usr/local/share/lua/5.1/qjson/lib.lua",
    "/usr/local/share/lua/5.1/qjson/table.lua",
)


def run_in(buildah: Buildah, image: str, argv: list[str]) -> str:
    with buildah.container(image, f"qjt-probe-{abs(hash(tuple(argv))) % 10**8}") as ctr:
        return buildah.run(ctr, argv, stream=False)


def test_build_reports_what_it_made(
    built: BuildResult, offline_target: Target, tools: Tools
) -> None:
    assert built.image_ref == offline_target.config.output.reference
    if built.verification is None:
        # Every unit was already built (and verified then); check the image now instead.
        assert "runtime" not in built.built
        assert run_verify(offline_target, tools).passed
    else:
        assert built.verification.passed
    assert built.rock_version == "0.1.0-1"
    assert built.files_added >= 4
    assert 0 < built.bytes_added < 2_000_000


def test_artifacts_sit_under_the_prefix(built: BuildResult, buildah: Buildah) -> None:
    out = run_in(buildah, built.image_ref, ["ls", "-l", *ARTIFACTS])
    for path in ARTIFACTS:
        assert path in out


# dash's `command -v a b` only reports the first name, so ask once per tool.
FIND_TOOLS = "for t in cargo rustc rustup; do command -v $t; done; true"


def test_no_cargo_or_rustc_in_the_runtime(built: BuildResult, buildah: Buildah) -> None:
    assert run_in(buildah, built.image_ref, ["sh", "-c", FIND_TOOLS]).strip() == ""


def test_the_builder_did_have_rust(tools: Tools, built: BuildResult) -> None:
    # The control for the test above: cargo was there to build the rock, only not shipped.
    builder = built.units["builder"].removeprefix("builder-")
    out = run_in(tools.buildah, f"{UNIT_REPOSITORY}/builder:{builder}", ["sh", "-c", FIND_TOOLS])
    assert "/usr/bin/cargo" in out and "/usr/bin/rustc" in out


def test_image_luajit_requires_qjson_and_reads_parsed_json(
    built: BuildResult, buildah: Buildah
) -> None:
    script = (
        'local q = require("qjson")\n'
        'local d = q.parse(\'{"body":{"model":"m-1","n":7}}\')\n'
        'print(d:get_str("body.model"), tonumber(d:get_i64("body.n")))'
    )
    out = run_in(buildah, built.image_ref, ["/usr/bin/luajit", "-e", script])
    assert out.split() == ["m-1", "7"]


def test_runtime_keeps_the_base_user(built: BuildResult, buildah: Buildah) -> None:
    info = buildah.inspect_image(built.image_ref)
    assert info is not None
    config = info.config
    assert config["User"] == "app"
    assert config["Labels"]["org.qjson-tasks.rock"] == "qjson-demo"
    assert config["Labels"]["org.qjson-tasks.rock.version"] == "0.1.0-1"


def test_verify_cli_passes_writes_json_and_leaves_the_image_unchanged(
    built: BuildResult, buildah: Buildah, tmp_path: Path
) -> None:
    before = buildah.inspect_image(built.image_ref)
    report = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "invoke", "verify", "--image", built.image_ref,
         "--json", str(report)],
        cwd=PROJECT_DIR, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = result.stdout.splitlines()[1 : 1 + len(CHECKS)]
    assert [row.split()[:2] for row in rows] == [[name, "PASS"] for name in CHECKS]
    assert "provenance (image labels):" in result.stdout
    data = json.loads(report.read_text())
    assert data["passed"] is True and len(data["checks"]) == len(CHECKS)
    after = buildah.inspect_image(built.image_ref)
    assert before is not None and after is not None
    assert after.image_id == before.image_id
    assert after.digest == before.digest
