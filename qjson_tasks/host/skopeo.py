"""`skopeo inspect` of an image in a registry: its manifest digest and labels, read without
pulling a layer (the unit cache asks this before it pulls anything)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from qjson_tasks.errors import ToolError
from qjson_tasks.host.registry import RemoteAccess
from qjson_tasks.host.rootless import user_authfile
from qjson_tasks.host.runner import Runner

# What containers/image says when the registry has no manifest under that tag.
_MISSING = ("manifest unknown", "name unknown")


@dataclass(frozen=True)
class RemoteImage:
    digest: str
    labels: Mapping[str, str] = field(default_factory=dict)


class Skopeo:
    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    def _inspect(self, ref: str, access: RemoteAccess, *flags: str) -> str | None:
        globals_ = ["--registries.d", access.registries_d] if access.registries_d else []
        argv = ["skopeo", *globals_, "inspect", *flags, "--retry-times", "0"]
        argv += access.buildah_args()
        if access.authfile is None and (authfile := user_authfile()):
            argv += ["--authfile", authfile]
        try:
            return self.runner.run([*argv, f"docker://{ref}"])
        except ToolError as exc:
            if any(word in (exc.output or str(exc)) for word in _MISSING):
                return None
            raise

    def inspect(self, ref: str, access: RemoteAccess) -> RemoteImage | None:
        """docker://ref's digest and labels; None when the registry has no such image.
        Other failures (unreachable, refused) raise ToolError."""
        out = self._inspect(ref, access, "--no-tags")  # not every tag of the repository
        if out is None:
            return None
        document = json.loads(out)
        return RemoteImage(str(document.get("Digest", "")), dict(document.get("Labels") or {}))

    def image_id(self, ref: str, access: RemoteAccess) -> str | None:
        """The ID buildah gives docker://ref (for this machine's platform) once pulled: the
        sha256 of its config blob, read without pulling a layer. None when it isn't there."""
        config = self._inspect(ref, access, "--config", "--raw")
        return None if config is None else hashlib.sha256(config.encode()).hexdigest()

    def raw_manifest(self, ref: str, access: RemoteAccess) -> str:
        """The manifest (or list) docker://ref serves, byte for byte (`inspect --raw`)."""
        globals_ = ["--registries.d", access.registries_d] if access.registries_d else []
        argv = ["skopeo", *globals_, "inspect", "--raw", "--retry-times", "0"]
        argv += access.buildah_args()
        if access.authfile is None and (authfile := user_authfile()):
            argv += ["--authfile", authfile]  # as inspect does, inside `buildah unshare`
        return self.runner.run([*argv, f"docker://{ref}"])
