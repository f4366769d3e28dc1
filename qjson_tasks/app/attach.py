"""`publish` pushes the image's SBOM and provenance statement next to it: each as a one-file
image tagged by the image's manifest digest, `REPO:sha256-<hex>.sbom` and `.att`, the names
cosign uses (registry 2.8 has no referrers API). The image's label names the SBOM; the
statement is found by the image's ID. A document that is not here is skipped, saying so."""

from __future__ import annotations

from qjson_tasks.app.tools import Tools, log
from qjson_tasks.build.fileimage import Document, image_documents, push_file
from qjson_tasks.config.remote import RemoteRef
from qjson_tasks.errors import ToolError
from qjson_tasks.host.registry import RemoteAccess, registry_failure


def attachment_tag(pushed: RemoteRef, suffix: str) -> str:
    """REPO:sha256-<hex>.<suffix> for the manifest digest pushed.digest."""
    return f"{pushed.name}:{pushed.digest.replace(':', '-')}.{suffix}"


def documents(tools: Tools, image_id: str) -> list[Document]:
    sha256, listed = image_documents(tools.buildah, image_id)
    if not sha256:
        log(f"    no sbom document of {image_id[:12]} here (None); not attached")
    found = []
    for kind, path in listed:
        if path.is_file():
            found.append((kind, path))
        else:
            log(f"    no {kind[0]} document of {image_id[:12]} here ({path}); not attached")
    return found


def push_attachments(
    tools: Tools, pushed: RemoteRef, access: RemoteAccess, image_id: str
) -> tuple[str, ...]:
    """Push the SBOM and the statement beside pushed (which has its digest); their tags."""
    log("==> attach SBOM and provenance")
    run_id = tools.session_run_id()
    tags = []
    for (suffix, inside), path in documents(tools, image_id):
        tag = attachment_tag(pushed, suffix)
        try:
            push_file(tools.buildah, path, inside, tag, access, run_id)
        except ToolError as exc:
            raise registry_failure(
                exc,
                pushed.registry,
                f"pushing {path.name} to {tag}",
                access,
                "the image is pushed, its attachments are not",
            ) from None
        log(f"    pushed {tag}")
        tags.append(tag)
    return tuple(tags)
