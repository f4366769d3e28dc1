"""`invoke publish` and `build-runtime --push`: push a verified image, then verify what the
registry holds; `invoke verify --image docker://...`: verify an image in a registry.

An image counts as verified by qjson-tasks when it carries the name of the runtime unit the
target's current config makes: a build gives that name only to an image that passed
verification (with --no-verify the image gets the output tag alone).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from qjson_tasks.app.attach import push_attachments
from qjson_tasks.app.tools import CONFIG_DIR, Tools, log
from qjson_tasks.app.units import current_plan
from qjson_tasks.build.names import UNIT_REPOSITORY
from qjson_tasks.build.platforms import target_platforms
from qjson_tasks.config.model import Target
from qjson_tasks.config.platforms import Platform
from qjson_tasks.config.remote import TRANSPORT, RemoteRef, parse_remote
from qjson_tasks.errors import ConfigError, PublishRefused, RegistryError, ToolError
from qjson_tasks.host.registry import RemoteAccess, registry_failure
from qjson_tasks.host.storage import scratch_dir
from qjson_tasks.verify.remote import verify_remote
from qjson_tasks.verify.report import VerifyReport

if TYPE_CHECKING:
    from qjson_tasks.app.publish_list import ListPublishResult

RUNTIME_UNITS = f"{UNIT_REPOSITORY}/runtime:"


@dataclass(frozen=True)
class PublishRequest:
    to: RemoteRef
    access: RemoteAccess
    digest_file: Path | None = None
    sign_by: str | None = None


@dataclass(frozen=True)
class PublishResult:
    pushed: RemoteRef  # with its digest
    image_id: str
    report: VerifyReport
    signed_by: str | None
    digest_file: Path | None
    attachments: tuple[str, ...] = ()  # the SBOM's and the statement's tags


def remote_access(
    tls_verify: bool = True,
    authfile: str | None = None,
    registries_d: str | None = None,
    policy: str | None = None,
) -> RemoteAccess:
    """The flags that reach a registry, checked before anything runs."""
    for flag, path, is_dir in (
        ("--authfile", authfile, False),
        ("--registries-d", registries_d, True),
        ("--policy", policy, False),
    ):
        if path is not None and not (Path(path).is_dir() if is_dir else Path(path).is_file()):
            kind = "directory" if is_dir else "file"
            raise ConfigError(f"{flag}: {path} is not a {kind}")
    absolute = {  # as messages name them, whatever the working directory
        "authfile": authfile and os.path.abspath(authfile),
        "registries_d": registries_d and os.path.abspath(registries_d),
        "policy": policy and os.path.abspath(policy),
    }
    return RemoteAccess(tls_verify=tls_verify, **absolute)


def push_request(
    target: Target,
    to: str | None,
    verify: bool,
    tls_verify: bool = True,
    authfile: str | None = None,
    registries_d: str | None = None,
    policy: str | None = None,
    digest_file: str | None = None,
    sign_by: str | None = None,
    flag: str = "--push",
) -> PublishRequest:
    """A push's flags, checked before anything runs (`publish --to`, `build-runtime --push`)."""
    if to is None:
        what = "publish needs" if flag == "--to" else "the registry flags are for a push:"
        raise ConfigError(f"{what} {flag} REGISTRY/REPOSITORY[:TAG]")
    if not verify:
        raise ConfigError(
            "--push publishes verified images only: drop --no-verify (or build with"
            " --no-verify and no --push)"
        )
    ref = parse_remote(flag, to, default_tag=target.config.output.tag)
    access = remote_access(tls_verify, authfile, registries_d, policy)
    return PublishRequest(ref, access, Path(digest_file) if digest_file else None, sign_by)


def registry_flags(
    target: Target,
    push: str | None,
    verify: bool,
    tls_verify: bool = True,
    authfile: str | None = None,
    registries_d: str | None = None,
    policy: str | None = None,
    digest_file: str | None = None,
    sign_by: str | None = None,
) -> tuple[PublishRequest | None, RemoteAccess | None]:
    """build-runtime's registry flags: the push they ask for, if any, and how the unit
    cache is reached. --no-tls-verify and --authfile serve a unit cache without --push."""
    push_only = (registries_d, policy, digest_file, sign_by)
    cache_access = remote_access(tls_verify, authfile)  # not the push's policy or signing
    if push is None and target.config.cache is not None and all(f is None for f in push_only):
        return None, cache_access
    return push_request(target, push, verify, tls_verify, authfile, *push_only), cache_access


def registry_access_for(
    image: str | None,
    tls_verify: bool = True,
    authfile: str | None = None,
    registries_d: str | None = None,
    policy: str | None = None,
) -> RemoteAccess | None:
    """`invoke verify`'s registry flags: a RemoteAccess for a docker:// image, None for a
    local one (which takes none of them)."""
    if image is not None and image.startswith(TRANSPORT):
        return remote_access(tls_verify, authfile, registries_d, policy)
    given = [
        name
        for name, value in (
            ("--no-tls-verify", not tls_verify),
            ("--authfile", authfile),
            ("--registries-d", registries_d),
            ("--policy", policy),
        )
        if value
    ]
    if given:
        raise ConfigError(f"{', '.join(given)}: for a docker:// image only (--image docker://...)")
    return None


def _rerun(target: Target) -> str:
    where = f"--target {target.name}"
    if target.path.parent.resolve() != CONFIG_DIR.resolve():
        where = f"--config {target.path}"
    return f"invoke build-runtime {where}"


def verified_output(target: Target, tools: Tools) -> str:
    """The ID of the target's output image, if qjson-tasks verified it with the current
    config; else PublishRefused saying why and what to run."""
    ref = target.config.output.reference
    image_id = tools.buildah.image_id(ref)
    if image_id is None:
        raise PublishRefused(f"{ref} is not a local image: build it with `{_rerun(target)}`")
    names = tools.buildah.image_names(image_id) or []
    if not any(name.startswith(RUNTIME_UNITS) for name in names):
        raise PublishRefused(
            f"{ref} ({image_id[:12]}) was not verified by qjson-tasks (built with --no-verify,"
            f" or made elsewhere), so it is not pushed: run `{_rerun(target)}`, which verifies it"
        )
    from qjson_tasks.app.build import unit_cache

    plan = current_plan(target, tools, unit_cache(target, tools, None))
    if not plan.resolved:
        raise PublishRefused(
            f"{ref} ({image_id[:12]}): whether it was verified with the current config can't"
            f" be told while the builder image {target.config.builder.image} is not here: pull"
            " it, or give the target the [cache] its units came from"
        )
    if plan.runtime.image not in names:
        raise PublishRefused(
            f"{ref} ({image_id[:12]}) was verified for other inputs than the current config"
            f" of target {target.name} (a changed smoke script, rock or base), so it is not"
            f" pushed: run `{_rerun(target)}` to build and verify it again"
        )
    return image_id


def check_signing_key(tools: Tools, fingerprint: str) -> None:
    """A missing key would fail only after the manifest is in the registry, tagged and
    unsigned (buildah signs after pushing it): look for it first."""
    try:
        tools.runner.run(["gpg", "--batch", "--list-secret-keys", "--with-colons", fingerprint])
    except ToolError:
        home = os.environ.get("GNUPGHOME") or "~/.gnupg"
        raise PublishRefused(
            f"--sign-by: no secret key {fingerprint} in {home}; nothing was pushed"
        ) from None


def push_verified(target: Target, tools: Tools, request: PublishRequest, image_id: str) -> str:
    """Push; returns the manifest digest buildah reports."""
    to = request.to
    log(f"==> push {to.tagged}" + (f" (signed by {request.sign_by})" if request.sign_by else ""))
    try:
        return push_for_digest(
            tools,
            lambda scratch: tools.buildah.push(
                image_id,
                f"docker://{to.tagged}",
                request.access,
                digestfile=scratch / DIGEST_FILE,
                sign_by=request.sign_by,
                tmpdir=scratch,
            ),
        )
    except ToolError as exc:
        doing = f"pushing {target.config.output.reference} to {to.tagged}"
        raise registry_failure(
            exc, to.registry, doing, request.access, "nothing was pushed"
        ) from None


DIGEST_FILE = "digest"


def push_for_digest(tools: Tools, push: Callable[[Path], None]) -> str:
    """Run push(scratch) in the run's scratch directory, where buildah keeps its blob
    copies (an interrupted push leaves nothing in /var/tmp) and writes DIGEST_FILE; the
    manifest digest it wrote."""
    with scratch_dir(tools.session_run_id()) as scratch:
        push(scratch)
        return (scratch / DIGEST_FILE).read_text().strip()


def run_publish(
    target: Target,
    tools: Tools,
    request: PublishRequest,
    platforms: tuple[Platform, ...] | None = None,
) -> PublishResult | ListPublishResult:
    """Push and check the output image; a multi-platform target's (output.platforms, or
    build-runtime --platform's `platforms`) manifest list and each image in it."""
    platforms = platforms or target_platforms(target)
    if platforms is not None:
        from qjson_tasks.app.publish_list import publish_list

        return publish_list(target, tools, request, platforms)
    image_id = verified_output(target, tools)
    if request.sign_by:
        check_signing_key(tools, request.sign_by)
    pushed = request.to.by_digest(push_verified(target, tools, request, image_id))
    log(f"    pushed {pushed.tagged}@{pushed.digest}")
    report = remote_check(target, tools, pushed, request.access, image_id)
    attached = push_attachments(tools, pushed, request.access, image_id)
    if request.digest_file:
        _write_atomically(request.digest_file, pushed.digest + "\n")
    return PublishResult(pushed, image_id, report, request.sign_by, request.digest_file, attached)


def remote_check(
    target: Target, tools: Tools, ref: RemoteRef, access: RemoteAccess, image_id: str | None
) -> VerifyReport:
    log(f"==> remote check: {ref.pinned}, pulled into a temporary storage")
    report = verify_remote(ref, target, tools.buildah, access, tools.session_run_id(), image_id)
    log(report.table())
    if not report.passed:
        names = ", ".join(check.name for check in report.failed())
        raise RegistryError(
            f"the registry's copy {ref.pinned} failed the remote check ({names}); don't deploy it"
        )
    return report


def run_remote_verify(
    target: Target, tools: Tools, image: str, access: RemoteAccess
) -> VerifyReport:
    """`verify --image docker://REF[:TAG|@DIGEST]`; the report names the digest checked."""
    ref = parse_remote("--image", image, allow_digest=True)
    return verify_remote(ref, target, tools.buildah, access, tools.session_run_id())


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    except OSError as exc:
        raise ConfigError(f"--digest-file: cannot write {path}: {exc.strerror}") from None


def format_publish_result(result: PublishResult | ListPublishResult) -> str:
    if not isinstance(result, PublishResult):
        from qjson_tasks.app.publish_list import format_list_result

        return format_list_result(result)
    pushed = result.pushed
    lines = [
        f"published {pushed.tagged} ({result.image_id[:12]}), verified in the registry",
        f"  digest: {pushed.digest}",
        f"  pull: {pushed.name}@{pushed.digest}",
        f"  signed by: {result.signed_by or 'not signed'}",
    ]
    lines += [f"  attached: {tag}" for tag in result.attachments]
    if result.digest_file:
        lines.append(f"  digest written to {result.digest_file}")
    return "\n".join(lines)
