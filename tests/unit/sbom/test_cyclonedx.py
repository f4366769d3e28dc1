"""The CycloneDX document: valid against the official schema, byte-deterministic, and
saying exactly what the facts say (base as ancestor, builder as a tool, rocks, crates once,
files with sha256, native libraries depending on their rock's crates)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from qjson_tasks.build.labels import BASE_ID_LABEL, BASE_LABEL, BUILDER_ID_LABEL, BUILDER_LABEL
from qjson_tasks.sbom.cyclonedx import render, validation_errors
from qjson_tasks.sbom.facts import AddedFile, Crate, SbomFacts, make_facts

SO = "/usr/local/lib/lua/5.1/qjson.so"
C_SO = "/usr/local/lib/lua/5.1/cdemo.so"
MEMCHR = Crate("memchr", "2.5.0", "2d" * 32)
ONCE = Crate("once_cell", "1.17.0", "48" * 32)


def rock_label(version: str, spec: str, source: str) -> str:
    return json.dumps({"version": version, "rockspec_sha256": spec, "source_sha256": source})


def facts(**changes: Any) -> SbomFacts:
    labels = {
        "org.qjson-tasks.rocks.qjson-crates": rock_label("0.1.0-1", "a" * 64, "b" * 64),
        "org.qjson-tasks.rocks.cdemo": rock_label("1.0-1", "c" * 64, ""),
        BASE_LABEL: "localhost/qjson-tasks/bookworm-luajit:latest",
        BASE_ID_LABEL: "d" * 64,
        BUILDER_LABEL: "localhost/qjson-tasks/bookworm-luajit:latest",
        BUILDER_ID_LABEL: "e" * 64,
    }
    made = make_facts(
        target="crates",
        timestamp=1_700_000_000,
        labels=labels,
        crates={"qjson-crates": (ONCE, MEMCHR)},
        owned={"qjson-crates": [SO], "cdemo": [C_SO]},
        files=[
            AddedFile(SO, "1" * 64, "1" * 40),
            AddedFile(C_SO, "2" * 64, "2" * 40),
            AddedFile("/usr/local/lib/luarocks/rocks-5.1/manifest", "3" * 64, "3" * 40),
        ],
        tool_version="0.1.0",
    )
    return replace(made, **changes)


def document(value: SbomFacts | None = None) -> dict[str, Any]:
    return json.loads(render(value or facts()))


def by_ref(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["bom-ref"]: c for c in doc["components"]}


def depends(doc: dict[str, Any]) -> dict[str, list[str]]:
    return {d["ref"]: d.get("dependsOn", []) for d in doc["dependencies"]}


def test_the_document_validates_against_the_official_schema() -> None:
    text = render(facts())
    assert validation_errors(text) == []
    assert json.loads(text)["specVersion"] == "1.6"


def test_a_broken_document_does_not_validate() -> None:
    # The validator's control: the same document with a component lacking its name.
    doc = document()
    del doc["components"][0]["name"]
    assert validation_errors(json.dumps(doc).encode()) != []


def test_same_facts_same_bytes_and_the_serial_follows_the_content() -> None:
    first, second = render(facts()), render(facts())
    assert first == second
    other = render(facts(timestamp=1_700_000_001))
    assert json.loads(other)["serialNumber"] != json.loads(first)["serialNumber"]
    assert json.loads(first)["metadata"]["timestamp"] == "2023-11-14T22:13:20+00:00"


def test_base_is_the_images_ancestor_and_builder_a_tool_not_a_component() -> None:
    doc = document()
    root = doc["metadata"]["component"]
    assert root["name"] == "qjson-tasks runtime of target crates" and "version" not in root
    [base] = root["pedigree"]["ancestors"]
    assert base["purl"].startswith(f"pkg:oci/bookworm-luajit@sha256:{'d' * 64}?")
    tools = {t["bom-ref"]: t for t in doc["metadata"]["tools"]["components"]}
    assert tools["builder-image"]["hashes"] == [{"alg": "SHA-256", "content": "e" * 64}]
    assert tools["tool:qjson-tasks"]["version"] == "0.1.0"
    assert all(c["type"] != "container" for c in doc["components"])


def test_rocks_with_their_rockspec_and_source_hashes() -> None:
    rock = by_ref(document())["rock:qjson-crates@0.1.0-1"]
    assert rock["purl"] == "pkg:luarocks/qjson-crates@0.1.0-1"
    properties = {p["name"]: p["value"] for p in rock["properties"]}
    assert properties == {
        "qjson-tasks:rockspec:sha256": "a" * 64,
        "qjson-tasks:source:sha256": "b" * 64,
    }
    assert rock["hashes"] == [{"alg": "SHA-256", "content": "b" * 64}]


def test_each_crate_once_and_the_library_depends_on_them() -> None:
    doc = document(facts())
    crates = [c for c in doc["components"] if c.get("purl", "").startswith("pkg:cargo/")]
    assert sorted((c["purl"], c["hashes"][0]["content"]) for c in crates) == [
        ("pkg:cargo/memchr@2.5.0", MEMCHR.checksum),
        ("pkg:cargo/once_cell@1.17.0", ONCE.checksum),
    ]
    graph = depends(doc)
    assert graph[f"file:{SO}"] == ["crate:memchr@2.5.0", "crate:once_cell@1.17.0"]
    assert graph["rock:qjson-crates@0.1.0-1"] == [f"file:{SO}"]
    assert graph[f"file:{C_SO}"] == []  # the C rock's library: no crates
    assert graph["image"] == [
        "file:/usr/local/lib/luarocks/rocks-5.1/manifest",
        "rock:cdemo@1.0-1",
        "rock:qjson-crates@0.1.0-1",
    ]


def test_a_crate_two_rocks_share_is_listed_once() -> None:
    shared = facts()
    rocks = tuple(replace(rock, crates=(MEMCHR,)) for rock in shared.rocks)
    doc = document(replace(shared, rocks=rocks))
    assert [c["bom-ref"] for c in doc["components"]].count("crate:memchr@2.5.0") == 1


def test_a_rock_without_cargo_lock_is_listed_with_a_warning() -> None:
    doc = document()
    cdemo = by_ref(doc)["rock:cdemo@1.0-1"]
    properties = {p["name"]: p["value"] for p in cdemo["properties"]}
    assert properties["qjson-tasks:crates"] == "unknown: no Cargo.lock"
    assert properties["qjson-tasks:source:sha256"] == "unknown (not locked)"
    warnings = [p["value"] for p in doc["metadata"]["properties"]]
    assert warnings == [
        "cdemo 1.0-1: no Cargo.lock is known for it, so the crates compiled into it (if any)"
        " are unknown"
    ]


def test_every_added_file_with_its_sha256() -> None:
    files = {
        c["name"]: c["hashes"][0]["content"]
        for c in document()["components"]
        if c["type"] == "file"
    }
    assert files == {
        SO: "1" * 64,
        C_SO: "2" * 64,
        "/usr/local/lib/luarocks/rocks-5.1/manifest": "3" * 64,
    }
