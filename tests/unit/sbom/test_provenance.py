"""The in-toto Statement v1 with a SLSA v1 predicate: subject, build definition, resolved
dependencies with digests, the builder's id, the SBOM as a byproduct."""

from __future__ import annotations

import json

from qjson_tasks.sbom.provenance import PREDICATE_TYPE, STATEMENT_TYPE, statement
from tests.unit.sbom.test_cyclonedx import MEMCHR, ONCE, facts


def make() -> dict[str, object]:
    return json.loads(
        statement(
            facts(),
            image="localhost/qjson-tasks/crates-runtime:latest",
            image_id="9" * 64,
            inputs={"config": ("crates.toml", "1" * 64), "lock": ("crates.lock", "2" * 64)},
            sbom_sha256="3" * 64,
            units={"runtime": "r", "builder": "b", "rock-tree": "t"},
        )
    )


def test_the_statement_names_the_image_by_its_id() -> None:
    document = make()
    assert document["_type"] == STATEMENT_TYPE
    assert document["predicateType"] == PREDICATE_TYPE
    assert document["subject"] == [
        {"name": "localhost/qjson-tasks/crates-runtime:latest", "digest": {"sha256": "9" * 64}}
    ]


def test_build_definition_and_resolved_dependencies_with_digests() -> None:
    predicate = make()["predicate"]
    definition = predicate["buildDefinition"]  # type: ignore[index]
    assert definition["externalParameters"] == {
        "target": "crates",
        "config": {"name": "config", "uri": "crates.toml", "digest": {"sha256": "1" * 64}},
        "lock": {"name": "lock", "uri": "crates.lock", "digest": {"sha256": "2" * 64}},
    }
    deps = {d["name"]: d for d in definition["resolvedDependencies"]}
    assert deps["base:localhost/qjson-tasks/bookworm-luajit:latest"]["digest"] == {
        "sha256": "d" * 64
    }
    assert deps["builder:localhost/qjson-tasks/bookworm-luajit:latest"]["digest"] == {
        "sha256": "e" * 64
    }
    assert deps["rock:qjson-crates"] == {
        "name": "rock:qjson-crates",
        "uri": "pkg:luarocks/qjson-crates@0.1.0-1",
        "digest": {"sha256": "b" * 64},
    }
    assert deps["rock:cdemo"]["digest"] == {"sha256": "c" * 64}  # no source hash: the rockspec's
    for crate in (MEMCHR, ONCE):
        assert deps[f"crate:{crate.name}"]["digest"] == {"sha256": crate.checksum}
    details = predicate["runDetails"]  # type: ignore[index]
    assert details["builder"]["id"] == "urn:qjson-tasks:0.1.0"
    assert details["byproducts"][0]["digest"] == {"sha256": "3" * 64}
