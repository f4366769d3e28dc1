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


@pytest.fixture(autouse=True)
def pending_pushes(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The unit cache's notes of owed pushes (and of remote image IDs), in directories of
    the test's own."""
    from qjson_tasks.build import unitcache

    directory = tmp_path_factory.mktemp("pending")
    directory.chmod(0o700)
    monkeypatch.setattr(unitcache, "pending_dir", lambda: directory)
    ids = tmp_path_factory.mktemp("remote-ids")
    ids.chmod(0o700)
    monkeypatch.setattr(unitcache, "remote_ids_dir", lambda: ids)
    return directory
