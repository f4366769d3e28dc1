"""verify_remote: the checks on an image as a registry serves it.

The image is pulled by digest into a temporary storage (host/storage.py), so nothing local
stands in for what the registry holds: every blob is read from the registry and checked
against its digest, and a signature policy, if given, is applied to the pull. The base image
the checks compare with (contract, hygiene) is not in the registry; it is copied into the
temporary storage from local storage, by the ID the image's labels record. The storage is
removed afterwards, also on failure and Ctrl-C.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace

from qjson_tasks.build.plan import LABEL_PREFIX
from qjson_tasks.config.model import Target
from qjson_tasks.config.remote import RemoteRef
from qjson_tasks.errors import RegistryError, ToolError, VerificationError
from qjson_tasks.host.buildah import Buildah
from qjson_tasks.host.registry import RemoteAccess, registry_failure
from qjson_tasks.host.storage import temporary_storage
from qjson_tasks.verify.image import verify_image
from qjson_tasks.verify.report import CheckResult, VerifyReport

_REJECTED = re.compile(r"Source image rejected: ([^\n]+)")
_FINGERPRINT = re.compile(r'Fingerprint:"([0-9A-F]+)"')
_CORRUPT = re.compile(r"Digest did not match[^\n]*|manifest verification failed[^\n]*")


def verify_remote(
    ref: RemoteRef,
    target: Target,
    buildah: Buildah,
    access: RemoteAccess,
    run_id: str,
    expected_id: str | None = None,
) -> VerifyReport:
    """Every check on ref as pulled from its registry, by digest when ref has one (then its
    tag, if any, must serve the same image); with expected_id, the pulled image must be that
    local image (the same config digest). The report names ref by digest."""
    with temporary_storage(buildah, run_id) as remote:
        image_id = _pull(remote, ref, access)
        if ref.digest and ref.tag:
            tagged = RemoteRef(ref.registry, ref.repository, ref.tag)
            tagged_id = _pull(remote, tagged, access)  # the blobs are here: a manifest only
            if tagged_id != image_id:
                raise RegistryError(
                    f"{ref.tagged} serves image {tagged_id[:12]} now, not {image_id[:12]} of"
                    f" {ref.pinned}: another push moved the tag"
                )
        info = remote.inspect_image(image_id)
        assert info is not None  # just pulled
        pinned = ref.by_digest(ref.digest or info.digest)
        if expected_id and image_id != expected_id:
            raise VerificationError(
                f"the registry serves {pinned.pinned} as image {image_id[:12]}, not the pushed"
                f" {expected_id[:12]}"
            )
        base = _copy_base(buildah, remote, info.labels, target)
        report = verify_image(image_id, target, remote, run_id)
    same = " as pushed" if expected_id else ""
    pulled = CheckResult(
        "registry",
        True,
        f"pulled by digest, every blob matched its digest, image {image_id[:12]}{same};"
        f" base {base}",
    )
    checks = [pulled, *report.checks]
    if access.policy:
        checks.insert(1, CheckResult("signature", True, f"accepted by the policy {access.policy}"))
    return replace(report, image=pinned.pinned, checks=tuple(checks))


def _pull(remote: Buildah, ref: RemoteRef, access: RemoteAccess) -> str:
    try:
        return remote.pull_remote(ref.transport, access)
    except ToolError as exc:
        raise _pull_failure(exc, ref, access) from None


def _pull_failure(exc: ToolError, ref: RemoteRef, access: RemoteAccess) -> Exception:
    output = exc.output or str(exc)
    rejected = _REJECTED.search(output)
    if rejected:
        reason = rejected.group(1)
        fingerprint = _FINGERPRINT.search(reason)
        if "no signature exists" in reason:
            reason = "it has no signature"
        elif fingerprint:
            reason = f"it is signed by key {fingerprint.group(1)}, which the policy doesn't accept"
        return VerificationError(
            f"{ref.pinned} was refused by the signature policy {access.policy or '(default)'}:"
            f" {reason}"
        )
    corrupt = _CORRUPT.search(output)
    if corrupt:
        return VerificationError(
            f"the registry serves a damaged copy of {ref.pinned} ({corrupt.group(0)}): its"
            " storage is corrupt; don't deploy this image"
        )
    return registry_failure(exc, ref.registry, f"pulling {ref.pinned}", access)


def _copy_base(local: Buildah, remote: Buildah, labels: Mapping[str, str], target: Target) -> str:
    """Copy the base image the pulled image was built from into the remote storage, under
    the name its labels give (what verify_image compares with); returns that name."""
    name = labels.get(f"{LABEL_PREFIX}.base-image", target.config.runtime.base_image)
    base_id = labels.get(f"{LABEL_PREFIX}.base-image.id") or local.image_id(name)
    if not base_id or local.image_id(base_id) is None:
        raise VerificationError(
            f"the base image {name} ({(base_id or 'no recorded ID')[:12]}) that the image was"
            " built from is not in local storage; the contract and hygiene checks compare with"
            f" it: pull or make it first (buildah pull {name})"
        )
    assert remote.storage is not None
    local.push(base_id, remote.storage.transport(name.split("@")[0]))
    return f"{name} ({base_id[:12]}) from local storage"
