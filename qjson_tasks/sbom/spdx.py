"""SbomFacts -> an SPDX 2.3 JSON document (spdx-tools), the other format of `invoke sbom`.

The same facts as the CycloneDX document: the image as the described package, DESCENDANT_OF
its base, the builder a BUILD_TOOL_OF it; rocks and crates as packages with purls; every
added file with its SHA1 (SPDX requires it) and SHA256; a rock CONTAINS its files, a native
library DEPENDS_ON its rock's crates. Deterministic like the other: the image's timestamp,
a namespace named by a UUID5 of the content.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import re
import uuid

from spdx_tools.spdx.model import (
    Actor,
    ActorType,
    Checksum,
    ChecksumAlgorithm,
    CreationInfo,
    Document,
    ExternalPackageRef,
    ExternalPackageRefCategory,
    File,
    Package,
    Relationship,
    RelationshipType,
    SpdxNoAssertion,
)
from spdx_tools.spdx.model.package import PackagePurpose, PackageVerificationCode

from qjson_tasks.sbom.cyclonedx import SERIAL_NAMESPACE, oci_purl
from qjson_tasks.sbom.facts import Crate, ImageRef, SbomFacts

NAMESPACE_BASE = "https://spdx.org/spdxdocs/qjson-tasks"
R = RelationshipType


def spdx_id(*parts: str) -> str:
    return "SPDXRef-" + "-".join(re.sub(r"[^A-Za-z0-9.]+", ".", part) for part in parts)


def _purl(purl: str) -> list[ExternalPackageRef]:
    return [ExternalPackageRef(ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", purl)]


def _sha256(value: str) -> list[Checksum]:
    return [Checksum(ChecksumAlgorithm.SHA256, value)] if value else []


def _package(ident: str, name: str, version: str | None, purl: str, sha256: str) -> Package:
    return Package(
        spdx_id=ident,
        name=name,
        download_location=SpdxNoAssertion(),
        version=version,
        files_analyzed=False,
        checksums=_sha256(sha256),
        external_references=_purl(purl),
    )


def _image(ident: str, image: ImageRef) -> Package:
    found = _package(ident, image.ref, None, oci_purl(image).to_string(), image.image_id)
    found.primary_package_purpose = PackagePurpose.CONTAINER
    return found


def _holds(package: Package, sha1s: list[str]) -> None:
    """Mark a package as holding files (SPDX then wants their verification code)."""
    package.files_analyzed = True
    joined = "".join(sorted(sha1s)).encode()
    package.verification_code = PackageVerificationCode(
        hashlib.sha1(joined, usedforsecurity=False).hexdigest()
    )


def _crate(crate: Crate) -> Package:
    purl = f"pkg:cargo/{crate.name}@{crate.version}"
    ident = spdx_id("crate", crate.name, crate.version)
    return _package(ident, crate.name, crate.version, purl, crate.checksum)


def _rocks(
    facts: SbomFacts,
    files: dict[str, str],
    sha1: dict[str, str],
    packages: list[Package],
    relationships: list[Relationship],
) -> tuple[set[str], dict[Crate, Package]]:
    """The rocks' packages and relationships (appended); the files they own, their crates."""
    owned: set[str] = set()
    crates: dict[Crate, Package] = {}
    for rock in facts.rocks:
        ident = spdx_id("rock", rock.name, rock.version)
        purl = f"pkg:luarocks/{rock.name}@{rock.version}"
        package = _package(ident, rock.name, rock.version, purl, rock.source_sha256)
        packages.append(package)
        relationships.append(Relationship("SPDXRef-image", R.CONTAINS, ident))
        mine = [p for p in rock.files if p in files]
        if mine:
            _holds(package, [sha1[p] for p in mine])
        for path in mine:
            owned.add(path)
            relationships.append(Relationship(ident, R.CONTAINS, files[path]))
            for crate in rock.crates or () if path.endswith(".so") else ():
                crates.setdefault(crate, _crate(crate))
                relationships.append(Relationship(files[path], R.DEPENDS_ON, crates[crate].spdx_id))
        for crate in rock.crates or ():
            crates.setdefault(crate, _crate(crate))
    return owned, crates


def _document(facts: SbomFacts, namespace: str) -> Document:
    info = CreationInfo(
        spdx_version="SPDX-2.3",
        spdx_id="SPDXRef-DOCUMENT",
        name=f"qjson-tasks runtime of target {facts.target}",
        document_namespace=namespace,
        creators=[Actor(ActorType.TOOL, f"qjson-tasks-{facts.tool_version}")],
        created=datetime.datetime.fromtimestamp(facts.timestamp, tz=datetime.UTC),
        document_comment="; ".join(facts.warnings) or None,
    )
    image = Package(
        spdx_id="SPDXRef-image",
        name=info.name,
        download_location=SpdxNoAssertion(),
        files_analyzed=False,
        primary_package_purpose=PackagePurpose.CONTAINER,
    )
    packages = [image, _image("SPDXRef-base", facts.base), _image("SPDXRef-builder", facts.builder)]
    relationships = [
        Relationship("SPDXRef-DOCUMENT", R.DESCRIBES, "SPDXRef-image"),
        Relationship("SPDXRef-image", R.DESCENDANT_OF, "SPDXRef-base"),
        Relationship("SPDXRef-builder", R.BUILD_TOOL_OF, "SPDXRef-image"),
    ]
    files = {added.path: spdx_id("file", added.path) for added in facts.files}
    sha1 = {added.path: added.sha1 for added in facts.files}
    owned, crates = _rocks(facts, files, sha1, packages, relationships)
    loose = [path for path in sorted(files) if path not in owned]
    relationships += [Relationship("SPDXRef-image", R.CONTAINS, files[p]) for p in loose]
    if loose:
        _holds(image, [sha1[p] for p in loose])
    return Document(
        creation_info=info,
        packages=packages + [crates[crate] for crate in sorted(crates)],
        files=[
            File(
                name=f".{added.path}",
                spdx_id=files[added.path],
                checksums=[Checksum(ChecksumAlgorithm.SHA1, added.sha1), *_sha256(added.sha256)],
            )
            for added in facts.files
        ],
        relationships=relationships,
    )


def _serialize(document: Document) -> bytes:
    from spdx_tools.spdx.writer.json.json_writer import write_document_to_stream

    stream = io.StringIO()
    write_document_to_stream(document, stream, validate=False)
    return (json.dumps(json.loads(stream.getvalue()), indent=2, sort_keys=True) + "\n").encode()


def render(facts: SbomFacts) -> bytes:
    draft = _serialize(_document(facts, f"{NAMESPACE_BASE}/{facts.target}"))
    name = uuid.uuid5(SERIAL_NAMESPACE, draft.decode())
    return _serialize(_document(facts, f"{NAMESPACE_BASE}/{facts.target}-{name}"))


def validation_errors(document: bytes) -> list[str]:
    """What spdx-tools' validator of SPDX 2.3 finds wrong with a JSON document."""
    import tempfile

    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    with tempfile.NamedTemporaryFile(suffix=".spdx.json") as out:
        out.write(document)
        out.flush()
        parsed = parse_file(out.name)
    return [message.validation_message for message in validate_full_spdx_document(parsed)]
