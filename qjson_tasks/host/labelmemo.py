"""Labels of local images, remembered by image ID.

An image ID is the sha256 of the image's config, labels included, so what is remembered
for an ID can never go stale. A build where nothing changed reads its runtime image's labels
here instead of asking buildah: that inspect cost as much as the rest of such a build.
Entries are small files in a private directory per user; `invoke clean` drops those of
images that are gone, and the memo is only ever a shortcut: a missing or unreadable entry
means asking buildah again.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

from qjson_tasks.errors import ToolError
from qjson_tasks.host.locks import private_dir, user_dir

_IMAGE_ID = re.compile(r"^[0-9a-f]{64}$")


def memo_dir() -> Path:
    return user_dir("labels")


def recall(image_id: str, directory: Path | None = None) -> dict[str, str] | None:
    if not _IMAGE_ID.match(image_id):
        return None
    try:
        data = json.loads((directory or memo_dir()).joinpath(f"{image_id}.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        return None
    return data


def remember(image_id: str, labels: dict[str, str], directory: Path | None = None) -> None:
    """Best effort: a memo that cannot be written only makes the next run ask buildah."""
    if not _IMAGE_ID.match(image_id):
        return
    try:
        place = private_dir(directory or memo_dir())
        fd, temporary = tempfile.mkstemp(dir=place, suffix=".tmp")
    except (OSError, ToolError):
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(labels, out, sort_keys=True)
        os.replace(temporary, place / f"{image_id}.json")
    except OSError:
        Path(temporary).unlink(missing_ok=True)


def forget_all_but(image_ids: Iterable[str], directory: Path | None = None) -> list[Path]:
    """Drop the entries of images not in image_ids; the paths dropped."""
    keep = set(image_ids)
    place = directory or memo_dir()
    dropped = []
    for entry in sorted(place.glob("*.json")) if place.is_dir() else ():
        if entry.stem not in keep:
            entry.unlink(missing_ok=True)
            dropped.append(entry)
    return dropped
