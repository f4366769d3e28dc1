"""`invoke build-runtime` and `invoke base-image`: a target's images, and what a build says."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from qjson_tasks.app.lock import lock_for_build
from qjson_tasks.app.targets import floating_warnings
from qjson_tasks.app.tools import Tools, log, session_for
from qjson_tasks.app.verify import verify_digest
from qjson_tasks.build.baseimage import build_base_image
from qjson_tasks.build.pipeline import BuildOptions, BuildResult, build
from qjson_tasks.config.model import Target
from qjson_tasks.errors import ConfigError

if TYPE_CHECKING:
    from qjson_tasks.verify.report import VerifyReport


def make_base_image(target: Target, tools: Tools, rebuild: bool = False) -> str:
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
    )


def run_build(
    target: Target,
    tools: Tools,
    verify: bool = True,
    rebuild: bool = False,
    update_lock: bool = False,
    vendor: str | None = None,
) -> BuildResult:
    lock = lock_for_build(target, update_lock, vendor)
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
    )
    return build(session, options)


def format_build_result(result: BuildResult) -> str:
    if result.verification is not None:
        verified = "verified"
    elif "runtime" in result.built:
        verified = "not verified (--no-verify)"
    else:
        verified = "up to date (verified when it was built)"
    built = ", ".join(result.built) or "nothing"
    return (
        f"built {result.image_ref} ({result.image_id[:12]}), {verified}\n"
        f"  rock version: {result.rock_version}\n"
        f"  added over the base: {result.files_added} files, {result.bytes_added} bytes\n"
        f"  units: {' '.join(result.units.values())}\n"
        f"  built this run: {built}\n"
        f"  sbom: {result.sbom or 'none (the image has no SBOM label)'}"
    )
