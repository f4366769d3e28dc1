"""One-file images in a registry: how an SBOM or a provenance statement travels beside the
image it describes (`publish`'s attachments, the unit cache's runtime documents)."""

from __future__ import annotations

from pathlib import Path

from qjson_tasks.build.labels import SBOM_LABEL
from qjson_tasks.build.names import container_name, temporary_image
from qjson_tasks.errors import ToolError
from qjson_tasks.host.buildah import Buildah
from qjson_tasks.host.registry import RemoteAccess
from qjson_tasks.host.storage import scratch_dir
from qjson_tasks.sbom.store import provenance_path, stored_path

# The documents that travel beside an image: (tag suffix, file name inside the one-file image)
SBOM_FILE = ("sbom", "sbom.cdx.json")
PROVENANCE_FILE = ("att", "provenance.intoto.json")
Document = tuple[tuple[str, str], Path]


def image_documents(buildah: Buildah, image_id: str) -> tuple[str, list[Document]]:
    """An image's SBOM sha256 (from its label, '' without one) and where its documents
    belong in the store: the SBOM by that sha256, the provenance statement by the image's
    ID. The paths are given whether or not the files are there."""
    info = buildah.inspect_image(image_id) if image_id else None
    sha256 = info.labels.get(SBOM_LABEL, "") if info else ""
    found: list[Document] = [(SBOM_FILE, stored_path(sha256))] if sha256 else []
    if image_id:
        found.append((PROVENANCE_FILE, provenance_path(image_id)))
    return sha256, found


def push_file(
    buildah: Buildah,
    path: Path,
    inside: str,
    destination: str,
    access: RemoteAccess,
    run_id: str,
) -> None:
    """Push a scratch image holding only path (as /inside) to docker://destination."""
    # Named as the run's own, so the sweep removes them if the run dies here.
    local = temporary_image("attachment", run_id)
    with buildah.container("scratch", container_name(run_id, "attach"), scratch=True) as holder:
        buildah.copy(holder, str(path), f"/{inside}", chown="0:0")
        buildah.commit(holder, local, timestamp=0)
    try:
        with scratch_dir(run_id) as tmpdir:
            buildah.push(local, f"docker://{destination}", access, tmpdir=tmpdir)
    finally:
        buildah.rmi_quietly(local)


def read_file(buildah: Buildah, ref: str, inside: str, access: RemoteAccess, run_id: str) -> bytes:
    """The file /inside of the one-file image docker://ref; nothing of it stays here."""
    image_id = buildah.pull_remote(f"docker://{ref}", access)
    try:
        name = container_name(run_id, "attachment")
        with buildah.container(image_id, name) as holder, buildah.mounted(holder) as root:
            try:
                return (root / inside).read_bytes()
            except OSError as exc:
                raise ToolError(f"{ref} holds no readable /{inside}: {exc.strerror}") from None
    finally:
        buildah.rmi_quietly(ref)  # by the name pulled: the image may carry others
