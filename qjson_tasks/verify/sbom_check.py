"""The `sbom` check: the SBOM the image's label names is in the store, has that sha256, and
lists exactly the files the image added over its base, each with its sha256."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

from qjson_tasks.build.labels import SBOM_LABEL
from qjson_tasks.sbom.facts import AddedFile
from qjson_tasks.verify.report import CheckResult

Entries = Sequence[tuple[PurePosixPath, os.stat_result]]


def sbom_files(document: bytes) -> dict[str, str]:
    """path -> sha256 of the file components of a CycloneDX document."""
    data = json.loads(document)
    return {
        component["name"]: next(
            (h["content"] for h in component.get("hashes", []) if h.get("alg") == "SHA-256"), ""
        )
        for component in data.get("components", [])
        if component.get("type") == "file"
    }


def _load(labels: Mapping[str, str], store: Path | None) -> tuple[bytes | None, str]:
    """The labelled document, or None and why not."""
    from qjson_tasks.sbom.store import stored_path

    sha256 = labels.get(SBOM_LABEL, "")
    if not sha256:
        return None, f"the image has no {SBOM_LABEL} label (not built by this qjson-tasks)"
    path = stored_path(sha256, store)
    try:
        document = path.read_bytes()
    except OSError as exc:
        return None, f"the SBOM {path} the label names cannot be read: {exc.strerror}"
    if hashlib.sha256(document).hexdigest() != sha256:
        return None, f"{path} does not have the sha256 the image's label gives ({sha256})"
    return document, str(path)


def compare(listed: Mapping[str, str], added: Sequence[AddedFile]) -> list[str]:
    found = {file.path: file.sha256 for file in added}
    findings = [f"{path} was added over the base but is not in the SBOM" for path in found]
    findings = [f for path, f in zip(found, findings, strict=True) if path not in listed]
    for path, sha256 in sorted(listed.items()):
        if path not in found:
            findings.append(f"{path} is in the SBOM but the image did not add it")
        elif found[path] != sha256:
            findings.append(f"{path} has sha256 {found[path]}, the SBOM says {sha256}")
    return findings


def check_sbom(
    labels: Mapping[str, str], root: Path, added: Entries, store: Path | None = None
) -> CheckResult:
    from qjson_tasks.sbom.collect import added_files

    document, where = _load(labels, store)
    if document is None:
        return CheckResult("sbom", False, where, (where,))
    files = added_files(root, added)
    findings = compare(sbom_files(document), files)
    detail = f"{where}: {len(files)} added files, each with its sha256"
    if findings:
        detail = "; ".join(findings[:3])
    return CheckResult("sbom", not findings, detail, tuple(findings))
