"""The SPDX 2.3 document: valid by spdx-tools' validator, deterministic, and the same facts
as the CycloneDX one (crates once, as the library's dependencies; base and builder roles)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from qjson_tasks.sbom.spdx import render, validation_errors
from tests.unit.sbom.test_cyclonedx import C_SO, MEMCHR, ONCE, SO, facts


def document() -> dict[str, Any]:
    return json.loads(render(facts()))


def relations(doc: dict[str, Any], kind: str) -> set[tuple[str, str]]:
    return {
        (r["spdxElementId"], r["relatedSpdxElement"])
        for r in doc["relationships"]
        if r["relationshipType"] == kind
    }


def test_the_document_validates_and_a_broken_one_does_not() -> None:
    text = render(facts())
    assert validation_errors(text) == []
    broken = json.loads(text)
    broken["files"][0]["checksums"] = [
        c for c in broken["files"][0]["checksums"] if c["algorithm"] != "SHA1"
    ]
    assert validation_errors(json.dumps(broken).encode()) != []


def test_same_facts_same_bytes_and_the_namespace_follows_the_content() -> None:
    assert render(facts()) == render(facts())
    other = json.loads(render(facts(timestamp=1)))
    assert other["documentNamespace"] != document()["documentNamespace"]
    assert document()["creationInfo"]["created"] == "2023-11-14T22:13:20Z"


def test_base_builder_rocks_crates_and_files() -> None:
    doc = document()
    packages = {p["SPDXID"]: p for p in doc["packages"]}
    purls = {ref["referenceLocator"] for p in doc["packages"] for ref in p.get("externalRefs", [])}
    assert {"pkg:cargo/memchr@2.5.0", "pkg:cargo/once_cell@1.17.0"} <= purls
    assert "pkg:luarocks/qjson-crates@0.1.0-1" in purls
    assert [p["name"] for p in doc["packages"]].count("memchr") == 1
    assert ("SPDXRef-image", "SPDXRef-base") in relations(doc, "DESCENDANT_OF")
    assert ("SPDXRef-builder", "SPDXRef-image") in relations(doc, "BUILD_TOOL_OF")
    files = {f["fileName"]: f["SPDXID"] for f in doc["files"]}
    assert set(files) == {f".{SO}", f".{C_SO}", "./usr/local/lib/luarocks/rocks-5.1/manifest"}
    depends = relations(doc, "DEPENDS_ON")
    crate_ids = {i for i, p in packages.items() if p["name"] in (MEMCHR.name, ONCE.name)}
    assert {(files[f".{SO}"], c) for c in crate_ids} == depends
    assert "cdemo 1.0-1: no Cargo.lock is known" in doc["comment"]


def test_no_crates_no_dependencies() -> None:
    plain = facts()
    doc = json.loads(
        render(replace(plain, rocks=tuple(replace(r, crates=()) for r in plain.rocks)))
    )
    assert relations(doc, "DEPENDS_ON") == set()
    assert "comment" not in doc
