"""Finding, describing and showing targets; pinning their images."""

from __future__ import annotations

from pathlib import Path

import tomli_w

from qjson_tasks import DEFAULT_TARGET
from qjson_tasks.app import pinning
from qjson_tasks.app.tools import CONFIG_DIR, Tools
from qjson_tasks.build.plan import shown_env
from qjson_tasks.config.load import (
    Overrides,
    apply_overrides,
    find_target,
    list_targets,
    load_target,
)
from qjson_tasks.config.model import Target
from qjson_tasks.errors import ConfigError


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
    data["builder"]["env"] = shown_env(data["builder"].get("env", {}))
    header = f"# target {target.name} from {target.path}\n"
    return header + tomli_w.dumps(data) + _platform_lines(target)


def _platform_lines(target: Target) -> str:
    """For output.platforms: the images each platform's build uses and makes (comments)."""
    from qjson_tasks.build.platforms import platform_targets

    if target.config.output.platforms is None:
        return ""
    lines = [f"\n# {target.config.output.reference} is a manifest list of:"]
    for view in platform_targets(target):
        config = view.config
        lines.append(
            f"#   {view.platform}: {config.output.reference} (base {config.runtime.base_image},"
            f" builder {config.builder.image})"
        )
    return "\n".join(lines) + "\n"


def floating_warnings(target: Target) -> list[str]:
    return pinning.floating_warnings(target, CONFIG_DIR)


def pin_target(target: Target, tools: Tools) -> list[str]:
    return pinning.pin_target(target, tools.buildah)
