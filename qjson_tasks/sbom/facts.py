"""What an SBOM says, as plain data: the image, its base and builder, the rocks in its tree
with their crates, and every file it added with its sha256. Pure: the build and `invoke
sbom` gather these facts, the renderers (cyclonedx.py) turn them into a document."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from qjson_tasks.build.labels import (
    BASE_ID_LABEL,
    BASE_LABEL,
    BUILDER_ID_LABEL,
    BUILDER_LABEL,
    ROCK_LABEL_PREFIX,
    TARGET_LABEL,
)


@dataclass(frozen=True, order=True)
class Crate:
    name: str
    version: str
    checksum: str


@dataclass(frozen=True, order=True)
class AddedFile:
    path: str  # absolute, inside the image
    sha256: str
    sha1: str = ""  # SPDX requires it of every file


@dataclass(frozen=True)
class RockFacts:
    """A rock in the tree; crates is None when no Cargo.lock of it is known."""

    name: str
    version: str
    rockspec_sha256: str
    source_sha256: str
    crates: tuple[Crate, ...] | None
    files: tuple[str, ...] = ()  # the image paths its rock_manifest lists


@dataclass(frozen=True)
class ImageRef:
    ref: str
    image_id: str


@dataclass(frozen=True)
class SbomFacts:
    # The image is named by its target: the output tag is no input of the runtime unit, so
    # one image may carry the tags of several configs of a target.
    target: str
    timestamp: int  # the image's own creation time (the commit's --timestamp)
    base: ImageRef
    builder: ImageRef
    rocks: tuple[RockFacts, ...]
    files: tuple[AddedFile, ...]
    tool_version: str

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(
            f"{rock.name} {rock.version}: no Cargo.lock is known for it, so the crates"
            " compiled into it (if any) are unknown"
            for rock in self.rocks
            if rock.crates is None
        )


def rocks_from_labels(labels: Mapping[str, str]) -> list[tuple[str, str, str, str]]:
    """(name, version, rockspec sha256, source sha256) of each rock the image's labels
    record (build/rocktree.py rock_labels), sorted by name."""
    found = []
    for key, value in sorted(labels.items()):
        if not key.startswith(ROCK_LABEL_PREFIX):
            continue
        data = json.loads(value)
        found.append(
            (
                key.removeprefix(ROCK_LABEL_PREFIX),
                str(data.get("version", "")),
                str(data.get("rockspec_sha256", "")),
                str(data.get("source_sha256", "")),
            )
        )
    return found


def make_facts(
    *,
    target: str,
    timestamp: int,
    labels: Mapping[str, str],
    crates: Mapping[str, tuple[Crate, ...]],
    owned: Mapping[str, Sequence[str]],
    files: Sequence[AddedFile],
    tool_version: str,
) -> SbomFacts:
    """The facts from an image's labels (its rocks, base and builder), each rock's crates
    (by rock name; missing: unknown), the files each rock owns and every added file."""
    rocks = tuple(
        RockFacts(
            name,
            version,
            spec,
            source,
            tuple(sorted(crates[name])) if name in crates else None,
            tuple(sorted(owned.get(name, ()))),
        )
        for name, version, spec, source in rocks_from_labels(labels)
    )
    return SbomFacts(
        target=labels.get(TARGET_LABEL, target),
        timestamp=timestamp,
        base=ImageRef(labels.get(BASE_LABEL, ""), labels.get(BASE_ID_LABEL, "")),
        builder=ImageRef(labels.get(BUILDER_LABEL, ""), labels.get(BUILDER_ID_LABEL, "")),
        rocks=rocks,
        files=tuple(sorted(files)),
        tool_version=tool_version,
    )


def image_path(prefix: str, relative: PurePosixPath | str) -> str:
    return str(PurePosixPath(prefix) / relative)
