"""`invoke sbom`'s flags: bad values are one error naming the flag, before any work."""

from __future__ import annotations

from pathlib import Path

import pytest

from qjson_tasks.app.sbom import check_format, check_output
from qjson_tasks.errors import ConfigError


def test_format() -> None:
    assert check_format("cyclonedx") == "cyclonedx" and check_format("spdx") == "spdx"
    with pytest.raises(
        ConfigError, match=r"^--format: 'xml' is not an SBOM format: use cyclonedx or spdx$"
    ):
        check_format("xml")


def test_output(tmp_path: Path) -> None:
    assert check_output(str(tmp_path / "s.json")) == tmp_path / "s.json"
    with pytest.raises(ConfigError, match=r"^--output: cannot write /nonexistent/s\.json: "):
        check_output("/nonexistent/s.json")
    with pytest.raises(ConfigError, match=r"^--output: .* is a directory"):
        check_output(str(tmp_path))
