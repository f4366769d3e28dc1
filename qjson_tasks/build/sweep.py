"""Sweeping what dead runs left: their working containers, temporary runtime images and
temporary storages (a remote check's, see host/storage.py).

A run is dead when its run file's lock can be taken (host/runs.py). Only names that run gave
(build/names.py) are removed, containers first (unmounted, then removed) since an image a
container uses can't go. Removal is quiet, as in the facade's own cleanup: what can't be
removed is a warning, the run's file stays and a later run tries again. One line says what
went; a dead run that left nothing is forgotten without a word.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from qjson_tasks.build.names import is_run_container, is_run_image, is_temporary_list
from qjson_tasks.errors import ToolError
from qjson_tasks.host import runs
from qjson_tasks.host.buildah import Buildah
from qjson_tasks.host.storage import STORAGE_PREFIX, Storage, remove_storage, storage_place

Log = Callable[[str], None]


@dataclass(frozen=True)
class Leftovers:
    """The containers, images and temporary directories (storages, scratch directories)
    that carry one run's id."""

    run_id: str
    containers: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    storages: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.containers or self.images or self.storages)


def storage_places() -> set[Path]:
    """Where a run's temporary storages can be: $TMPDIR (a rootless run's own) and /var/tmp."""
    return {storage_place(), Path("/var/tmp")}


def _storages_of(run_id: str) -> tuple[str, ...]:
    found = (p for place in storage_places() for p in place.glob(f"{STORAGE_PREFIX}{run_id}-*"))
    return tuple(sorted(str(path) for path in found if path.is_dir() and not path.is_symlink()))


def find_leftovers(buildah: Buildah, run_ids: Sequence[str]) -> list[Leftovers]:
    """What carries each run's id, from one container and one image listing."""
    containers = [container.name for container in buildah.containers()]
    images = sorted({name for image in buildah.images() for name in image.names})
    return [
        Leftovers(
            run_id,
            tuple(name for name in containers if is_run_container(name, run_id)),
            tuple(name for name in images if is_run_image(name, run_id)),
            _storages_of(run_id),
        )
        for run_id in run_ids
    ]


def remove_leftovers(buildah: Buildah, found: Leftovers, mounted: set[str]) -> Leftovers:
    """Unmount and remove the containers, then untag the images; returns what went."""
    containers = []
    for name in found.containers:
        if name in mounted:
            buildah.umount_quietly(name)
        if buildah.rm_quietly(name):
            containers.append(name)
    # By name: an image that also got the output tag before the kill keeps it.
    images = tuple(
        name
        for name in found.images
        if (buildah.manifest_rm_quietly if is_temporary_list(name) else buildah.rmi_quietly)(name)
    )
    storages = []
    # A run's temporary storage uses the default storage's driver.
    driver = buildah.storage_driver() if found.storages else ""
    for place in found.storages:
        directory = Path(place)
        remove_storage(
            buildah.with_storage(Storage(directory / "root", directory / "runroot", driver)),
            directory,
        )
        if not directory.exists():
            storages.append(place)
    return Leftovers(found.run_id, tuple(containers), images, tuple(storages))


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def summary(removed: Sequence[Leftovers]) -> str:
    """`removed 1 container and 1 image left by an interrupted run (c04cc4c9)`."""
    runs_named = [each for each in removed if each]
    containers = sum(len(each.containers) for each in runs_named)
    images = sum(len(each.images) for each in runs_named)
    storages = sum(len(each.storages) for each in runs_named)
    what = [_count(containers, "container")] if containers else []
    what += [_count(images, "image")] if images else []
    what += [_count(storages, "temporary directory")] if storages else []
    by = "an interrupted run" if len(runs_named) == 1 else f"{len(runs_named)} interrupted runs"
    ids = ", ".join(each.run_id for each in runs_named)
    listed = " and ".join([", ".join(what[:-1]), what[-1]] if len(what) > 1 else what)
    return f"removed {listed} left by {by} ({ids})"


def sweep_dead_runs(buildah: Buildah, log: Log, directory: Path | None = None) -> list[Leftovers]:
    """Remove what every dead run left and forget those runs; say so in one line.

    Asks buildah nothing unless a dead run's file exists, so a build that follows a clean
    one pays only for reading the run directory.
    """
    with runs.dead_runs(directory) as dead:
        if not dead:
            return []
        try:
            found = find_leftovers(buildah, [run.run_id for run in dead])
            mounted = buildah.mounted_containers() if any(f.containers for f in found) else set()
        except ToolError as exc:
            log(f"WARNING cannot look for what interrupted runs left (a later run will): {exc}")
            return []
        removed = []
        for run, leftovers in zip(dead, found, strict=True):
            gone = remove_leftovers(buildah, leftovers, mounted)
            if gone == leftovers:
                run.forget()
            removed.append(gone)
    swept = [each for each in removed if each]
    if swept:
        log(summary(swept))
    return swept
