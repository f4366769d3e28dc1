"""A second containers-storage, apart from buildah's default one: a temporary storage that a
remote check pulls into, removed with everything in it when the check ends.

The facade addresses it with buildah's global `--root`, `--runroot` and `--storage-driver`
flags (Buildah.with_storage); other tools reach it as `containers-storage:[...]NAME`.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from qjson_tasks.errors import ToolError

if TYPE_CHECKING:
    from qjson_tasks.host.buildah import Buildah

# Named after the run: a sweep of what dead runs left can find a storage by its run id.
STORAGE_PREFIX = "qjt-storage-"


@dataclass(frozen=True)
class Storage:
    root: Path
    runroot: Path
    driver: str
    # buildah's TMPDIR for commands on this storage: where an interrupted pull leaves its
    # temporary blob copies, removed with the storage (else they land in /var/tmp for good).
    tmpdir: Path | None = None

    def global_args(self) -> list[str]:
        return [
            "--root", str(self.root), "--runroot", str(self.runroot),
            "--storage-driver", self.driver,
        ]  # fmt: skip

    def transport(self, name: str) -> str:
        """The containers-storage reference of `name` in this storage."""
        return f"containers-storage:[{self.driver}@{self.root}+{self.runroot}]{name}"


def runner_environment(storage: Storage, directory: Path) -> dict[str, str]:
    """What another process's buildah needs to take the storage as its default, as a second
    CI runner on this machine would: a storage.conf in directory (CONTAINERS_STORAGE_CONF);
    a rootless buildah takes its graph root from rootless_storage_path only and its run
    root from $XDG_RUNTIME_DIR, so that gets a directory of the storage's too."""
    conf = directory / "storage.conf"
    conf.write_text(
        f'[storage]\ndriver = "{storage.driver}"\ngraphroot = "{storage.root}"\n'
        f'runroot = "{storage.runroot}"\nrootless_storage_path = "{storage.root}"\n',
        encoding="utf-8",
    )
    env = {"CONTAINERS_STORAGE_CONF": str(conf)}
    if os.geteuid() != 0 or os.environ.get("_CONTAINERS_ROOTLESS_UID"):  # or in `unshare`
        runtime_dir = directory / "xdg-runtime"
        runtime_dir.mkdir(mode=0o700, exist_ok=True)
        env["XDG_RUNTIME_DIR"] = str(runtime_dir)
    return env


def storage_place() -> Path:
    """Where temporary storages go: $TMPDIR, else /var/tmp (disk, where /tmp may be a
    small tmpfs; an image is hundreds of MB)."""
    return Path(os.environ.get("TMPDIR") or "/var/tmp")


@contextmanager
def temporary_storage(buildah: Buildah, run_id: str) -> Iterator[Buildah]:
    """A facade on a new, empty storage using the default storage's driver; on exit its
    containers, images, mounts and directory are removed, also on errors and Ctrl-C."""
    driver = buildah.storage_driver()
    directory = Path(tempfile.mkdtemp(prefix=f"{STORAGE_PREFIX}{run_id}-", dir=storage_place()))
    (directory / "tmp").mkdir()
    storage = Storage(directory / "root", directory / "runroot", driver, directory / "tmp")
    other = buildah.with_storage(storage)
    try:
        yield other
    finally:
        remove_storage(other, directory)


@contextmanager
def scratch_dir(run_id: str) -> Iterator[Path]:
    """A directory of the run's for buildah's big temporary files (a push's blob copies):
    removed on exit, and named like the run's storages, so the sweep removes one a killed run
    left (host/runs.py, build/sweep.py)."""
    directory = Path(tempfile.mkdtemp(prefix=f"{STORAGE_PREFIX}{run_id}-", dir=storage_place()))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def mounts_under(directory: Path) -> list[str]:
    """Mount points at or below directory, deepest first (from /proc/self/mountinfo)."""
    prefix = str(directory)
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")  # \040 is a space
        if point == prefix or point.startswith(prefix + "/"):
            points.append(point)
    return sorted(points, key=len, reverse=True)


def remove_storage(buildah: Buildah, directory: Path) -> None:
    """Remove what the storage holds, unmount what is left mounted, delete the directory.
    Never raises: the error that ended the check, if any, is the one to show."""
    if (directory / "root").exists():
        buildah.empty_storage_quietly()
    for point in mounts_under(directory):
        try:
            buildah.runner.run(["umount", point])
        except ToolError as exc:
            _warn(f"cleanup: {exc}")
    try:
        shutil.rmtree(directory)
    except OSError as exc:
        _warn(f"cleanup: could not remove the temporary storage {directory}: {exc.strerror}")


def _warn(message: str) -> None:
    print(f"WARNING {message}", file=sys.stderr)
