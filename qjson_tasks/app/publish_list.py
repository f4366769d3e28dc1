"""`invoke publish` of a multi-platform target: the manifest list and every image in it.

Each platform's image must be the one qjson-tasks verified for the current config (as for a
single image), and the local list on the output tag must hold exactly those images. The list
is pushed with `buildah manifest push --all`; then each platform's image is pulled back by
its digest into a temporary storage and every check runs on that copy (the arm64 one's
smoke under emulation), and its SBOM and provenance are attached beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qjson_tasks.app.attach import push_attachments
from qjson_tasks.app.tools import Tools, log
from qjson_tasks.build.manifest import wanted_entries
from qjson_tasks.build.platforms import platform_view
from qjson_tasks.config.model import Target
from qjson_tasks.config.platforms import Platform
from qjson_tasks.config.remote import RemoteRef
from qjson_tasks.errors import PublishRefused, RegistryError, ToolError
from qjson_tasks.host.registry import RemoteAccess, registry_failure
from qjson_tasks.verify.report import VerifyReport


@dataclass(frozen=True)
class PlatformPush:
    platform: Platform
    pushed: RemoteRef  # by the image's manifest digest
    image_id: str
    report: VerifyReport
    attachments: tuple[str, ...] = ()


@dataclass(frozen=True)
class ListPublishResult:
    pushed: RemoteRef  # the list, with its digest
    list_id: str
    images: tuple[PlatformPush, ...]
    signed_by: str | None
    digest_file: Path | None


def verified_list(
    target: Target, tools: Tools, platforms: tuple[Platform, ...]
) -> tuple[str, list[tuple[Platform, str]]]:
    """The output list's ID and each platform's verified image; PublishRefused otherwise."""
    from qjson_tasks.app.publish import _rerun, verified_output

    images = [(p, verified_output(platform_view(target, p).target, tools)) for p in platforms]
    ref = target.config.output.reference
    list_id = next((i.image_id for i in tools.buildah.images() if ref in i.names), "")
    listed = tools.buildah.manifest_inspect(list_id) if list_id else None  # by ID: local
    wanted = wanted_entries(tools.buildah, images)
    if listed is None or sorted(listed.entries) != sorted(wanted):
        raise PublishRefused(
            f"{ref} is not the manifest list of the verified {', '.join(map(str, platforms))}"
            f" images, so it is not pushed: run `{_rerun(target)}`, which makes it"
        )
    return list_id, images


def publish_list(
    target: Target, tools: Tools, request: object, platforms: tuple[Platform, ...]
) -> ListPublishResult:
    from qjson_tasks.app.publish import (
        DIGEST_FILE,
        PublishRequest,
        _write_atomically,
        check_signing_key,
        push_for_digest,
        remote_check,
    )

    assert isinstance(request, PublishRequest)
    list_id, images = verified_list(target, tools, platforms)
    if request.sign_by:
        check_signing_key(tools, request.sign_by)
    to = request.to
    log(f"==> push {to.tagged} (manifest list: {', '.join(map(str, platforms))})")
    try:
        digest = push_for_digest(
            tools,
            lambda scratch: tools.buildah.manifest_push(
                target.config.output.reference,
                f"docker://{to.tagged}",
                request.access,
                digestfile=scratch / DIGEST_FILE,
                sign_by=request.sign_by,
                tmpdir=scratch,
            ),
        )
    except ToolError as exc:
        doing = f"pushing the list {target.config.output.reference} to {to.tagged}"
        raise registry_failure(exc, to.registry, doing, request.access, "") from None
    pushed = to.by_digest(digest)
    log(f"    pushed {pushed.tagged}@{pushed.digest}")
    # A push compresses the layers, so each image has a new manifest digest there: read
    # them from the list the registry serves.
    served = served_digests(tools, pushed, request.access)
    pushes = []
    for platform, image_id in images:
        if platform.text not in served:
            raise RegistryError(
                f"the list {pushed.pinned} the registry serves has no {platform} image"
                f" (it lists {', '.join(served) or 'none'})"
            )
        view = platform_view(target, platform).target
        by_digest = RemoteRef(to.registry, to.repository, "", served[platform.text])
        report = remote_check(view, tools, by_digest, request.access, image_id)
        attached = push_attachments(tools, by_digest, request.access, image_id)
        pushes.append(PlatformPush(platform, by_digest, image_id, report, attached))
    if request.digest_file:
        _write_atomically(request.digest_file, pushed.digest + "\n")
    return ListPublishResult(pushed, list_id, tuple(pushes), request.sign_by, request.digest_file)


def served_digests(tools: Tools, pushed: RemoteRef, access: RemoteAccess) -> dict[str, str]:
    """platform -> image manifest digest in the list the registry serves as pushed."""
    from qjson_tasks.host.answers import ManifestList
    from qjson_tasks.host.skopeo import Skopeo

    try:
        raw = Skopeo(tools.runner).raw_manifest(pushed.pinned, access)
    except ToolError as exc:
        raise registry_failure(exc, pushed.registry, f"reading {pushed.pinned}", access) from None
    return {entry.platform: entry.digest for entry in ManifestList.from_inspect(raw).entries}


def format_list_result(result: ListPublishResult) -> str:
    pushed = result.pushed
    lines = [
        f"published {pushed.tagged} (manifest list {result.list_id[:12]}), every image"
        " verified in the registry",
        f"  digest: {pushed.digest}",
        f"  pull: {pushed.name}@{pushed.digest}",
        f"  signed by: {result.signed_by or 'not signed'}",
    ]
    for each in result.images:
        lines.append(f"  {each.platform}: {each.pushed.pinned} ({each.image_id[:12]}), verified")
        lines += [f"    attached: {tag}" for tag in each.attachments]
    if result.digest_file:
        lines.append(f"  digest written to {result.digest_file}")
    return "\n".join(lines)
