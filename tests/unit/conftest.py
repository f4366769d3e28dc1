"""Unit tests never touch the machine's run directory: runs are claimed in a temporary one;
nor its SBOM store."""

from __future__ import annotations

from pathlib import Path

import pytest

from qjson_tasks.host import runs
from qjson_tasks.sbom import store


@pytest.fixture(autouse=True)
def run_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path_factory.mktemp("runs")
    directory.chmod(0o700)
    monkeypatch.setattr(runs, "run_dir", lambda: directory)
    return directory


@pytest.fixture(autouse=True)
def sbom_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path_factory.mktemp("sbom")
    directory.chmod(0o700)
    monkeypatch.setattr(store, "sbom_dir", lambda: directory)
    return directory
