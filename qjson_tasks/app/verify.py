"""`invoke verify`: the checks on a target's image, and what a unit's verification hashes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from qjson_tasks.app.tools import Tools
from qjson_tasks.config.load import check_image_flag
from qjson_tasks.config.model import Target
from qjson_tasks.errors import ConfigError
from qjson_tasks.verify.nginx_conf import gateway_snippet
from qjson_tasks.verify.smoke import smoke_scripts

if TYPE_CHECKING:
    from qjson_tasks.verify.report import VerifyReport


def run_verify(target: Target, tools: Tools, image: str | None = None) -> VerifyReport:
    if image is not None:
        check_image_flag("--image", image)
    from qjson_tasks.verify.image import verify_image  # the checks: not on no-change builds

    reference = image or target.config.output.reference
    return verify_image(reference, target, tools.buildah, tools.session_run_id())


def run_verify_outputs(
    target: Target, tools: Tools, image: str | None = None
) -> list[VerifyReport]:
    """`invoke verify`: the given image, or the target's output; for a multi-platform target
    (output.platforms) each platform's image, against that platform's base."""
    from qjson_tasks.build.platforms import platform_targets

    if image is not None:
        return [run_verify(target, tools, image)]
    return [run_verify(view, tools) for view in platform_targets(target)]


def verify_digest(target: Target) -> str:
    """What the verification of a runtime unit depends on beyond the config: the smoke
    scripts and the gateway check's nginx snippet."""
    digest = hashlib.sha256()
    for name, script in smoke_scripts(target):
        digest.update(f"{name}\0{script}\0".encode())
    snippet = gateway_snippet(target)
    if snippet is not None:  # absent otherwise: other targets keep their digest
        digest.update(f"gateway\0{snippet}\0".encode())
    return digest.hexdigest()


def write_json_report(report: VerifyReport | list[VerifyReport], path: str) -> None:
    """One report as a JSON object; several (one per platform) as a list of them."""
    data = report.to_json() if not isinstance(report, list) else [r.to_json() for r in report]
    try:
        Path(path).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--json: cannot write {path}: {exc.strerror}") from None
