"""Where SBOMs live: a content-addressed directory per user, so the image's label (the
document's sha256) alone finds its SBOM again, and a CI job can pick it up by that path."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from qjson_tasks.host.locks import private_dir, user_dir

SUFFIX = ".cdx.json"
PROVENANCE_SUFFIX = ".intoto.json"


def sbom_dir() -> Path:
    return user_dir("sbom")


def stored_path(sha256: str, directory: Path | None = None) -> Path:
    return (directory or sbom_dir()) / f"{sha256}{SUFFIX}"


def provenance_path(image_id: str, directory: Path | None = None) -> Path:
    """The provenance statement of an image, beside the SBOMs, by the image's ID."""
    return (directory or sbom_dir()) / f"{image_id}{PROVENANCE_SUFFIX}"


def store(document: bytes, directory: Path | None = None) -> tuple[str, Path]:
    """Write a document under its sha256 (atomically); (sha256, path)."""
    sha256 = hashlib.sha256(document).hexdigest()
    place = private_dir(directory or sbom_dir())
    path = stored_path(sha256, place)
    if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == sha256:
        return sha256, path
    write_atomically(path, document)
    return sha256, path


def write_atomically(path: Path, document: bytes) -> None:
    place = private_dir(path.parent)
    fd, temporary = tempfile.mkstemp(dir=place, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(document)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
