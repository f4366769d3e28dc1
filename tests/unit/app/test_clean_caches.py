"""`clean --all` on a facade of another storage removes that storage's cargo caches only."""

from __future__ import annotations

from pathlib import Path

import pytest

from qjson_tasks.app.units import cargo_caches
from qjson_tasks.build.steps import CACHE_PREFIX
from qjson_tasks.host.buildah import Buildah
from qjson_tasks.host.storage import Storage
from tests.unit.fakes import FakeRunner


def cache(tmp: Path, name: str) -> Path:
    path = tmp / "buildah-cache-0" / f"{CACHE_PREFIX}{name}"
    path.mkdir(parents=True)
    return path


def test_another_storages_caches_are_under_its_tmpdir_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path / "default"))
    default = cache(tmp_path / "default", "b1-qjson-crates-target")
    storage = Storage(tmp_path / "s/root", tmp_path / "s/runroot", "overlay", tmp_path / "s/tmp")
    own = cache(tmp_path / "s/tmp", "b2-cargo-registry")
    runner = FakeRunner(tmp_path / "mounts")
    assert cargo_caches(Buildah(runner, storage=storage)) == [own]
    found = cargo_caches(Buildah(runner))
    assert default in found and own not in found
    assert cargo_caches() == found
