"""A git-sourced rock (a rockspec whose source.url is git://, git+http(s):// or git+file://)
pinned and packed by qjson-tasks itself: the tag's exact commit from `git ls-remote`, and a
`.src.rock` made from a checkout of that commit, byte-reproducible (sorted entries, fixed
times, modes only 0644 or 0755), so its sha256 can go into the lock.

git runs on the host, through the runner.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from qjson_tasks.config.lockfile import LockedCargo, LockedCrate
from qjson_tasks.errors import RockError, ToolError
from qjson_tasks.host.runner import Runner
from qjson_tasks.luarocks.rockspec import Rockspec
from qjson_tasks.rocks.cargo import pinned_crates

ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry


GIT_URL = re.compile(r"^(git|git\+[a-z]+)://")


def is_git_source(url: str) -> bool:
    return GIT_URL.match(url) is not None


def git_url(source_url: str) -> str:
    """The URL git itself takes: luarocks' `git+http://...` is git's `http://...`."""
    return source_url.removeprefix("git+") if source_url.startswith("git+") else source_url


def tag_commit(listing: str, tag: str) -> str | None:
    """The commit a tag names in `git ls-remote` output: for an annotated tag the peeled
    `^{}` line (the tag object's own id is not a commit)."""
    refs = dict(reversed(line.split("\t", 1)) for line in listing.splitlines() if "\t" in line)
    ref = f"refs/tags/{tag}"
    return refs.get(f"{ref}^{{}}") or refs.get(ref)


def remote_commit(runner: Runner, rock: str, url: str, tag: str) -> str:
    """The commit `tag` names at `url`, asked of the server now."""
    ref = f"refs/tags/{tag}"
    try:
        listing = runner.run(["git", "ls-remote", git_url(url), ref, f"{ref}^{{}}"])
    except ToolError as exc:
        raise RockError(f"{rock}: could not reach its git server at {url}") from exc
    commit = tag_commit(listing, tag)
    if commit is None:
        raise RockError(f"{rock}: {url} has no tag {tag!r}")
    return commit


def _entries(checkout: Path, top: str) -> list[tuple[str, Path]]:
    found = []
    for root, dirs, files in os.walk(checkout):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        for name in sorted(files):
            path = Path(root, name)
            found.append((f"{top}/{path.relative_to(checkout).as_posix()}", path))
    return found


def _add(archive: zipfile.ZipFile, name: str, data: bytes, executable: bool) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
    info.create_system = 3  # unix, so the mode below counts
    info.external_attr = (0o100755 if executable else 0o100644) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data, compresslevel=9)


def pack_src_rock(checkout: Path, rockspec_name: str, rockspec: bytes, top: str) -> bytes:
    """A .src.rock as `luarocks pack` lays one out for a git source: the rockspec at the top
    and the checkout (without .git) under `top`, the directory luarocks unpacks it as."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        _add(archive, rockspec_name, rockspec, executable=False)
        for name, path in _entries(checkout, top):
            if path.is_symlink():
                raise RockError(f"{path}: symlinks can't be packed into a .src.rock here")
            _add(archive, name, path.read_bytes(), os.access(path, os.X_OK))
    return buffer.getvalue()


def source_dir_name(spec: Rockspec) -> str:
    """The directory luarocks unpacks a git source as: source.dir, else the URL's last part
    without `.git` (luarocks' own rule)."""
    if spec.source_dir:
        return spec.source_dir
    return spec.source_url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")


def cargo_facts(checkout: Path) -> LockedCargo | None:
    """The Cargo.lock at a rock's top, as the lock records it (None without one)."""
    path = checkout / "Cargo.lock"
    if not path.is_file():
        return None
    data = path.read_bytes()
    crates = pinned_crates(data.decode("utf-8", "replace"), str(path))
    return LockedCargo(
        lock_sha256=hashlib.sha256(data).hexdigest(),
        crates=tuple(
            LockedCrate(name=c.name, version=c.version, checksum=c.checksum) for c in crates
        ),
    )


@dataclass(frozen=True)
class PackedGitRock:
    packed: bytes  # the .src.rock
    cargo: LockedCargo | None


def clone_and_pack(
    runner: Runner, rock: str, spec: Rockspec, rockspec: tuple[str, bytes], commit: str
) -> PackedGitRock:
    """Clone the rockspec's tag, check it is `commit`, and pack it with the rockspec."""
    url, tag = spec.source_url, spec.source_tag
    with tempfile.TemporaryDirectory(prefix="qjt-git-") as tmp:
        checkout = Path(tmp) / "checkout"
        clone = ["git", "-c", "advice.detachedHead=false", "clone", "--quiet", "--depth", "1"]
        try:
            runner.run([*clone, "--branch", tag, git_url(url), str(checkout)])
            head = runner.run(["git", "-C", str(checkout), "rev-parse", "HEAD"]).strip()
        except ToolError as exc:
            raise RockError(f"{rock}: could not clone tag {tag} of {url}") from exc
        if head != commit:
            raise RockError(f"{rock}: tag {tag} of {url} moved to {head} while it was fetched")
        name, data = rockspec
        packed = pack_src_rock(checkout, name, data, source_dir_name(spec))
        return PackedGitRock(packed, cargo_facts(checkout))
