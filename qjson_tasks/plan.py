"""TargetConfig -> BuildPlan: names, tags, paths, unit hashes and the argv of every step.

Pure: everything that needs the disk or buildah (image IDs, the rockspec found in a rock
directory) is looked up before and passed in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from qjson_tasks.config import Target, TargetConfig

UNIT_REPOSITORY = "localhost/qjson-tasks"
SOURCE_DIR = "/qjson-src"
LABEL_PREFIX = "org.qjson-tasks"

Argv = tuple[str, ...]


@dataclass(frozen=True)
class LocalRock:
    """A rock directory on the host and the rockspec found in it (relative path)."""

    directory: str
    rockspec: str
    version: str


@dataclass(frozen=True)
class BuildPlan:
    target: str
    run_id: str
    base_image: str
    builder_image: str
    builder_unit: str
    builder_setup: tuple[Argv, ...]
    setup_env: Mapping[str, str]
    rock_name: str
    rock_requirement: str
    rock_install: Argv
    rock_env: Mapping[str, str]
    rock_workdir: str | None
    local_rock: LocalRock | None
    tree: str
    prefix: str
    lua_version: str
    output_ref: str
    labels: Mapping[str, str] = field(default_factory=dict)

    def container_name(self, role: str) -> str:
        return f"qjt-{self.target}-{role}-{self.run_id}"


def unit_hash(inputs: Mapping[str, object]) -> str:
    """A short, stable hash of a unit's inputs (canonical JSON, sorted keys)."""
    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def builder_setup_commands(config: TargetConfig) -> tuple[Argv, ...]:
    builder = config.builder
    commands: list[Argv] = []
    if builder.packages and builder.package_manager == "apt":
        commands.append(("apt-get", "update"))
        commands.append(("apt-get", "install", "-y", "--no-install-recommends", *builder.packages))
        commands.append(("apt-get", "clean"))
    elif builder.packages and builder.package_manager == "apk":
        commands.append(("apk", "add", "--no-cache", *builder.packages))
    commands.extend(("/bin/sh", "-c", script) for script in builder.setup)
    return tuple(commands)


def rock_install_command(config: TargetConfig, local: LocalRock | None) -> Argv:
    rock = config.rock
    luarocks = (config.builder.luarocks, f"--lua-version={config.runtime.lua_version}")
    tree = f"--tree={config.staging.tree}"
    if local is not None:
        return (*luarocks, "make", tree, local.rockspec)
    server = (f"--only-server={rock.source}",) if rock.source_kind == "server" else ()
    exact = rock.requirement.exact
    version = (str(exact),) if exact else ()
    return (*luarocks, *server, "install", tree, rock.name, *version)


def make_plan(
    target: Target,
    *,
    run_id: str,
    builder_image_id: str,
    local_rock: LocalRock | None = None,
) -> BuildPlan:
    config = target.config
    setup = builder_setup_commands(config)
    builder_hash = unit_hash(
        {
            "image": config.builder.image,
            "image_id": builder_image_id,
            "setup": [list(argv) for argv in setup],
        }
    )
    labels = {
        f"{LABEL_PREFIX}.target": target.name,
        f"{LABEL_PREFIX}.rock": config.rock.name,
        f"{LABEL_PREFIX}.rock.requirement": config.rock.version,
        f"{LABEL_PREFIX}.builder-image": config.builder.image,
        f"{LABEL_PREFIX}.base-image": config.runtime.base_image,
        f"{LABEL_PREFIX}.prefix": config.runtime.prefix,
        "org.opencontainers.image.base.name": config.runtime.base_image,
    }
    return BuildPlan(
        target=target.name,
        run_id=run_id,
        base_image=config.runtime.base_image,
        builder_image=config.builder.image,
        builder_unit=f"{UNIT_REPOSITORY}/builder:{builder_hash}",
        builder_setup=setup,
        setup_env={"DEBIAN_FRONTEND": "noninteractive"},
        rock_name=config.rock.name,
        rock_requirement=config.rock.version,
        rock_install=rock_install_command(config, local_rock),
        rock_env=dict(config.builder.env),
        rock_workdir=SOURCE_DIR if local_rock else None,
        local_rock=local_rock,
        tree=config.staging.tree,
        prefix=config.runtime.prefix,
        lua_version=config.runtime.lua_version,
        output_ref=config.output.reference,
        labels=labels,
    )
