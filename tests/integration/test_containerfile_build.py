"""The committed offline Containerfile, built with `buildah build`, gives the same prefix.

What a docker/podman user gets from containerfiles/offline.Containerfile must be what
`invoke build-runtime` makes: every path under the prefix, with its type, mode, owner and
content (sha256) or link target, equal between the two images.

`--layers` keeps the stages' layers as the build cache (unnamed images, reused by the next
run, like the builder unit); the tagged result carries the session suffix and is removed by
the session finalizer.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from qjson_tasks.app.containerfile import render_containerfile
from qjson_tasks.app.tools import CONTAINERFILE_DIR, PROJECT_DIR
from qjson_tasks.build.pipeline import BuildResult
from qjson_tasks.config.model import Target
from qjson_tasks.host.buildah import Buildah
from tests.integration.conftest import OURS, SUFFIX, TEST_REPOSITORY

CONTAINERFILE = CONTAINERFILE_DIR / "offline.Containerfile"


def describe_tree(root: Path) -> dict[str, str]:
    """Every path under root: type, mode, owner, and content hash or link target."""
    entries: dict[str, str] = {}
    for directory, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(directory, name)
            info = path.lstat()
            head = f"{stat.filemode(info.st_mode)} {info.st_uid}:{info.st_gid}"
            if stat.S_ISLNK(info.st_mode):
                entries[str(path.relative_to(root))] = f"{head} -> {os.readlink(path)}"
            elif stat.S_ISREG(info.st_mode):
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                entries[str(path.relative_to(root))] = f"{head} sha256:{digest}"
            else:
                entries[str(path.relative_to(root))] = head
    return entries


def prefix_of(buildah: Buildah, image: str, role: str, prefix: str) -> dict[str, str]:
    with (
        buildah.container(image, f"{OURS}cf-{role}-{SUFFIX}") as ctr,
        buildah.mounted(ctr) as root,
    ):
        return describe_tree(root / prefix.lstrip("/"))


def build_containers(buildah: Buildah) -> set[str]:
    """Working containers as `buildah build` names them (`<image>-working-container`)."""
    return {c.name for c in buildah.containers() if c.name.endswith("-working-container")}


def test_offline_containerfile_builds_the_same_prefix(
    built: BuildResult, offline_target: Target, buildah: Buildah
) -> None:
    config = offline_target.config
    assert CONTAINERFILE.read_text() == render_containerfile(offline_target), (
        f"{CONTAINERFILE} is out of date; run: invoke containerfile --target offline --write"
    )
    before = build_containers(buildah)
    ref = f"{TEST_REPOSITORY}/offline-containerfile-{SUFFIX}:latest"
    buildah.runner.run(
        [
            "buildah",
            "build",
            "--layers",
            "--force-rm",
            "--isolation",
            "chroot",
            "--pull=never",
            "-f",
            str(CONTAINERFILE),
            "-t",
            ref,
            str(PROJECT_DIR),
        ],
        stream=True,
    )
    assert build_containers(buildah) <= before, "buildah build left working containers"

    info = buildah.inspect_image(ref)
    assert info is not None
    image_config = info.config
    assert image_config.get("User") == config.runtime.user
    assert image_config["Labels"]["org.qjson-tasks.target"] == "offline"

    prefix = config.runtime.prefix
    from_containerfile = prefix_of(buildah, ref, "containerfile", prefix)
    from_pipeline = prefix_of(buildah, built.image_ref, "pipeline", prefix)
    assert "lib/lua/5.1/qjson.so" in from_pipeline
    differences = {
        path: (from_containerfile.get(path), from_pipeline.get(path))
        for path in sorted(from_containerfile.keys() | from_pipeline.keys())
        if from_containerfile.get(path) != from_pipeline.get(path)
    }
    assert not differences, f"(Containerfile, build-runtime) differ under {prefix}: {differences}"
