"""`invoke build-runtime` and `invoke base-image`: a target's images, and what a build says."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from qjson_tasks.app.lock import lock_for_build
from qjson_tasks.app.targets import floating_warnings
from qjson_tasks.app.tools import Tools, log, session_for
from qjson_tasks.app.verify import verify_digest
from qjson_tasks.build.baseimage import build_base_image
from qjson_tasks.build.pipeline import BuildOptions, BuildResult, build
from qjson_tasks.config.lockfile import Lock
from qjson_tasks.config.model import Target
from qjson_tasks.config.platforms import Platform
from qjson_tasks.errors import ConfigError

if TYPE_CHECKING:
    from qjson_tasks.build.manifest import TaggedList
    from qjson_tasks.build.unitcache import UnitCache
    from qjson_tasks.host.registry import RemoteAccess
    from qjson_tasks.verify.report import VerifyReport


def make_base_image(
    target: Target, tools: Tools, rebuild: bool = False, platform: str | None = None
) -> str:
    """The target's base image (for one --platform: that platform's, see build/platforms.py)
    made from Debian packages; its ID."""
    if platform is not None:
        from qjson_tasks.build.platforms import platform_view, target_platforms
        from qjson_tasks.host.emulation import require_emulation

        chosen = target_platforms(target, platform) or ()
        if len(chosen) != 1:
            raise ConfigError("--platform: give one platform to make a base image for")
        require_emulation(chosen)
        target = platform_view(target, chosen[0]).target
    config = target.config
    bootstrap = config.runtime.bootstrap
    if bootstrap is None:
        raise ConfigError(
            f"{target.path}: runtime.bootstrap: not set, so target '{target.name}' uses a pulled"
            f" base image ({config.runtime.base_image}) rather than one made here"
        )
    existing = tools.buildah.image_id(config.runtime.base_image)
    if existing and not rebuild:
        log(f"{config.runtime.base_image} exists ({existing[:12]}); --rebuild makes it again")
        return existing
    return build_base_image(
        tools.buildah,
        tools.runner,
        bootstrap,
        config.runtime.base_image,
        str(target.path),
        tools.session_run_id(),
        target.platform,
    )


def run_build(
    target: Target,
    tools: Tools,
    verify: bool = True,
    rebuild: bool = False,
    update_lock: bool = False,
    vendor: str | None = None,
    registry: RemoteAccess | None = None,
) -> BuildResult:
    """registry: the run's registry flags, for the unit cache (and the push, if any)."""
    lock = lock_for_build(target, update_lock, vendor)
    return _build_one(target, tools, verify, rebuild, lock, vendor, registry)


@dataclass(frozen=True)
class MultiBuildResult:
    """A multi-platform build: each platform's image, and the list the output tag names."""

    image_ref: str
    platforms: tuple[tuple[Platform, BuildResult], ...]
    manifest: TaggedList | None  # None with --no-verify: the list is made of verified images


def run_platform_builds(
    target: Target,
    tools: Tools,
    platforms: tuple[Platform, ...],
    verify: bool = True,
    rebuild: bool = False,
    update_lock: bool = False,
    vendor: str | None = None,
    registry: RemoteAccess | None = None,
) -> MultiBuildResult:
    """One image per platform, each built and verified as a target of its own (its own base,
    builder and units), then the output tag moved to a manifest list of them all."""
    from qjson_tasks.build.manifest import tag_manifest_list
    from qjson_tasks.build.platforms import platform_view
    from qjson_tasks.host.emulation import require_emulation

    require_emulation(platforms)
    lock = lock_for_build(target, update_lock, vendor)
    results = []
    for platform in platforms:
        log(f"==> platform {platform}")
        view = platform_view(target, platform)
        results.append(
            (platform, _build_one(view.target, tools, verify, rebuild, lock, vendor, registry))
        )
    manifest = None
    if verify:
        log("==> manifest list")
        manifest = tag_manifest_list(
            tools.buildah,
            log,
            target.config.output.reference,
            [(platform, result.image_id) for platform, result in results],
            target=target.name,
            run_id=tools.session_run_id(),
        )
    return MultiBuildResult(target.config.output.reference, tuple(results), manifest)


def format_multi_result(result: MultiBuildResult) -> str:
    lines = []
    for platform, each in result.platforms:
        lines.append(f"{platform}:")
        lines += [f"  {line}" for line in format_build_result(each).splitlines()]
    listed = result.manifest
    if listed is None:
        lines.append(
            f"{result.image_ref} not changed: with --no-verify the per-platform images are"
            " tagged, but no manifest list is made"
        )
    else:
        state = "tagged" if listed.changed else "up to date"
        names = ", ".join(entry.platform for entry in listed.entries)
        lines.append(
            f"manifest list {listed.ref} ({listed.list_id[:12]}), {state}: {names}, each verified"
        )
    return "\n".join(lines)


def _build_one(
    target: Target,
    tools: Tools,
    verify: bool,
    rebuild: bool,
    lock: Lock | None,
    vendor: str | None,
    registry: RemoteAccess | None = None,
) -> BuildResult:
    session = session_for(target, tools)

    def verifier(image_id: str) -> VerifyReport:
        from qjson_tasks.verify.image import verify_image  # a no-change build verifies nothing

        report = verify_image(image_id, target, tools.buildah, session.run_id)
        log(report.table())
        return report

    options = BuildOptions(
        verifier=verifier if verify else None,
        verify_digest=verify_digest(target),
        rebuild=rebuild,
        warnings=floating_warnings(target),
        lock=lock,
        vendor=Path(vendor) if vendor else None,
        cache=unit_cache(target, tools, registry),
    )
    return build(session, options)


def unit_cache(target: Target, tools: Tools, registry: RemoteAccess | None) -> UnitCache | None:
    """The target's registry cache of units ([cache], --cache-repo), if it has one."""
    if target.config.cache is None:
        return None
    from qjson_tasks.build.unitcache import UnitCache
    from qjson_tasks.host.skopeo import Skopeo

    return UnitCache.from_config(target.config.cache, registry, Skopeo(tools.runner), log)


def format_build_result(result: BuildResult) -> str:
    if result.verification is not None:
        verified = "verified"
    elif "runtime" in result.built:
        verified = "not verified (--no-verify)"
    else:
        verified = "up to date (verified when it was built)"
    built = ", ".join(result.built) or "nothing"
    cache = ""
    if result.cached:
        cache += f"  from the unit cache: {', '.join(result.cached)}\n"
    if result.pushed:
        cache += f"  pushed to the unit cache: {', '.join(result.pushed)}\n"
    return (
        f"built {result.image_ref} ({result.image_id[:12]}), {verified}\n"
        f"  rock version: {result.rock_version}\n"
        f"  added over the base: {result.files_added} files, {result.bytes_added} bytes\n"
        f"  units: {' '.join(result.units.values())}\n"
        f"  built this run: {built}\n"
        f"{cache}"
        f"  sbom: {result.sbom or 'none (the image has no SBOM label)'}"
    )
