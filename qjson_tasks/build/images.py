"""Local images as a build sees them: the listing, facts by name, making or pulling a missing
image, committing a unit, and labels remembered by image ID."""

from __future__ import annotations

from qjson_tasks.build.baseimage import build_base_image
from qjson_tasks.build.plan import ImageFacts, Unit
from qjson_tasks.build.session import Session
from qjson_tasks.config.platforms import Platform
from qjson_tasks.errors import ToolError
from qjson_tasks.host import labelmemo, locks
from qjson_tasks.host.buildah import Buildah

ImageIndex = dict[str, ImageFacts]


def image_index(buildah: Buildah) -> ImageIndex:
    """Every local image name with its facts, from one `buildah images` listing."""
    return {
        name: ImageFacts(name, image.image_id, image.created)
        for image in buildah.images()
        for name in image.names
    }


def image_facts(buildah: Buildah, ref: str, index: ImageIndex | None = None) -> ImageFacts | None:
    """A local image's facts: from the listing when ref is a listed name, else inspected
    (digest references, short names)."""
    if index is not None and ref in index:
        return index[ref]
    info = buildah.inspect_image(ref)
    return None if info is None else ImageFacts(ref, info.image_id, info.created)


def ensure_image(session: Session, ref: str, index: ImageIndex) -> ImageFacts:
    """A local image's facts, making it from Debian packages or pulling it if missing."""
    buildah, log = session.buildah, session.log
    facts = image_facts(buildah, ref, index)
    if facts:
        return facts
    with locks.hold(ref, log):
        facts = image_facts(buildah, ref)  # another run may have made it while we waited
        if facts:
            return facts
        runtime, platform = session.target.config.runtime, session.target.platform
        if runtime.bootstrap is not None and ref == runtime.base_image:
            log(f"    {ref} is missing: making it from Debian packages (debootstrap)")
            build_base_image(
                buildah,
                session.runner,
                runtime.bootstrap,
                ref,
                str(session.target.path),
                session.run_id,
                platform,
            )
        elif platform is not None:
            from qjson_tasks.build.platforms import origin_ref

            log(f"    {ref} is missing: pulling it for {platform}")
            pull_for_platform(buildah, origin_ref(ref, platform), ref, platform.text)
        else:
            log(f"    {ref} is missing: pulling it")
            buildah.pull(ref)
        facts = image_facts(buildah, ref)
    if facts is None:
        raise ToolError(f"{ref} is still not a local image after making or pulling it")
    if platform is not None:
        check_architecture(buildah, ref, platform)
    return facts


def pull_for_platform(buildah: Buildah, source: str, local: str, platform: str) -> str:
    """Pull source's image for platform and name it local. buildah names what it pulled
    `source`, so the name source had (another platform's image, or none) is put back."""
    # The pull moves `source` onto the other platform's image for a moment: hold source's
    # lock (a single-platform build plans with it under that lock), and put the name back
    # also when interrupted.
    with locks.hold(source, lambda line: None):
        before = buildah.image_id(source)
        try:
            image_id = buildah.pull(source, platform=platform)
            buildah.tag(image_id, local)
        finally:
            now = buildah.image_id(source) if local != source and "@" not in source else None
            if before and now and now != before:
                buildah.tag(before, source)
            elif not before and now:
                buildah.rmi_quietly(source)  # the image keeps its local name
    return image_id


def check_architecture(buildah: Buildah, ref: str, platform: Platform) -> None:
    """A platform's base or builder must be an image of that platform."""
    info = buildah.inspect_image(ref)
    if info is None or not info.architecture:
        return
    if (info.os, info.architecture) != (platform.os, platform.architecture):
        raise ToolError(
            f"{ref} is a {info.os}/{info.architecture} image, not {platform}: remove it"
            f" (`buildah rmi {ref}`) so that it is made or pulled for {platform}"
        )


def discard_if_unnamed(buildah: Buildah, image_id: str | None) -> bool:
    """Remove an image that no name points to (any more); True when it was removed."""
    if image_id and buildah.image_names(image_id) == []:
        return buildah.rmi_quietly(image_id)
    return False


def commit_unit(buildah: Buildah, container: str, unit: Unit, timestamp: int | None) -> None:
    """Commit a unit image; one it replaces (--rebuild) is removed once nothing names it."""
    replaced = buildah.image_id(unit.image)
    image_id = buildah.commit(container, unit.image, timestamp=timestamp)
    if replaced and replaced != image_id:
        discard_if_unnamed(buildah, replaced)


def image_env(buildah: Buildah, ref: str) -> dict[str, str]:
    info = buildah.inspect_image(ref)
    return info.env if info else {}


def image_labels(buildah: Buildah, ref: str) -> dict[str, str]:
    info = buildah.inspect_image(ref)
    return info.labels if info else {}


def labels_by_id(buildah: Buildah, image_id: str) -> dict[str, str]:
    """An image's labels: remembered for its ID (see labelmemo), else inspected."""
    labels = labelmemo.recall(image_id)
    if labels is None:
        labels = image_labels(buildah, image_id)
        labelmemo.remember(image_id, labels)
    return labels
