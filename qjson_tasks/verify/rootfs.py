"""Resolve in-image paths inside a directory holding an image's filesystem.

An image's symlinks are meant for the image's own `/`, so the host's path
resolution (os.path.realpath) would follow them out of the root.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

MAX_SYMLINKS = 40  # Linux's own limit before ELOOP


def resolve_in_root(root: Path, path: str | PurePosixPath) -> Path | None:
    """Host path of the final target of the absolute in-image `path`, or None.

    None when any component is missing, a non-final component is not a
    directory, or symlinks loop (more than MAX_SYMLINKS followed).
    """
    image = PurePosixPath(path)
    if not image.is_absolute():
        raise ValueError(f"not an absolute in-image path: {path}")
    resolved: list[str] = []
    pending = list(image.parts[1:])
    followed = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if resolved:  # `..` at the root stays at the root, as in the kernel
                resolved.pop()
            continue
        candidate = root.joinpath(*resolved, part)
        is_link = candidate.is_symlink()
        if not is_link and not candidate.exists():
            return None
        if is_link:
            followed += 1
            if followed > MAX_SYMLINKS:
                return None
            target = PurePosixPath(os.readlink(candidate))
            if target.is_absolute():
                resolved = []
                pending = list(target.parts[1:]) + pending
            else:
                pending = list(target.parts) + pending
            continue
        if pending and not candidate.is_dir():
            return None
        resolved.append(part)
    return root.joinpath(*resolved)


def image_path(root: Path, host_path: Path) -> PurePosixPath:
    """In-image path of `host_path`, which must lie inside `root` (for display)."""
    relative = host_path.relative_to(root)
    return PurePosixPath("/", *relative.parts)
