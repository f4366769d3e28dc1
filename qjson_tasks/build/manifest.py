"""The output tag of a multi-platform build: a manifest list of every platform's verified image.

The list is made under the run's temporary name and moved onto the output tag only once
every platform's image is verified and added, so a failed platform, or an interrupted run,
leaves the previous list (or image) on the tag. A list holding exactly these images already
is left alone: a build that changed nothing changes no list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from qjson_tasks.build.names import temporary_list
from qjson_tasks.config.platforms import Platform
from qjson_tasks.errors import ToolError
from qjson_tasks.host import locks
from qjson_tasks.host.answers import ListEntry
from qjson_tasks.host.buildah import Buildah

Log = Callable[[str], None]


@dataclass(frozen=True)
class TaggedList:
    ref: str
    list_id: str
    entries: tuple[ListEntry, ...]
    changed: bool  # False: the tag already named a list of exactly these images


def _named(buildah: Buildah, ref: str) -> str | None:
    """The ID of the local image or list named ref, from the listing (never a registry)."""
    for image in buildah.images():
        if ref in image.names:
            return image.image_id
    return None


def wanted_entries(
    buildah: Buildah, images: Sequence[tuple[Platform, str]]
) -> tuple[ListEntry, ...]:
    entries = []
    for platform, image_id in images:
        info = buildah.inspect_image(image_id)
        if info is None or not info.digest:
            raise ToolError(f"the {platform} image {image_id[:12]} is gone; build again")
        entries.append(ListEntry(info.digest, platform.text))
    return tuple(entries)


def tag_manifest_list(
    buildah: Buildah,
    log: Log,
    ref: str,
    images: Sequence[tuple[Platform, str]],
    *,
    target: str,
    run_id: str,
) -> TaggedList:
    """Point ref at a manifest list of images (platform, image ID), each already verified."""
    wanted = wanted_entries(buildah, images)
    with locks.hold(ref, log):
        previous = _named(buildah, ref)
        current = buildah.manifest_inspect(previous) if previous else None  # by ID: local
        if previous and current is not None and sorted(current.entries) == sorted(wanted):
            return TaggedList(ref, previous, current.entries, changed=False)
        temporary = temporary_list(target, run_id)
        list_id = buildah.manifest_create(temporary)
        try:
            for platform, image_id in images:
                buildah.manifest_add(
                    temporary,
                    image_id,
                    os=platform.os,
                    arch=platform.architecture,
                    variant=platform.variant,
                )
            buildah.tag(list_id, ref)
        finally:
            # The list itself goes too unless ref names it now.
            buildah.manifest_rm_quietly(temporary)
        if previous and previous != list_id and buildah.image_names(previous) == []:
            # What the tag named before, now unnamed: a list, or a single-platform image.
            if current is not None:
                buildah.manifest_rm_quietly(previous)
            else:
                buildah.rmi_quietly(previous)
            what = "list" if current else "image"
            log(f"    removed the {what} {ref} named before ({previous[:12]})")
    return TaggedList(ref, list_id, wanted, changed=True)
