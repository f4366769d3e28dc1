"""The SBOM of real images: written by the build, named by a label, valid against the
official CycloneDX schema, listing what the image added (the verify check agrees), the same
bytes again from `invoke sbom`; for the crate-dependent rock every crate of its Cargo.lock.

A planted fault (a file changed after the SBOM was written) is in test_verify_faults.py
("changed-after-sbom"), with the other faults."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from qjson_tasks.app.build import run_build
from qjson_tasks.app.sbom import write_sbom
from qjson_tasks.app.targets import resolve_target
from qjson_tasks.app.tools import Tools
from qjson_tasks.app.units import current_plan
from qjson_tasks.app.verify import run_verify
from qjson_tasks.build.labels import BASE_ID_LABEL, BUILDER_ID_LABEL, SBOM_LABEL
from qjson_tasks.build.pipeline import BuildResult
from qjson_tasks.config.model import Target
from qjson_tasks.rocks.cargo import pinned_crates
from qjson_tasks.sbom.cyclonedx import validation_errors
from qjson_tasks.sbom.store import provenance_path, stored_path
from qjson_tasks.verify.sbom_check import sbom_files
from tests.conftest import PROJECT_DIR
from tests.integration.conftest import retarget

# The interpreter running the tests (the rootless suite has its own venv).
INVOKE = [sys.executable, "-m", "invoke", "--search-root", str(PROJECT_DIR)]


def stored(tools: Tools, image: str) -> tuple[dict[str, str], bytes]:
    info = tools.buildah.inspect_image(image)
    assert info is not None
    path = stored_path(info.labels[SBOM_LABEL])
    return info.labels, path.read_bytes()


def test_the_build_writes_the_sbom_its_label_names(built: BuildResult, tools: Tools) -> None:
    labels, document = stored(tools, built.image_ref)
    assert hashlib.sha256(document).hexdigest() == labels[SBOM_LABEL]
    assert built.sbom == str(stored_path(labels[SBOM_LABEL]))
    assert validation_errors(document) == []
    doc: dict[str, Any] = json.loads(document)
    assert doc["metadata"]["timestamp"] != ""
    [base] = doc["metadata"]["component"]["pedigree"]["ancestors"]
    assert base["purl"].startswith(f"pkg:oci/bookworm-luajit@sha256:{labels[BASE_ID_LABEL]}")
    tools_ = {t["bom-ref"]: t for t in doc["metadata"]["tools"]["components"]}
    assert tools_["builder-image"]["version"] == f"sha256:{labels[BUILDER_ID_LABEL]}"
    purls = sorted(c["purl"] for c in doc["components"] if "purl" in c)
    assert purls == ["pkg:luarocks/qjson-demo@0.1.0-1"]  # its Cargo.lock has no crates
    assert "/usr/local/lib/lua/5.1/qjson.so" in sbom_files(document)
    assert len(sbom_files(document)) == built.files_added


def test_the_sbom_check_sees_the_same_files(
    built: BuildResult, offline_target: Target, tools: Tools
) -> None:
    report = run_verify(offline_target, tools, image=built.image_ref)
    [check] = [c for c in report.checks if c.name == "sbom"]
    assert check.passed, report.table()
    assert check.detail.endswith(f": {built.files_added} added files, each with its sha256")


def test_invoke_sbom_writes_the_same_bytes_from_the_image(
    built: BuildResult, offline_target: Target, tools: Tools, tmp_path: Path
) -> None:
    labels, document = stored(tools, built.image_ref)
    written = write_sbom(offline_target, tools, str(tmp_path / "s.json"), built.image_ref)
    assert written.sha256 == written.labelled == labels[SBOM_LABEL]
    assert (tmp_path / "s.json").read_bytes() == document


@pytest.fixture(scope="module")
def crates_built(tools: Tools) -> tuple[Target, BuildResult]:
    target = retarget(resolve_target("crates"), "crates")
    return target, run_build(target, tools, verify=True)


@pytest.fixture(scope="module")
def crates_sbom(tools: Tools, crates_built: tuple[Target, BuildResult]) -> bytes:
    return stored(tools, crates_built[1].image_ref)[1]


def test_the_spdx_document_of_the_crates_image(
    crates_built: tuple[Target, BuildResult], tools: Tools, tmp_path: Path
) -> None:
    from qjson_tasks.sbom.spdx import validation_errors as spdx_errors

    target, result = crates_built
    out = tmp_path / "crates.spdx.json"
    written = write_sbom(target, tools, str(out), result.image_ref, "spdx")
    assert written.path == out and spdx_errors(out.read_bytes()) == []
    doc = json.loads(out.read_bytes())
    text = (PROJECT_DIR / "rocks" / "qjson-crates" / "Cargo.lock").read_text()
    expected = {f"pkg:cargo/{c.name}@{c.version}" for c in pinned_crates(text, "x")}
    purls = [r["referenceLocator"] for p in doc["packages"] for r in p.get("externalRefs", [])]
    assert sorted(p for p in purls if p.startswith("pkg:cargo/")) == sorted(expected)
    assert len(doc["files"]) == result.files_added


def test_every_crate_of_the_cargo_lock_once_as_the_librarys_dependency(
    crates_sbom: bytes,
) -> None:
    assert validation_errors(crates_sbom) == []
    doc = json.loads(crates_sbom)
    text = (PROJECT_DIR / "rocks" / "qjson-crates" / "Cargo.lock").read_text()
    expected = sorted(
        (f"pkg:cargo/{c.name}@{c.version}", c.checksum) for c in pinned_crates(text, "x")
    )
    crates = [c for c in doc["components"] if c.get("purl", "").startswith("pkg:cargo/")]
    assert sorted((c["purl"], c["hashes"][0]["content"]) for c in crates) == expected
    graph = {d["ref"]: d.get("dependsOn", []) for d in doc["dependencies"]}
    library = graph["file:/usr/local/lib/lua/5.1/qjson.so"]
    assert sorted(library) == sorted(c["bom-ref"] for c in crates)
    assert doc["metadata"].get("properties", []) == []  # no rock with unknown crates


@pytest.mark.parametrize(
    ("flags", "error"),
    [
        (["--format", "xml"], "ERROR --format: 'xml' is not an SBOM format: use cyclonedx or spdx"),
        (
            ["--output", "/nonexistent/s.json"],
            "ERROR --output: cannot write /nonexistent/s.json: /nonexistent is not a writable"
            " directory",
        ),
        (
            ["--image", "localhost/qjson-tasks-test/not-there:1"],
            "ERROR --image: 'localhost/qjson-tasks-test/not-there:1' is not in local storage",
        ),
    ],
)
def test_bad_flags_are_one_error_line(
    flags: list[str], error: str, built: BuildResult, tmp_path: Path
) -> None:
    given = {"--output": str(tmp_path / "s.json"), "--image": built.image_ref}
    given.update(zip(flags[::2], flags[1::2], strict=True))
    argv = [*INVOKE, "sbom", *(word for pair in given.items() for word in pair)]
    done = subprocess.run(argv, cwd=PROJECT_DIR, capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [error]


def test_the_runtime_made_again_is_the_same_image_with_its_provenance_beside_the_sbom(
    built: BuildResult, offline_target: Target, tools: Tools
) -> None:
    # Only the runtime unit is made again (its name removed; the image keeps its tags).
    plan = current_plan(offline_target, tools)
    tools.buildah.rmi(plan.runtime.image)
    again = run_build(offline_target, tools, verify=True)
    assert again.built == ("runtime",)
    assert again.image_id == built.image_id and again.sbom == built.sbom
    path = provenance_path(again.image_id, Path(again.sbom).parent)
    statement = json.loads(path.read_bytes())
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["subject"][0]["digest"] == {"sha256": again.image_id}
    predicate = statement["predicate"]
    labels, document = stored(tools, again.image_ref)
    sbom_sha256 = hashlib.sha256(document).hexdigest()
    assert predicate["runDetails"]["byproducts"][0]["digest"] == {"sha256": sbom_sha256}
    config = offline_target.path.read_bytes()
    parameters = predicate["buildDefinition"]["externalParameters"]
    assert parameters["config"]["digest"] == {"sha256": hashlib.sha256(config).hexdigest()}
    names = {d["name"]: d for d in predicate["buildDefinition"]["resolvedDependencies"]}
    assert names[f"base:{offline_target.config.runtime.base_image}"]["digest"] == {
        "sha256": labels[BASE_ID_LABEL]
    }
    assert names["rock:qjson-demo"]["uri"] == "pkg:luarocks/qjson-demo@0.1.0-1"
