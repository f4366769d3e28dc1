"""A thin facade over the buildah subcommands the project uses.

Every method builds an argv list and hands it to the runner, so tests can read the exact
commands. Working containers and mounts live in context managers that remove them on the way
out, on errors and on Ctrl-C too, without hiding the original error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from qjson_tasks.errors import ToolError, ToolMissingError
from qjson_tasks.host.answers import (
    ContainerInfo,
    ImageInfo,
    ListedImage,
    ManifestList,
    MountedContainer,
)
from qjson_tasks.host.registry import RemoteAccess
from qjson_tasks.host.runner import Background, Runner, ShRunner
from qjson_tasks.host.storage import Storage

# buildah 1.28's chroot isolation copies itself into a sealed memfd before it starts the
# command; with several runs at once the seal sometimes fails with EBUSY. Nothing has run in
# the container then, so running it again is safe.
CHROOT_SETUP_RACE = "sealing memfd copy: Device or resource busy"
RUN_ATTEMPTS = 3


def _warn(message: str) -> None:
    print(f"WARNING {message}", file=sys.stderr)


ImageListing = Future[list[ListedImage]]


def start_image_listing(runner: Runner | None = None) -> ImageListing:
    """`buildah images` started in a thread, for a Buildah's first images() call.

    On a build where nothing changed this listing is a third of the time left after Python
    has started; run this way it overlaps loading pydantic and the config instead.
    """
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="buildah-images")
    listing = pool.submit(Buildah(runner or ShRunner()).images)
    pool.shutdown(wait=False)
    return listing


class Buildah:
    def __init__(
        self,
        runner: Runner,
        isolation: str = "chroot",
        keep: bool = False,
        listing: ImageListing | None = None,
        storage: Storage | None = None,
    ) -> None:
        self.runner = runner
        self.isolation = isolation
        self.keep = keep
        self._listing = listing
        self.storage = storage  # None: buildah's default storage

    def _run(
        self,
        *args: str,
        stream: bool = False,
        input: str | None = None,
        options: Sequence[str] = (),
        tmpdir: Path | None = None,
    ) -> str:
        """`buildah [options] args`; options are global flags, after this storage's. With
        tmpdir (or this storage's), buildah keeps its temporary blob copies there."""
        storage = self.storage.global_args() if self.storage else []
        argv = ["buildah", *storage, *options, *args]
        tmpdir = tmpdir or (self.storage.tmpdir if self.storage else None)
        env = {**os.environ, "TMPDIR": str(tmpdir)} if tmpdir else None
        return self.runner.run(argv, stream=stream, input=input, env=env)

    def with_storage(self, storage: Storage) -> Buildah:
        """The same facade on another storage (see host/storage.py)."""
        return Buildah(self.runner, isolation=self.isolation, keep=self.keep, storage=storage)

    def storage_driver(self) -> str:
        return self._run("info", "--format", "{{.store.GraphDriverName}}").strip()

    # --- images -------------------------------------------------------------------------
    def inspect_image(self, ref: str) -> ImageInfo | None:
        """What the image's inspect document says, or None when no such local image exists."""
        try:
            out = self._run("inspect", "--type", "image", ref)
        except ToolMissingError:
            raise
        except ToolError as exc:
            if "image not known" in str(exc) or "not found" in str(exc):
                return None
            raise
        return ImageInfo.from_inspect(out)

    def image_id(self, ref: str) -> str | None:
        info = self.inspect_image(ref)
        return info.image_id if info else None

    def pull(self, ref: str, platform: str | None = None) -> str:
        """Pull ref (for platform `os/arch[/variant]`: that entry of its list); its ID."""
        extra = ("--platform", platform) if platform else ()
        return self._run("pull", "--quiet", *extra, ref, stream=True).strip().splitlines()[-1]

    def push(
        self,
        image: str,
        destination: str,
        access: RemoteAccess | None = None,
        *,
        digestfile: Path | None = None,
        sign_by: str | None = None,
        tmpdir: Path | None = None,
    ) -> None:
        """Push to any transport (docker://..., containers-storage:[...]...); digestfile
        receives the pushed manifest's digest; tmpdir holds buildah's temporary copies."""
        self._push(["push"], image, destination, access, digestfile, sign_by, tmpdir)

    def _push(
        self,
        command: Sequence[str],
        source: str,
        destination: str,
        access: RemoteAccess | None,
        digestfile: Path | None,
        sign_by: str | None,
        tmpdir: Path | None,
    ) -> None:
        """`buildah push` and `manifest push` take the same registry and signing flags."""
        access = access or RemoteAccess()
        args = [*command, "--quiet", *access.buildah_args()]
        if digestfile is not None:
            args += ["--digestfile", str(digestfile)]
        if sign_by:
            args += ["--sign-by", sign_by]
        self._run(*args, source, destination, options=access.buildah_globals(), tmpdir=tmpdir)

    def pull_remote(self, ref: str, access: RemoteAccess) -> str:
        """Pull ref from its registry even if an image of that name is here (so the
        signature policy is applied); returns the image ID."""
        args = ["pull", "--quiet", "--policy", "always", *access.buildah_args()]
        if access.policy:
            args += ["--signature-policy", access.policy]
        out = self._run(*args, ref, options=access.buildah_globals())
        return out.strip().splitlines()[-1]

    def tag(self, image: str, *refs: str) -> None:
        self._run("tag", image, *refs)

    def rmi(self, ref: str) -> None:
        self._run("rmi", ref)

    def images(self, intermediate: bool = False) -> list[ListedImage]:
        """Local images with full IDs (`id`) and their `names`; with intermediate, also the
        layer images `buildah build --layers` keeps. The first call takes the answer of the
        listing given to the constructor, if any."""
        if self._listing is not None and not intermediate:
            listing, self._listing = self._listing, None
            return listing.result()
        extra = ("--all",) if intermediate else ()
        return ListedImage.listing(self._run("images", *extra, "--json", "--no-trunc"))

    def image_names(self, image_id: str) -> list[str] | None:
        """The names of a local image by full ID, None when it does not exist."""
        for image in self.images():
            if image.image_id == image_id:
                return list(image.names)
        return None

    def build(self, containerfile: Path, tag: str, context: Path, *extra: str) -> str:
        """`buildah build --layers` of a Containerfile (the bench's yardstick)."""
        return self._run(
            "build", "--layers", "--pull=never", "--isolation", self.isolation, "--quiet",
            "-f", str(containerfile), "-t", tag, *extra, str(context),
        )  # fmt: skip

    def version(self) -> str:
        """`buildah version 1.28.2`, without the commit and Go version."""
        return self._run("--version").split(" (")[0].strip()

    # --- manifest lists -----------------------------------------------------------------
    def manifest_create(self, name: str) -> str:
        """An empty manifest list named name; its ID."""
        lines = self._run("manifest", "create", name).strip().splitlines()
        return lines[-1] if lines else ""

    def manifest_add(
        self, name: str, image_id: str, *, os: str, arch: str, variant: str = ""
    ) -> None:
        """Add a local image (by ID) to the list, recording its os/arch/variant."""
        args = ["manifest", "add", "--os", os, "--arch", arch]
        if variant:
            args += ["--variant", variant]
        self._run(*args, name, f"containers-storage:{image_id}")

    def manifest_inspect(self, name: str) -> ManifestList | None:
        """A local list's entries; None when it is a plain image. Give an image ID: buildah
        1.28 looks a name that is not a local list up in the registry it points at (also
        for a local plain image of that name)."""
        try:
            return ManifestList.from_inspect(self._run("manifest", "inspect", name))
        except ToolMissingError:
            raise
        except ToolError as exc:
            if "not a list type" in str(exc) or "image not known" in str(exc):
                return None
            raise

    def manifest_rm(self, name: str) -> None:
        """Remove a list's name (by ID: the list). Never `rmi` a list: buildah 1.28 resolves
        it to an image it holds and removes that image."""
        self._run("manifest", "rm", name)

    def manifest_push(
        self,
        name: str,
        destination: str,
        access: RemoteAccess | None = None,
        *,
        digestfile: Path | None = None,
        sign_by: str | None = None,
        tmpdir: Path | None = None,
    ) -> None:
        """`manifest push --all`: the list and every image it names, as an OCI index. The
        push compresses layers, so the registry's image digests are not the local ones."""
        command = ["manifest", "push", "--all", "--format", "oci"]
        self._push(command, name, destination, access, digestfile, sign_by, tmpdir)

    # --- containers ---------------------------------------------------------------------
    def from_image(self, image: str, name: str) -> str:
        return self._run("from", "--quiet", "--pull=never", "--name", name, image).strip()

    def from_scratch(self, name: str) -> str:
        return self._run("from", "--quiet", "--name", name, "scratch").strip()

    def rm(self, container: str) -> None:
        self._run("rm", container)

    def run(
        self,
        container: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        user: str | None = None,
        mounts: Sequence[str] = (),
        stream: bool = True,
    ) -> str:
        args = ["run", "--isolation", self.isolation]
        for mount in mounts:
            args += ["--mount", mount]
        for key, value in (env or {}).items():
            args += ["--env", f"{key}={value}"]
        if workdir:
            args += ["--workingdir", workdir]
        if user:
            args += ["--user", user]
        command = (*args, container, "--", *argv)
        for attempt in range(2, RUN_ATTEMPTS + 1):
            try:
                return self._run(*command, stream=stream)
            except ToolError as exc:
                if CHROOT_SETUP_RACE not in str(exc):
                    raise
                _warn(f"buildah run failed before the command started; trying again ({attempt})")
        return self._run(*command, stream=stream)

    def start_run(self, container: str, argv: Sequence[str], *, user: str) -> Background:
        """`buildah run` of a server left running: stop it with a second run (nginx -s quit);
        a signal to this process would leave the server's children running."""
        storage = self.storage.global_args() if self.storage else []
        args = ["buildah", *storage, "run", "--isolation", self.isolation, "--user", user]
        return self.runner.start([*args, container, "--", *argv])

    def copy(
        self,
        container: str,
        source: str,
        destination: str,
        *,
        chown: str | None = None,
        from_image: str | None = None,
    ) -> None:
        """Copy a host path, or with from_image a path inside that image or container."""
        args = ["copy", "--quiet"]
        if chown:
            args += ["--chown", chown]
        if from_image:
            args += ["--from", from_image]
        self._run(*args, container, source, destination)

    def config(
        self,
        container: str,
        *,
        labels: Mapping[str, str] | None = None,
        user: str | None = None,
        workdir: str | None = None,
        env: Mapping[str, str] | None = None,
        cmd: str | None = None,
        os: str | None = None,
        arch: str | None = None,
        variant: str | None = None,
    ) -> None:
        args = ["config"]
        for key, value in (labels or {}).items():
            args += ["--label", f"{key}={value}"]
        for key, value in (env or {}).items():
            args += ["--env", f"{key}={value}"]
        if user is not None:
            args += ["--user", user]
        if workdir is not None:
            args += ["--workingdir", workdir]
        if cmd is not None:
            args += ["--cmd", cmd]
        if os:
            args += ["--os", os]
        if arch:
            args += ["--arch", arch]
        if variant:
            args += ["--variant", variant]
        if len(args) > 1:
            self._run(*args, container)

    def commit(
        self,
        container: str,
        ref: str | None = None,
        *,
        timestamp: int | None = None,
    ) -> str:
        """Commit; with no ref the image stays unnamed. Returns the image ID."""
        args = ["commit", "--quiet", "--identity-label=false"]
        if timestamp is not None:
            args += ["--timestamp", str(timestamp)]
        args.append(container)
        if ref:
            args.append(ref)
        return self._run(*args).strip().splitlines()[-1]

    def mount(self, container: str) -> Path:
        return Path(self._run("mount", container).strip())

    def umount(self, container: str) -> None:
        self._run("umount", container)

    def containers(self) -> list[ContainerInfo]:
        return ContainerInfo.listing(self._run("containers", "--json"))

    def mounted_containers(self) -> set[str]:
        """The names of the working containers buildah counts as mounted."""
        return {entry.name for entry in MountedContainer.listing(self._run("mount", "--json"))}

    # --- scoped resources ---------------------------------------------------------------
    @contextmanager
    def container(self, image: str, name: str, *, scratch: bool = False) -> Iterator[str]:
        """A working container removed on exit (kept, with a hint, when keep is set)."""
        ctr = self.from_scratch(name) if scratch else self.from_image(image, name)
        failed = True
        try:
            yield ctr
            failed = False
        finally:
            if self.keep and failed:
                _warn(f"kept container '{name}' for debugging; remove it with: buildah rm {name}")
            else:
                self._quietly(self.rm, ctr)

    @contextmanager
    def mounted(self, container: str) -> Iterator[Path]:
        path = self.mount(container)
        try:
            yield path
        finally:
            self._quietly(self.umount, container)

    def rmi_quietly(self, ref: str) -> bool:
        return self._quietly(self.rmi, ref)

    def manifest_rm_quietly(self, name: str) -> bool:
        return self._quietly(self.manifest_rm, name)

    def rm_quietly(self, container: str) -> bool:
        return self._quietly(self.rm, container)

    def umount_quietly(self, container: str) -> bool:
        return self._quietly(self.umount, container)

    def empty_storage_quietly(self) -> None:
        """Remove every container and image of this facade's own (temporary) storage."""
        if self.storage is None:
            raise ToolError("refusing to empty buildah's default storage")
        self._quietly(self._run, "rm", "--all")
        self._quietly(self._run, "rmi", "--all", "--force")

    def _quietly(self, action: Any, *args: str) -> bool:
        # Cleanup must not replace the error that got us here; report and go on.
        try:
            action(*args)
        except ToolError as exc:
            _warn(f"cleanup: {exc}")
            return False
        return True
