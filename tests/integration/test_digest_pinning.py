"""A base image given by digest is used by that digest, end to end."""

from __future__ import annotations

from qjson_tasks.app.build import run_build
from qjson_tasks.app.pinning import local_digest, with_digest
from qjson_tasks.app.targets import floating_warnings
from qjson_tasks.app.tools import Tools
from qjson_tasks.build.images import image_labels
from qjson_tasks.build.pipeline import BuildResult
from qjson_tasks.config.model import Target
from qjson_tasks.host.buildah import Buildah
from tests.integration.conftest import retarget

BASE = "localhost/qjson-tasks/bookworm-luajit:latest"


def test_a_base_pinned_by_digest_builds_from_that_digest(
    built: BuildResult, offline_target: Target, buildah: Buildah
) -> None:
    digest = local_digest(buildah, BASE)
    assert digest and digest.startswith("sha256:")
    pinned_ref = with_digest(BASE, digest)
    config = offline_target.config
    runtime = config.runtime.model_copy(update={"base_image": pinned_ref})
    pinned = retarget(
        Target("offline", offline_target.path, config.model_copy(update={"runtime": runtime})),
        "pinned-base",
    )
    assert floating_warnings(pinned) == []

    result = run_build(pinned, Tools(buildah.runner, buildah))

    assert result.verification is None or result.verification.passed
    labels = image_labels(buildah, result.image_ref)
    assert labels["org.qjson-tasks.base-image"] == pinned_ref
    # Same base image, so the same layers below the tree as the unpinned build.
    base_layers = buildah.inspect_image(pinned_ref).diff_ids
    ours = buildah.inspect_image(result.image_ref).diff_ids
    assert ours[: len(base_layers)] == base_layers
    assert result.units["runtime"] != built.units["runtime"]  # the reference is an input
