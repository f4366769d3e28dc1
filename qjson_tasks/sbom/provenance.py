"""An in-toto Statement v1 with a SLSA v1 provenance predicate for a runtime image: what it
was built from (the target config and lock by digest; base, builder, rocks and crates as
resolved dependencies, each with its digest) and by what (qjson-tasks and its version).
Pure: facts in, canonical JSON bytes out."""

from __future__ import annotations

import json
from collections.abc import Mapping

from qjson_tasks.sbom.cyclonedx import oci_purl
from qjson_tasks.sbom.facts import ImageRef, SbomFacts

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "urn:qjson-tasks:build-runtime:v1"
CYCLONEDX_MEDIA_TYPE = "application/vnd.cyclonedx+json"

Descriptor = dict[str, object]


def _descriptor(name: str, uri: str, sha256: str) -> Descriptor:
    """A ResourceDescriptor; the digest only when known (the spec allows uri alone)."""
    found: Descriptor = {"name": name, "uri": uri}
    if sha256:
        found["digest"] = {"sha256": sha256}
    return found


def _image(role: str, image: ImageRef) -> Descriptor:
    return _descriptor(f"{role}:{image.ref}", oci_purl(image).to_string(), image.image_id)


def resolved_dependencies(facts: SbomFacts) -> list[Descriptor]:
    found = [_image("base", facts.base), _image("builder", facts.builder)]
    crates = {}
    for rock in facts.rocks:
        found.append(
            _descriptor(
                f"rock:{rock.name}",
                f"pkg:luarocks/{rock.name}@{rock.version}",
                rock.source_sha256 or rock.rockspec_sha256,
            )
        )
        for crate in rock.crates or ():
            crates[crate] = _descriptor(
                f"crate:{crate.name}",
                f"pkg:cargo/{crate.name}@{crate.version}",
                crate.checksum,
            )
    return found + [crates[crate] for crate in sorted(crates)]


def statement(
    facts: SbomFacts,
    *,
    image: str,
    image_id: str,
    inputs: Mapping[str, tuple[str, str]],
    sbom_sha256: str,
    units: Mapping[str, str],
) -> bytes:
    """inputs: the config files the build read, by role ("config", "lock"): (path, sha256)."""
    parameters: dict[str, object] = {"target": facts.target}
    for role, (path, sha256) in sorted(inputs.items()):
        parameters[role] = _descriptor(role, path, sha256)
    document = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": image, "digest": {"sha256": image_id}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": parameters,
                "internalParameters": {"units": dict(sorted(units.items()))},
                "resolvedDependencies": resolved_dependencies(facts),
            },
            "runDetails": {
                "builder": {
                    "id": f"urn:qjson-tasks:{facts.tool_version}",
                    "version": {"qjson-tasks": facts.tool_version},
                },
                "byproducts": [
                    {
                        "name": "sbom",
                        "digest": {"sha256": sbom_sha256},
                        "mediaType": CYCLONEDX_MEDIA_TYPE,
                    }
                ],
            },
        },
    }
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()
