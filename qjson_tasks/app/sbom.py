"""`invoke sbom`: the SBOM of a target's image (or any local image), made from the image
itself: its labels (rocks, base, builder), the files it added over its base with their
sha256, and the crates the lock or a local rock's Cargo.lock names. For an image this
qjson-tasks built, the document is byte for byte the one its label names."""

from __future__ import annotations

import hashlib
import os
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from qjson_tasks.app.tools import Tools
from qjson_tasks.build.labels import BASE_ID_LABEL, BASE_LABEL, SBOM_LABEL
from qjson_tasks.build.names import container_name
from qjson_tasks.config.load import check_image_flag
from qjson_tasks.config.lockfile import read_lock
from qjson_tasks.config.model import Target
from qjson_tasks.errors import ConfigError
from qjson_tasks.sbom import collect
from qjson_tasks.sbom.facts import SbomFacts, make_facts

FORMATS = ("cyclonedx", "spdx")


@dataclass(frozen=True)
class SbomWritten:
    path: Path
    sha256: str
    labelled: str  # the sha256 the image's label gives ("" when it has none)
    format: str = "cyclonedx"


def check_format(value: str) -> str:
    if value not in FORMATS:
        raise ConfigError(f"--format: '{value}' is not an SBOM format: use {' or '.join(FORMATS)}")
    return value


def check_output(value: str) -> Path:
    """The --output path, refused before any work when its directory can't take it."""
    path = Path(value)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise ConfigError(f"--output: {value} is a directory; give a file path")
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"--output: cannot write {value}: {parent} is not a writable directory")
    return path


def image_facts(target: Target, tools: Tools, image: str) -> tuple[SbomFacts, dict[str, str]]:
    """An image's SBOM facts, read from the image and its base (both mounted), and its
    labels."""
    buildah, config = tools.buildah, target.config
    info = buildah.inspect_image(image)
    if info is None and image != config.output.reference:
        raise ConfigError(f"--image: '{image}' is not in local storage")
    if info is None:
        raise ConfigError(
            f"the target's image {image} is not in local storage: build it with"
            f" `invoke build-runtime --target {target.name}`, or name one with --image"
        )
    labels = info.labels
    base_ref = labels.get(BASE_ID_LABEL) or labels.get(BASE_LABEL) or config.runtime.base_image
    if buildah.inspect_image(base_ref) is None:
        raise ConfigError(f"the base image {base_ref} of {image} is not in local storage")
    from qjson_tasks.verify.checks import added_entries, walk_image

    prefix = config.runtime.prefix
    run_id = tools.session_run_id()
    with ExitStack() as scope:
        ctr = scope.enter_context(buildah.container(image, container_name(run_id, "sbom")))
        root = scope.enter_context(buildah.mounted(ctr))
        base = scope.enter_context(buildah.container(base_ref, container_name(run_id, "sbase")))
        base_root = scope.enter_context(buildah.mounted(base))
        added = added_entries(list(walk_image(root)), base_root)
        files = collect.added_files(root, added)
        owned = collect.owned_files(root, prefix, prefix, config.runtime.lua_version)
    facts = make_facts(
        target=target.name,
        timestamp=info.created,
        labels=labels,
        crates=collect.known_crates(target, read_lock(target)),
        owned=owned,
        files=files,
        tool_version=collect.tool_version(),
    )
    return facts, labels


def write_sbom(
    target: Target, tools: Tools, output: str, image: str | None = None, fmt: str = "cyclonedx"
) -> SbomWritten:
    check_format(fmt)
    path = check_output(output)
    if image is not None:
        check_image_flag("--image", image)
    reference = image or target.config.output.reference
    if fmt == "spdx":
        from qjson_tasks.sbom.spdx import render
    else:
        from qjson_tasks.sbom.cyclonedx import render

    facts, labels = image_facts(target, tools, reference)
    document = render(facts)
    try:
        path.write_bytes(document)
    except OSError as exc:
        raise ConfigError(f"--output: cannot write {output}: {exc.strerror}") from None
    sha256 = hashlib.sha256(document).hexdigest()
    return SbomWritten(path, sha256, labels.get(SBOM_LABEL, ""), fmt)


def describe(written: SbomWritten) -> str:
    if written.format != "cyclonedx":
        same = "SPDX 2.3; the image's label names its CycloneDX document"
    elif not written.labelled:
        same = "the image has no SBOM label"
    elif written.labelled == written.sha256:
        same = "the same document the image's label names"
    else:
        same = f"differs from the one the image's label names ({written.labelled[:12]})"
    return f"wrote {written.path} (sha256 {written.sha256}; {same})"
