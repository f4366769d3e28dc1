"""The recording fake runner plus a registry, a second storage and gpg.

Calls on another storage (buildah's global --root/--runroot/--storage-driver first) go to a
FakeRunner of their own, `other`, so a test can see that a temporary storage was emptied
and the default one left alone. Every argv, of either storage, is kept in `calls`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qjson_tasks.errors import ToolError
from tests.unit.fakes import Argv, FakeRunner

GLOBALS_WITH_VALUES = ("--root", "--runroot", "--storage-driver", "--registries-conf-dir")
DIGEST = "sha256:" + "d" * 64


def split_globals(args: Argv) -> tuple[dict[str, str], Argv]:
    """buildah's global flags before the subcommand, and the rest."""
    flags: dict[str, str] = {}
    while args and args[0] in GLOBALS_WITH_VALUES:
        flags[args[0]] = args[1]
        args = args[2:]
    return flags, args


@dataclass
class StorageFake(FakeRunner):
    """A second storage: its inspect answers carry the digest an image was pulled by."""

    image_digests: dict[str, str] = field(default_factory=dict)

    def _buildah(self, sub: str, args: Argv) -> str:
        out = super()._buildah(sub, args)
        if sub != "inspect":
            return out
        document = json.loads(out)
        document["FromImageDigest"] = self.image_digests.get(document["FromImageID"], "")
        return json.dumps(document)


@dataclass
class RegistryFake(FakeRunner):
    registry: dict[str, str] = field(default_factory=dict)  # docker://... -> image id
    secret_keys: set[str] = field(default_factory=set)
    served_digest: str = DIGEST  # what a push reports, and a pull by tag records
    refuse: Callable[[Argv], str | None] | None = None  # argv -> the tool's error output
    other: StorageFake | None = None
    moved_tag_to: str | None = None  # what a tag serves when another push moved it

    def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        stream: bool = False,
        cwd: Path | None = None,
    ) -> str:
        argv = list(argv)
        failure = self.refuse(argv) if self.refuse else None
        if failure is not None:
            self.calls.append(argv)
            raise ToolError(f"command failed (exit 125): {argv[0]} ...", output=failure)
        if argv[0] == "gpg":
            self.calls.append(argv)
            if argv[-1] not in self.secret_keys:
                raise ToolError("command failed (exit 2): gpg ...", output="No secret key")
            return f"fpr:::::::::{argv[-1]}:\n"
        if argv[0] == "umount":
            self.calls.append(argv)
            return ""
        flags, rest = split_globals(argv[1:])
        if argv[0] == "buildah" and rest[:1] in (["push"], ["pull"], ["info"]):
            if "--root" in flags:
                Path(flags["--root"]).mkdir(parents=True, exist_ok=True)  # as buildah does
            self.calls.append(argv)
            return self._remote(flags, rest)
        if "--root" in flags:
            Path(flags["--root"]).mkdir(parents=True, exist_ok=True)  # as buildah does
            self.calls.append(argv)
            return self._other().run(["buildah", *rest], input=input, stream=stream)
        return super().run(argv, input=input, env=env, stream=stream, cwd=cwd)

    def _other(self) -> StorageFake:
        if self.other is None:
            self.other = StorageFake(self.mount_root)
        return self.other

    def _remote(self, flags: dict[str, str], args: Argv) -> str:
        if args[0] == "info":
            return "overlay\n"
        if args[0] == "push":
            source, destination = args[-2], args[-1]
            image_id = self.images.get(source, source)
            if destination.startswith("containers-storage:"):
                self._other().images[destination.split("]", 1)[1]] = image_id
            else:
                self.registry[destination] = image_id
                if "--digestfile" in args:
                    Path(args[args.index("--digestfile") + 1]).write_text(self.served_digest)
            return ""
        # pull, into the other storage: what was last pushed to that repository (and tag)
        ref = args[-1]
        name, _, digest = ref.partition("@")
        wanted = [d for d in self.registry if (d.rsplit(":", 1)[0] == name if digest else d == ref)]
        if not wanted:
            raise ToolError("command failed (exit 125): buildah pull", output="manifest unknown")
        image_id = self.registry[wanted[-1]]
        if not digest and self.moved_tag_to:
            image_id = self.moved_tag_to
        other = self._other()
        other.images[ref.removeprefix("docker://")] = image_id
        other.image_digests[image_id] = self.served_digest
        return image_id + "\n"
