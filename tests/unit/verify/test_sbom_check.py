"""The `sbom` check against a store on disk: what passes, and each way it fails."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path, PurePosixPath

from qjson_tasks.build.labels import SBOM_LABEL
from qjson_tasks.verify.sbom_check import check_sbom

LUA = "/usr/local/share/lua/5.1/qjson.lua"


def write_doc(store: Path, files: dict[str, str]) -> str:
    components = [
        {
            "type": "file",
            "name": p,
            "bom-ref": f"file:{p}",
            "hashes": [{"alg": "SHA-256", "content": s}],
        }
        for p, s in files.items()
    ]
    document = json.dumps({"components": components}).encode()
    digest = hashlib.sha256(document).hexdigest()
    store.mkdir(exist_ok=True)
    (store / f"{digest}.cdx.json").write_bytes(document)
    return digest


def image(root: Path, content: bytes) -> list[tuple[PurePosixPath, os.stat_result]]:
    path = root / LUA.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return [(PurePosixPath(LUA), path.lstat())]


def test_passes_when_the_files_and_hashes_match(tmp_path: Path) -> None:
    added = image(tmp_path / "root", b"return 1\n")
    digest = write_doc(tmp_path / "s", {LUA: hashlib.sha256(b"return 1\n").hexdigest()})
    result = check_sbom({SBOM_LABEL: digest}, tmp_path / "root", added, tmp_path / "s")
    assert result.passed, result
    assert result.detail.endswith(": 1 added files, each with its sha256")


def test_a_file_changed_after_the_sbom_fails(tmp_path: Path) -> None:
    digest = write_doc(tmp_path / "s", {LUA: hashlib.sha256(b"return 1\n").hexdigest()})
    added = image(tmp_path / "root", b"return 2\n")
    result = check_sbom({SBOM_LABEL: digest}, tmp_path / "root", added, tmp_path / "s")
    assert not result.passed
    now, then = (hashlib.sha256(text).hexdigest() for text in (b"return 2\n", b"return 1\n"))
    assert result.findings == (f"{LUA} has sha256 {now}, the SBOM says {then}",)


def test_an_added_file_missing_from_the_sbom_and_a_listed_one_not_added(tmp_path: Path) -> None:
    digest = write_doc(tmp_path / "s", {"/usr/local/gone.lua": "0" * 64})
    added = image(tmp_path / "root", b"x")
    result = check_sbom({SBOM_LABEL: digest}, tmp_path / "root", added, tmp_path / "s")
    assert result.findings == (
        f"{LUA} was added over the base but is not in the SBOM",
        "/usr/local/gone.lua is in the SBOM but the image did not add it",
    )


def test_no_label_no_document_or_another_document(tmp_path: Path) -> None:
    root = tmp_path / "root"
    added = image(root, b"x")
    assert "has no org.qjson-tasks.sbom.sha256 label" in check_sbom({}, root, added).detail
    missing = check_sbom({SBOM_LABEL: "f" * 64}, root, added, tmp_path / "s")
    assert not missing.passed and "cannot be read" in missing.detail
    digest = write_doc(tmp_path / "s", {})
    (tmp_path / "s" / f"{digest}.cdx.json").write_bytes(b"{}")
    changed = check_sbom({SBOM_LABEL: digest}, root, added, tmp_path / "s")
    assert not changed.passed and "does not have the sha256" in changed.detail
