"""What the tasks do, as plain functions: load a target, build it, verify it, describe it."""

from __future__ import annotations

import json
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from qjson_tasks.baseimage import build_base_image
from qjson_tasks.buildah import Buildah
from qjson_tasks.config import (
    Overrides,
    Target,
    apply_overrides,
    find_target,
    list_targets,
    load_target,
)
from qjson_tasks.containerfile import render
from qjson_tasks.errors import ConfigError
from qjson_tasks.pipeline import BuildResult, build
from qjson_tasks.runner import Runner, ShRunner
from qjson_tasks.verify import VerifyReport, verify_image

PROJECT_DIR = Path(__file__).resolve().parent.parent
CONFIG_DIR = PROJECT_DIR / "config"
CONTAINERFILE_DIR = PROJECT_DIR / "containerfiles"
DEFAULT_TARGET = "offline"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Tools:
    runner: Runner
    buildah: Buildah


def make_tools(target: Target, keep: bool = False, runner: Runner | None = None) -> Tools:
    runner = runner or ShRunner()
    return Tools(runner, Buildah(runner, isolation=target.config.buildah.isolation, keep=keep))


def resolve_target(
    name: str | None,
    config_path: str | None = None,
    overrides: Overrides | None = None,
    config_dir: Path = CONFIG_DIR,
) -> Target:
    if name and config_path:
        raise ConfigError("give either --target or --config, not both")
    if config_path:
        target = load_target(Path(config_path))
    else:
        target = find_target(name or DEFAULT_TARGET, config_dir)
    return apply_overrides(target, overrides or Overrides())


def describe_targets(config_dir: Path = CONFIG_DIR) -> list[str]:
    """One line per target: name, description, base image; broken files say what is wrong."""
    lines = []
    for path in list_targets(config_dir):
        marker = " (default)" if path.stem == DEFAULT_TARGET else ""
        try:
            config = load_target(path).config
        except ConfigError as exc:
            lines.append(f"{path.stem}{marker}: INVALID: {exc}")
            continue
        lines.append(
            f"{path.stem}{marker}: {config.description or '(no description)'}"
            f" [base {config.runtime.base_image}, rock {config.rock.name} {config.rock.version}]"
        )
    return lines


def show_target(target: Target) -> str:
    data = target.config.model_dump(mode="json", exclude_none=True)
    header = f"# target {target.name} from {target.path}\n"
    return header + tomli_w.dumps(data)


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
        tools.buildah, tools.runner, bootstrap, config.runtime.base_image, str(target.path)
    )


def run_verify(target: Target, tools: Tools, image: str | None = None) -> VerifyReport:
    return verify_image(image or target.config.output.reference, target, tools.buildah)


def run_build(target: Target, tools: Tools, verify: bool = True) -> BuildResult:
    def verifier(image_id: str) -> VerifyReport:
        report = verify_image(image_id, target, tools.buildah)
        log(report.table())
        return report

    return build(
        target,
        tools.buildah,
        tools.runner,
        run_id=uuid.uuid4().hex[:8],
        verifier=verifier if verify else None,
        log=log,
    )


def format_build_result(result: BuildResult) -> str:
    verified = "verified" if result.verification is not None else "not verified (--no-verify)"
    return (
        f"built {result.image_ref} ({result.image_id[:12]}), {verified}\n"
        f"  rock version: {result.rock_version}\n"
        f"  added over the base: {result.files_added} files, {result.bytes_added} bytes\n"
        f"  builder: {'reused' if result.builder_reused else 'prepared'}"
    )


def write_json_report(report: VerifyReport, path: str) -> None:
    Path(path).write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")


def containerfile_path(target: Target) -> Path:
    return CONTAINERFILE_DIR / f"{target.name}.Containerfile"


def render_containerfile(target: Target) -> str:
    return render(target, PROJECT_DIR)
