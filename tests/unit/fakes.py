"""A recording fake runner: answers buildah like a tiny in-memory store, fails on request."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qjson_tasks.errors import ToolError

Argv = list[str]


class Killed(BaseException):
    """What a SIGKILL looks like to the fake: the call never returns and no call after it
    has any effect, so no cleanup happens either."""


def is_call(*words: str) -> Callable[[Argv], bool]:
    """Match a call whose argv contains these words in order (not necessarily adjacent)."""

    def match(argv: Argv) -> bool:
        position = 0
        for word in words:
            try:
                position = argv.index(word, position) + 1
            except ValueError:
                return False
        return True

    return match


@dataclass
class FakeRunner:
    mount_root: Path
    images: dict[str, str] = field(default_factory=dict)  # ref -> id
    fail_on: Callable[[Argv], bool] | None = None
    interrupt_on: Callable[[Argv], bool] | None = None
    kill_on: Callable[[Argv], bool] | None = None
    killed: bool = False
    calls: list[Argv] = field(default_factory=list)
    unnamed: list[str] = field(default_factory=list)
    live_containers: set[str] = field(default_factory=set)
    live_mounts: set[str] = field(default_factory=set)
    container_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    image_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    sha256_ids: bool = False  # commits get IDs shaped like buildah's (64 hex digits)
    image_env: list[str] = field(default_factory=list)  # every image's config Env
    pulled_ids: dict[str, str] = field(default_factory=dict)  # pulled ref -> id ("pulled")

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
        if self.killed or (self.kill_on and self.kill_on(argv)):
            self.killed = True
            raise Killed(" ".join(argv))
        self.calls.append(argv)
        if self.interrupt_on and self.interrupt_on(argv):
            raise KeyboardInterrupt
        if self.fail_on and self.fail_on(argv):
            raise ToolError(f"command failed (exit 1): {' '.join(argv)}\nboom")
        if argv[0] != "buildah":
            return ""
        return self._buildah(argv[1], argv[2:])

    def _buildah(self, sub: str, args: Argv) -> str:
        if sub == "inspect":
            ref = args[-1]
            known_ids = {*self.images.values(), *self.unnamed}
            if ref not in self.images and ref not in known_ids:
                raise ToolError(
                    f"command failed (exit 125): buildah inspect {ref}\nimage not known"
                )
            image_id = self.images.get(ref, ref)
            labels = self.image_labels.get(image_id, {})
            config = {
                "config": {"Labels": labels, "Env": self.image_env},
                "created": "1970-01-01T00:00:00Z",
            }
            return json.dumps({"FromImageID": image_id, "OCIv1": config})
        if sub == "from":
            name = args[args.index("--name") + 1]
            self.live_containers.add(name)
            return name
        if sub == "rm":
            self.live_containers.discard(args[-1])
            return ""
        if sub == "mount" and args == ["--json"]:
            return json.dumps(
                [{"container": c, "mountPoint": "/m"} for c in sorted(self.live_mounts)]
            )
        if sub == "mount":
            self.live_mounts.add(args[-1])
            return str(self.mount_root)
        if sub == "umount":
            self.live_mounts.discard(args[-1])
            return ""
        if sub == "commit":
            image_id = f"{len(self.calls):064x}" if self.sha256_ids else f"id{len(self.calls):062d}"
            names = [a for a in args if not a.startswith("-") and "/" in a]
            self.image_labels[image_id] = self.container_labels.get(args[-1 - bool(names)], {})
            if names:
                self._name(names[-1], image_id)
            else:
                self.unnamed.append(image_id)
            return image_id + "\n"
        if sub == "images":
            listed = [
                {"id": i, "names": [r for r, v in self.images.items() if v == i]}
                for i in {*self.images.values(), *self.unnamed}
            ]
            return json.dumps(listed)
        if sub == "containers":
            listed = [{"id": f"id-{c}", "containername": c} for c in sorted(self.live_containers)]
            return json.dumps(listed)
        if sub == "pull":
            image_id = self.pulled_ids.get(args[-1], "pulled")
            self.images[args[-1]] = image_id
            return image_id + "\n"
        if sub == "config":
            labels = self.container_labels.setdefault(args[-1], {})
            for i, arg in enumerate(args[:-1]):
                if arg == "--label":
                    key, _, value = args[i + 1].partition("=")
                    labels[key] = value
            return ""
        if sub == "tag":
            for ref in args[1:]:
                self._name(ref, args[0])
            return ""
        if sub == "rmi":
            # By name: untag, and the image goes with its last name. By ID: delete it.
            target = args[-1]
            self.images.pop(target, None)
            self.unnamed = [i for i in self.unnamed if i != target]
            for ref in [r for r, v in self.images.items() if v == target]:
                del self.images[ref]
            return ""
        return ""

    def _name(self, ref: str, image_id: str) -> None:
        """Point ref at image_id; an image left without names stays, unnamed, as in buildah."""
        previous = self.images.get(ref)
        self.images[ref] = image_id
        if previous and previous != image_id and previous not in self.images.values():
            self.unnamed.append(previous)

    def subcommands(self) -> list[str]:
        return [c[1] for c in self.calls if c[0] == "buildah"]

    def left_behind(self) -> tuple[set[str], set[str]]:
        """(working containers, mounts) that were made and never removed."""
        return self.live_containers, self.live_mounts


def runs(program: str) -> Callable[[Argv], bool]:
    """Match `buildah run ... -- program ...`."""

    def match(argv: Argv) -> bool:
        return argv[:2] == ["buildah", "run"] and argv[argv.index("--") + 1] == program

    return match
