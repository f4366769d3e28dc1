"""SbomFacts -> a CycloneDX 1.6 JSON document, byte for byte the same for the same facts.

Written with cyclonedx-python-lib. Determinism: the timestamp is the image's own (never the
clock), every bom-ref is derived from its component, the library sorts components and
dependencies, and the serial number is a UUID5 of the document rendered with a fixed one.
"""

from __future__ import annotations

import datetime
import json
import uuid

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType, Pedigree
from cyclonedx.model.tool import ToolRepository
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from packageurl import PackageURL

from qjson_tasks.sbom.facts import Crate, ImageRef, SbomFacts

SCHEMA_VERSION = SchemaVersion.V1_6
PROPERTY = "qjson-tasks"
SERIAL_NAMESPACE = uuid.UUID("9a1d3b52-5c4e-4f0e-9a55-0d6f3c1b7e21")


def _sha256(value: str) -> list[HashType]:
    return [HashType(alg=HashAlgorithm.SHA_256, content=value)] if value else []


def oci_purl(image: ImageRef) -> PackageURL:
    """pkg:oci/NAME@sha256:ID?repository_url=REGISTRY/PATH (the purl spec's oci type)."""
    path = image.ref.split("@", 1)[0]
    last = path.rsplit("/", 1)[-1]
    name, _, tag = last.partition(":")
    repository = path[: len(path) - len(last)] + name
    qualifiers = {"repository_url": repository}
    if tag:
        qualifiers["tag"] = tag
    version = f"sha256:{image.image_id}" if image.image_id else None
    return PackageURL("oci", name=name.lower(), version=version, qualifiers=qualifiers)


def _image(image: ImageRef, bom_ref: str) -> Component:
    return Component(
        name=image.ref,
        type=ComponentType.CONTAINER,
        bom_ref=bom_ref,
        version=f"sha256:{image.image_id}" if image.image_id else None,
        purl=oci_purl(image),
        hashes=_sha256(image.image_id),
    )


def crate_ref(crate: Crate) -> str:
    return f"crate:{crate.name}@{crate.version}"


def _crate(crate: Crate) -> Component:
    return Component(
        name=crate.name,
        version=crate.version,
        bom_ref=crate_ref(crate),
        purl=PackageURL("cargo", name=crate.name, version=crate.version),
        hashes=_sha256(crate.checksum),
    )


def _rock(facts: SbomFacts, index: int) -> Component:
    rock = facts.rocks[index]
    hashes = {"rockspec": rock.rockspec_sha256, "source": rock.source_sha256}
    properties = [
        Property(name=f"{PROPERTY}:{kind}:sha256", value=value or "unknown (not locked)")
        for kind, value in hashes.items()
    ]
    if rock.crates is None:
        properties.append(Property(name=f"{PROPERTY}:crates", value="unknown: no Cargo.lock"))
    return Component(
        name=rock.name,
        version=rock.version,
        bom_ref=f"rock:{rock.name}@{rock.version}",
        purl=PackageURL("luarocks", name=rock.name, version=rock.version),
        hashes=_sha256(rock.source_sha256),
        properties=properties,
    )


def _root(facts: SbomFacts) -> Component:
    return Component(
        name=f"qjson-tasks runtime of target {facts.target}",
        type=ComponentType.CONTAINER,
        bom_ref="image",
        pedigree=Pedigree(ancestors=[_image(facts.base, "base-image")]),
        properties=[Property(name=f"{PROPERTY}:target", value=facts.target)],
    )


def _metadata(facts: SbomFacts, root: Component) -> BomMetaData:
    """The image as the document's subject; qjson-tasks and the builder image as the tools
    that made it (build-time only: the builder is no component of the image)."""
    tools = ToolRepository(
        components=[
            Component(
                name="qjson-tasks",
                version=facts.tool_version,
                type=ComponentType.APPLICATION,
                bom_ref="tool:qjson-tasks",
            ),
            _image(facts.builder, "builder-image"),
        ]
    )
    return BomMetaData(
        tools=tools,
        component=root,
        timestamp=datetime.datetime.fromtimestamp(facts.timestamp, tz=datetime.UTC),
        properties=[Property(name=f"{PROPERTY}:warning", value=w) for w in facts.warnings],
    )


def _bom(facts: SbomFacts, serial: uuid.UUID) -> Bom:
    """Rocks, crates and files as components; the image depends on its rocks and on the
    files no rock owns, a rock on its files, a native library on its rock's crates."""
    root = _root(facts)
    bom = Bom(metadata=_metadata(facts, root), serial_number=serial)
    files = {
        added.path: Component(
            name=added.path,
            type=ComponentType.FILE,
            bom_ref=f"file:{added.path}",
            hashes=_sha256(added.sha256),
        )
        for added in facts.files
    }
    crates: dict[Crate, Component] = {}
    owned: set[str] = set()
    rocks = []
    for index, rock in enumerate(facts.rocks):
        component = _rock(facts, index)
        rocks.append(component)
        mine = [files[path] for path in rock.files if path in files]
        owned.update(path for path in rock.files if path in files)
        bom.register_dependency(component, mine)
        for crate in rock.crates or ():
            crates.setdefault(crate, _crate(crate))
        for library in (f for f in mine if f.name.endswith(".so")):
            bom.register_dependency(library, [crates[c] for c in rock.crates or ()])
    for component in (*rocks, *crates.values(), *files.values()):
        bom.components.add(component)
    loose = [files[path] for path in sorted(files) if path not in owned]
    bom.register_dependency(root, [*rocks, *loose])
    return bom


def render(facts: SbomFacts) -> bytes:
    """The document as bytes: rendered once with a fixed serial number, then with a UUID5
    of that rendering, so the serial names the content."""
    draft = _serialize(_bom(facts, SERIAL_NAMESPACE))
    serial = uuid.uuid5(SERIAL_NAMESPACE, draft.decode())
    return _serialize(_bom(facts, serial))


def _serialize(bom: Bom) -> bytes:
    text = JsonV1Dot6(bom).output_as_string()
    # Canonical: sorted keys, two-space indent, one trailing newline.
    return (json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n").encode()


def validation_errors(document: bytes) -> list[str]:
    """The schema's complaints about a document (empty: it validates), from the official
    CycloneDX JSON schema the library ships."""
    from cyclonedx.validation.json import JsonStrictValidator

    errors = JsonStrictValidator(SCHEMA_VERSION).validate_str(document.decode(), all_errors=True)
    return [str(error) for error in errors or ()]
