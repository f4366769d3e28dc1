"""The unit cache: build units kept in a registry, so a fresh CI runner pulls what another
runner built instead of building it.

A unit is kept as `REGISTRY/NAMESPACE/unit-KIND:HASH`. Before pulling, its labels are read
with `skopeo inspect` (no layer moves) and must say they are that unit: the builder and
rock-tree units name themselves (UNIT_NAME_LABEL), a runtime image carries the hashes and
image IDs it was made from. The runtime unit's SBOM and provenance statement travel beside
it as one-file images (`...:HASH.sbom`, `...:HASH.att`), so a runner that pulls it can
verify it. The cache never fails a build: a registry that can't be reached, or a unit that
isn't what its tag says, is a warning and the unit is built here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from qjson_tasks.build.fileimage import Document, image_documents, push_file, read_file
from qjson_tasks.build.labels import UNIT_NAME_LABEL
from qjson_tasks.build.plan import BuildPlan, ImageFacts, Unit
from qjson_tasks.build.session import BuildSession, Log
from qjson_tasks.config.model import Cache
from qjson_tasks.errors import ToolError
from qjson_tasks.host.locks import private_dir, user_dir
from qjson_tasks.host.registry import RemoteAccess, last_error, registry_failure, unreachable
from qjson_tasks.host.skopeo import Skopeo
from qjson_tasks.host.storage import scratch_dir
from qjson_tasks.sbom.store import store, write_atomically


def pending_dir() -> Path:
    """Where a run notes the unit pushes it owes, one empty file each (per user)."""
    return private_dir(user_dir("unit-cache-pending"))


def remote_ids_dir() -> Path:
    """The IDs registries gave images that are not here (UnitCache.remote_image)."""
    return private_dir(user_dir("remote-image-ids"))


def expected_labels(plan: BuildPlan, unit: Unit) -> dict[str, str]:
    """What a cached image of unit must say about itself."""
    if unit.kind == "runtime":
        return {**plan.labels, **plan.provenance_labels()}
    return {UNIT_NAME_LABEL: unit.name}


@dataclass
class UnitCache:
    repository: str  # REGISTRY/NAMESPACE
    access: RemoteAccess
    push: bool
    skopeo: Skopeo
    log: Log
    reachable: bool = True  # False after the first failure: one warning, then local only
    checked: dict[str, bool] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)  # ref -> the digest whose labels held

    @classmethod
    def from_config(
        cls, cache: Cache, access: RemoteAccess | None, skopeo: Skopeo, log: Log
    ) -> UnitCache:
        """access: the run's registry flags (--no-tls-verify, --authfile), if any."""
        access = access or RemoteAccess()
        if not cache.tls_verify:
            access = RemoteAccess(False, access.authfile, access.registries_d, access.policy)
        return cls(cache.repository, access, cache.push, skopeo, log)

    @property
    def registry(self) -> str:
        return self.repository.split("/", 1)[0]

    def ref(self, unit: Unit) -> str:
        return f"{self.repository}/unit-{unit.kind}:{unit.hash}"

    def _warn(self, exc: ToolError, doing: str) -> None:
        failure = registry_failure(exc, self.registry, doing, self.access)
        self.log(f"WARNING unit cache: {failure}; going on without the cache")
        self.reachable = False

    def remote_image(self, ref: str) -> ImageFacts | None:
        """A builder image that is not here, by the ID its registry gives it: the units'
        hashes need only that, and with the rock tree in the cache the image itself is
        never pulled. None for a local-only name, or (warned) when it can't be asked."""
        registry = ref.split("/", 1)[0]
        if "/" not in ref or registry == "localhost" or not self.reachable:
            return None
        access = (
            self.access
            if registry == self.registry
            else RemoteAccess(authfile=self.access.authfile, registries_d=self.access.registries_d)
        )
        # Remembered like a local tag: a run where nothing changed asks no registry.
        memo = remote_ids_dir() / hashlib.sha256(ref.encode()).hexdigest()[:32]
        image_id = memo.read_text().strip() if memo.is_file() else ""
        if not image_id:
            try:
                image_id = self.skopeo.image_id(ref, access) or ""
            except ToolError as exc:
                failure = registry_failure(exc, registry, f"looking up {ref}", access)
                self.log(f"WARNING unit cache: {failure}; pulling it instead")
                return None
            if image_id:
                write_atomically(memo, image_id.encode())
        if image_id:
            self.log(f"    {ref} is not here: its ID {image_id[:12]}, from its registry")
        return ImageFacts(ref, image_id) if image_id else None

    def holds(self, plan: BuildPlan, unit: Unit) -> bool:
        """Whether the cache has unit, labelled as that unit (a mismatch is a warning). A
        registry that can't be reached turns the cache off for the run; any other failed
        lookup (some registries answer `denied` for a repository that doesn't exist yet)
        counts as absent, so a push is still tried and its own error, if any, is shown."""
        ref = self.ref(unit)
        if ref in self.checked or not self.reachable:
            return self.checked.get(ref, False)
        try:
            found = self.skopeo.inspect(ref, self.access)
        except ToolError as exc:
            if unreachable(exc):
                self._warn(exc, f"looking up {ref}")
            else:
                failure = registry_failure(exc, self.registry, f"looking up {ref}", self.access)
                self.log(f"WARNING unit cache: {failure}; counted as not in the cache")
                self.checked[ref] = False
            return False
        if found is not None:
            self.digests[ref] = found.digest
        good = found is not None
        for key, value in expected_labels(plan, unit).items() if found else ():
            if found.labels.get(key) != value:
                self.log(
                    f"WARNING unit cache: {ref} is labelled {key}={found.labels.get(key)!r},"
                    f" not {value!r}: not the unit its tag names, so it is ignored"
                )
                good = False
                break
        self.checked[ref] = good
        return good

    def take(self, session: BuildSession, unit: Unit, local: str) -> str | None:
        """Pull unit under the local name; its image ID, or None (warned) if that fails.
        It is pulled by the digest whose labels were checked, so a tag moved in between
        can't bring in another image."""
        if not self.holds(session.plan, unit):
            return None
        ref, buildah = self.ref(unit), session.buildah
        pinned = f"{ref.rsplit(':', 1)[0]}@{self.digests[ref]}" if self.digests.get(ref) else ref
        session.log(f"    {unit.name}: pulling it from the unit cache ({ref})")
        try:
            image_id = buildah.pull_remote(f"docker://{pinned}", self.access)
            buildah.tag(image_id, local)
            if unit.kind == "runtime" and not self._fetch_documents(session, unit, image_id):
                buildah.rmi_quietly(local)
                return None
        except ToolError as exc:
            self._warn(exc, f"pulling {ref}")
            buildah.rmi_quietly(local)
            return None
        except OSError as exc:  # the SBOM store
            self.log(f"WARNING unit cache: {ref}: {exc}; building it here")
            buildah.rmi_quietly(local)
            return None
        finally:
            if buildah.image_id(pinned):
                buildah.rmi_quietly(pinned)  # the registry's name only; the image keeps `local`
        return image_id

    def _fetch_documents(self, session: BuildSession, unit: Unit, image_id: str) -> bool:
        """The runtime's SBOM (which verification checks) and provenance statement, into
        the store, unless they are there already."""
        sha256, wanted = image_documents(session.buildah, image_id)
        for (suffix, inside), path in wanted:
            if path.is_file():
                continue
            ref = f"{self.ref(unit)}.{suffix}"
            try:
                document = read_file(session.buildah, ref, inside, self.access, session.run_id)
            except ToolError as exc:
                if suffix != "sbom":  # verification needs only the SBOM
                    session.log(f"    no provenance statement from {ref} ({last_error(exc)})")
                    continue
                self._warn(exc, f"pulling {ref}")
                return False
            if suffix == "sbom":
                if hashlib.sha256(document).hexdigest() != sha256:
                    self.log(f"WARNING unit cache: {ref} is not the SBOM the image names")
                    return False
                store(document)
            else:
                write_atomically(path, document)
        return True

    def _marker(self, unit: Unit) -> Path:
        return pending_dir() / hashlib.sha256(self.ref(unit).encode()).hexdigest()[:32]

    def pending(self, units: tuple[Unit, ...]) -> bool:
        """Whether a push of one of these units is still owed (an earlier run was
        interrupted or could not reach the registry): a file lookup, no network."""
        return self.push and any(self._marker(unit).exists() for unit in units)

    def settle(self, units: tuple[Unit, ...]) -> None:
        """Forget owed pushes of units that are no longer here to push."""
        for unit in units:
            self._marker(unit).unlink(missing_ok=True)

    def put(self, session: BuildSession, units: tuple[Unit, ...]) -> list[str]:
        """Push the units the cache lacks (after a build); the names of those pushed. Each
        stays marked as owed until its push went through, so a later run, even one where
        nothing changed, pushes what an interrupted or failed one did not."""
        if not self.push:
            return []
        for unit in units:
            self._marker(unit).touch()
        pushed = []
        for unit in units:
            if not self.reachable:
                break
            if self.holds(session.plan, unit):
                self._marker(unit).unlink(missing_ok=True)
            elif self._push(session, unit):
                self._marker(unit).unlink(missing_ok=True)
                pushed.append(unit.kind)
        return pushed

    def _documents(self, session: BuildSession, unit: Unit) -> list[Document]:
        """The runtime unit's SBOM and provenance statement, as far as they are here."""
        if unit.kind != "runtime":
            return []
        _, found = image_documents(session.buildah, session.buildah.image_id(unit.image) or "")
        return [(kind, path) for kind, path in found if path.is_file()]

    def _push(self, session: BuildSession, unit: Unit) -> bool:
        ref, buildah = self.ref(unit), session.buildah
        session.log(f"    {unit.name}: pushing it to the unit cache ({ref})")
        try:
            documents = self._documents(session, unit)
            # The documents first: a runtime unit in the cache always has them beside it.
            for (suffix, inside), path in documents:
                push_file(buildah, path, inside, f"{ref}.{suffix}", self.access, session.run_id)
            with scratch_dir(session.run_id) as tmpdir:
                buildah.push(unit.image, f"docker://{ref}", self.access, tmpdir=tmpdir)
        except ToolError as exc:
            self._warn(exc, f"pushing {ref}")
            return False
        self.checked[ref] = True
        return True
