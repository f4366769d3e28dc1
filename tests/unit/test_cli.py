"""The CLI layer: user mistakes are one ERROR line and exit 1, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from qjson_tasks.errors import ToolError
from qjson_tasks.rootless import check_subids
from tests.conftest import PROJECT_DIR


def invoke(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("show", "--target", "nope"), "ERROR unknown target 'nope' (known targets in"),
        (("show", "--target", "offline", "--config", "x.toml"), "ERROR give either --target"),
        (("build-runtime", "--config", "/nonexistent.toml"), "no such config file"),
        (("build-runtime", "--base-image", "Not An Image"), "ERROR --base-image: 'Not An Image'"),
        (("build-runtime", "--rock-source", "/nonexistent-rock"), "is not a directory"),
    ],
)
def test_bad_input_is_one_error_line(args: tuple[str, ...], expected: str) -> None:
    result = invoke(*args)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr


def test_targets_lists_every_config() -> None:
    result = invoke("targets")
    assert result.returncode == 0
    assert "offline (default):" in result.stdout and "apisix:" in result.stdout


def test_show_prints_the_resolved_config_as_toml() -> None:
    result = invoke("show", "--target", "offline")
    assert result.returncode == 0
    assert 'tree = "/qjson-rock"' in result.stdout
    assert str(PROJECT_DIR / "rocks" / "qjson-demo") in result.stdout


def test_missing_subordinate_ids_say_what_to_add(tmp_path: Path) -> None:
    subuid, subgid = tmp_path / "subuid", tmp_path / "subgid"
    subuid.write_text("someone:100000:65536\n")
    subgid.write_text("ci:100000:65536\n")
    with pytest.raises(ToolError, match=r"no entry in .*subuid.*usermod --add-subuids"):
        check_subids("ci", 1001, [subuid, subgid])
    subuid.write_text("1001:100000:65536\n")
    check_subids("ci", 1001, [subuid, subgid])
