"""Unit tests never touch the machine's run directory: runs are claimed in a temporary one."""

from __future__ import annotations

from pathlib import Path

import pytest

from qjson_tasks.host import runs


@pytest.fixture(autouse=True)
def run_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path_factory.mktemp("runs")
    directory.chmod(0o700)
    monkeypatch.setattr(runs, "run_dir", lambda: directory)
    return directory
