"""verify_image: every check on a local image -> VerifyReport.

The image is inspected through a throwaway working container: its filesystem is mounted and
read from Python, and the smoke test runs in it. The container is removed afterwards, so
verification never changes the image.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import replace
from pathlib import PurePosixPath

from qjson_tasks.build.names import container_name
from qjson_tasks.build.plan import LABEL_PREFIX
from qjson_tasks.config.model import Target
from qjson_tasks.errors import VerificationError
from qjson_tasks.host.buildah import Buildah
from qjson_tasks.verify import rock_files
from qjson_tasks.verify.checks import (
    added_entries,
    check_arch,
    check_artifacts,
    check_contract,
    check_hygiene,
    check_native_libraries,
    check_no_rust,
    check_rocks,
    walk_image,
)
from qjson_tasks.verify.report import VerifyReport, is_provenance
from qjson_tasks.verify.sbom_check import check_sbom
from qjson_tasks.verify.smoke import check_smoke, smoke_scripts


def verify_image(image: str, target: Target, buildah: Buildah, run_id: str) -> VerifyReport:
    """Run every check on a local image against a target's expectations, in containers of
    run run_id."""
    config = target.config
    info = buildah.inspect_image(image)
    if info is None:
        raise VerificationError(f"image '{image}' is not in local storage")
    labels = info.labels
    base_ref = labels.get(f"{LABEL_PREFIX}.base-image", config.runtime.base_image)
    base_info = buildah.inspect_image(base_ref)
    prefix = PurePosixPath(config.runtime.prefix)
    scripts = smoke_scripts(target)

    with ExitStack() as scope:
        ctr = scope.enter_context(buildah.container(image, container_name(run_id, "verify")))
        root = scope.enter_context(buildah.mounted(ctr))
        entries = list(walk_image(root))
        rocks = rock_files.find_installed_rocks(root, prefix, config.runtime.lua_version)
        checks = [
            check_no_rust(entries, info.env),
            check_artifacts(root, prefix, config.artifacts, rocks),
            check_rocks(root, prefix, target),
            check_native_libraries(root, rocks, info),
        ]
        if base_info is not None:
            base_name = container_name(run_id, "verify", "base")
            base_ctr = scope.enter_context(buildah.container(base_ref, base_name))
            base_root = scope.enter_context(buildah.mounted(base_ctr))
            added = added_entries(entries, base_root)
            checks.append(check_arch(root, added, info))
            checks.append(check_hygiene(added))
            checks.append(check_sbom(labels, root, added))
        else:
            under_prefix = [e for e in entries if prefix in e[0].parents]
            arch = check_arch(root, under_prefix, info)
            checks.append(replace(arch, detail=f"base not local, under {prefix}: {arch.detail}"))
            hygiene = check_hygiene(under_prefix)
            detail = f"base not local, checked {len(under_prefix)} paths under {prefix}: "
            checks.append(replace(hygiene, detail=detail + hygiene.detail))
            sbom = check_sbom(labels, root, under_prefix)
            checks.append(replace(sbom, detail=f"base not local, under {prefix}: {sbom.detail}"))
        checks.append(check_contract(info, base_info, base_ref, config.runtime.user))
        user = info.user or "root"
        for name, script in scripts:
            checks.append(check_smoke(buildah, ctr, config.runtime.luajit, script, user, name))
        if config.verify.gateway is not None:
            from qjson_tasks.verify.gateway import gateway_checks  # few targets need it

            checks += gateway_checks(buildah, image, run_id, target, user, rocks)
    return VerifyReport(
        image=image,
        image_id=info.image_id,
        target=target.name,
        checks=tuple(checks),
        provenance={key: value for key, value in labels.items() if is_provenance(key)},
    )
