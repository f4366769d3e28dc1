"""buildah's JSON answers, read once into typed values the rest of the code uses.

Only the facade (host/buildah.py) calls these readers; nothing else looks at buildah's JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any


def env_map(env: Sequence[str] | None) -> dict[str, str]:
    """An OCI config's Env list (`KEY=value` entries) as a mapping."""
    return dict(item.split("=", 1) for item in env or () if "=" in item)


def _epoch(text: str) -> int:
    """An RFC 3339 time as seconds since 1970 (0 when absent or unreadable)."""
    try:
        return max(int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()), 0)
    except ValueError:
        return 0


def _frozen(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@dataclass(frozen=True)
class ImageInfo:
    """`buildah inspect --type image`: what the project reads of a local image."""

    image_id: str
    digest: str  # the manifest digest (FromImageDigest), '' when buildah reports none
    created: int  # epoch seconds, 0 when unknown
    config: Mapping[str, Any] = field(default_factory=dict)  # the OCI config: User, Env, ...
    layers: tuple[tuple[str, int], ...] = ()  # (digest, size) of the manifest's layers
    diff_ids: tuple[str, ...] = ()
    os: str = ""
    architecture: str = ""
    variant: str = ""

    @property
    def env(self) -> dict[str, str]:
        return env_map(self.config.get("Env"))

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.config.get("Labels") or {})

    @property
    def user(self) -> str:
        return str(self.config.get("User") or "")

    @classmethod
    def from_inspect(cls, text: str) -> ImageInfo:
        document = json.loads(text)
        oci = document.get("OCIv1") or {}
        manifest = json.loads(document.get("Manifest") or "{}")
        return cls(
            image_id=str(document.get("FromImageID", "")),
            digest=str(document.get("FromImageDigest") or ""),
            created=_epoch(oci.get("created") or ""),
            config=_frozen(oci.get("config")),
            layers=tuple(
                (str(layer["digest"]), int(layer["size"])) for layer in manifest.get("layers", [])
            ),
            diff_ids=tuple((oci.get("rootfs") or {}).get("diff_ids") or ()),
            os=str(oci.get("os") or ""),
            architecture=str(oci.get("architecture") or ""),
            variant=str(oci.get("variant") or ""),
        )


@dataclass(frozen=True)
class ListedImage:
    """One entry of `buildah images --json --no-trunc`."""

    image_id: str
    names: tuple[str, ...]
    created: int

    @classmethod
    def listing(cls, text: str) -> list[ListedImage]:
        entries = json.loads(text or "[]") or []
        return [
            cls(
                image_id=str(entry.get("id", "")).removeprefix("sha256:"),
                names=tuple(entry.get("names") or ()),
                created=max(entry["created"], 0) if isinstance(entry.get("created"), int) else 0,
            )
            for entry in entries
        ]


@dataclass(frozen=True)
class ContainerInfo:
    """One entry of `buildah containers --json`."""

    container_id: str
    name: str
    image_id: str

    @classmethod
    def listing(cls, text: str) -> list[ContainerInfo]:
        entries = json.loads(text or "[]") or []
        return [
            cls(
                container_id=str(entry.get("id", "")),
                name=str(entry.get("containername", "")),
                image_id=str(entry.get("imageid", "")),
            )
            for entry in entries
        ]


@dataclass(frozen=True)
class MountedContainer:
    """One entry of `buildah mount --json` (no arguments: the mounted containers)."""

    name: str
    mount_point: str

    @classmethod
    def listing(cls, text: str) -> list[MountedContainer]:
        entries = json.loads(text or "[]") or []
        return [
            cls(name=str(entry.get("container", "")), mount_point=str(entry.get("mountPoint", "")))
            for entry in entries
        ]


@dataclass(frozen=True, order=True)
class ListEntry:
    """One image of a manifest list: its manifest digest and platform."""

    digest: str
    platform: str  # os/architecture[/variant]


@dataclass(frozen=True)
class ManifestList:
    """`buildah manifest inspect` of a local list."""

    entries: tuple[ListEntry, ...]

    @classmethod
    def from_inspect(cls, text: str) -> ManifestList:
        document = json.loads(text or "{}")
        entries = []
        for entry in document.get("manifests") or ():
            platform = entry.get("platform") or {}
            parts = (platform.get("os"), platform.get("architecture"), platform.get("variant"))
            text = "/".join(str(part) for part in parts if part)
            entries.append(ListEntry(str(entry.get("digest", "")), text))
        return cls(tuple(entries))
