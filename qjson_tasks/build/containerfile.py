"""BuildPlan -> the equivalent multi-stage Containerfile, for `docker build` / `podman build`."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from qjson_tasks.build.plan import is_secret_name, static_labels
from qjson_tasks.build.steps import (
    VENDOR_DIR,
    RockStep,
    builder_setup_commands,
    git_rock_fetch_install,
    local_servers,
    rock_step,
    server_path,
)
from qjson_tasks.config.lockfile import Lock, LockedRock
from qjson_tasks.config.model import Rock, Target, TargetConfig
from qjson_tasks.errors import ConfigError
from qjson_tasks.rocks.crates import CARGO_CONFIG_INSIDE, CRATES_INSIDE, offline_cargo_config
from qjson_tasks.rocks.source import find_local_rock


def _run_line(argv: tuple[str, ...], env: dict[str, str] | None = None) -> str:
    prefix = "".join(f"{k}={shlex.quote(v)} " for k, v in (env or {}).items())
    if argv[:2] == ("/bin/sh", "-c") and "\n" in argv[2]:
        # A script of several lines (a locked git rock's build), the env in front of its sh.
        return f"RUN {prefix}{_script_line(argv[2]).removeprefix('RUN ')}"
    return f"RUN {prefix}{shlex.join(argv)}"


def _script_line(script: str) -> str:
    """A setup script as one RUN. A script of several lines (a RUN instruction is one line)
    is handed to sh as one argument, one quoted line per continuation line."""
    script = script.strip("\n")
    if "\n" not in script:
        return f"RUN {script}"
    quoted = " \\\n    ".join(shlex.quote(line) for line in script.split("\n"))
    return f"RUN /bin/sh -c \"$(printf '%s\\n' \\\n    {quoted})\""


def _setup_lines(commands: tuple[tuple[str, ...], ...]) -> list[str]:
    """Package commands chained in one RUN, each setup script in its own.

    One RUN, because a cached `apt-get update` layer must never be reused apart from the
    install that needs it (stale package lists make the install fail).
    """
    lines: list[str] = []
    chain: list[str] = []
    for argv in commands:
        if argv[:2] == ("/bin/sh", "-c"):
            if chain:
                lines.append("RUN " + " \\\n && ".join(chain))
                chain = []
            lines.append(_script_line(argv[2]))
        else:
            chain.append(shlex.join(argv))
    if chain:
        lines.append("RUN " + " \\\n && ".join(chain))
    return lines


def _in_context(target: Target, context: Path, field: str, path: str) -> str:
    try:
        return Path(path).resolve().relative_to(context.resolve()).as_posix()
    except ValueError:
        raise ConfigError(
            f"{target.path}: {field}: '{path}' is outside the build context '{context}'; a"
            " Containerfile can only COPY from inside it"
        ) from None


def _git_rock_step(config: TargetConfig, rock: Rock, entry: LockedRock) -> RockStep:
    """A locked git rock as build-runtime builds it, its source fetched from the rock's
    server and git server (a Containerfile has no packed rock to unpack)."""
    deps = config.luarocks.where
    server = server_path(rock.where, rock.name) if rock.where.kind == "server" else None
    if server is None and deps is not None:
        server = server_path(deps, "deps")
    return RockStep(rock.name, rock.version, git_rock_fetch_install(config, entry, server))


def _git_rock_comment(entry: LockedRock, lock_name: str) -> list[str]:
    git = entry.git
    assert git is not None
    return [
        f"# {entry.label}: {git.url}, tag {git.tag},",
        f"# checked to be the commit {lock_name} pins ({git.commit[:12]}), its rockspec against",
        "# the lock's sha256. Built as `invoke build-runtime` builds it: at a fixed path",
        "# (/qjson-build/NAME), Rust's source paths remapped (--remap-path-prefix), so the same",
        "# sources give the same qjson.so.",
    ]


def _vendor_comment(target: Target, lock_name: str) -> list[str]:
    """How to build the rocks from `invoke vendor`'s directory instead, with no network."""
    config_lines = [
        line for line in offline_cargo_config().splitlines() if not line.startswith("#")
    ]
    cargo_config = shlex.join(("printf", "%s\\n", *config_lines))
    name = target.name
    return [
        "# Offline, from a vendor directory:",
        f"#   invoke lock --target {name}    (if {lock_name} is missing)",
        f"#   invoke vendor --target {name} vendor",
        "# writes vendor/: the locked rock files with a luarocks manifest, and for Rust rocks",
        "# crates/ (`cargo vendor`). With vendor/ in the build context, add here (the last",
        "# two lines for Rust rocks only):",
        f"#   COPY vendor/ {VENDOR_DIR}/",
        f"#   COPY vendor/crates/ {CRATES_INSIDE}/",
        f"#   RUN mkdir -p {CARGO_CONFIG_INSIDE.rsplit('/', 1)[0]} && {cargo_config}"
        f" > {CARGO_CONFIG_INSIDE}",
        f"# and give each luarocks below --only-server={VENDOR_DIR} in place of its server (a git",
        "# rock: `luarocks unpack NAME VERSION` from there, in place of its download and clone).",
        "# `invoke build-runtime --vendor vendor` builds so, the cargo config mounted for the",
        "# rock install only.",
    ]


def _platform_comment(target: Target, context: str) -> list[str]:
    """output.platforms: build every platform's image (emulated where not native) into one
    manifest list, as build-runtime does."""
    platforms = target.config.output.platforms
    if not platforms:
        return []
    joined = ",".join(platforms)
    lines = [
        f"# For {joined} (output.platforms), one image each, joined in a manifest list:",
        f"#   buildah build --platform {joined} --manifest {target.config.output.reference}"
        f" -f <this file> {context}",
        "# (another architecture's stages run under qemu-user-static; see ./run.sh)",
    ]
    if target.config.runtime.bootstrap is not None:
        lines += [
            "# buildah picks each platform's FROM image from a registry's list; a base made",
            f"# here (invoke base-image --target {target.name} --platform PLATFORM) is named",
            "# NAME:TAG-os-arch, which FROM doesn't name: build those with invoke build-runtime",
        ]
    return lines


def render(target: Target, context: Path, lock: Lock | None = None) -> str:
    """The Containerfile; local rocks and servers are COPYed relative to the build context.

    It installs the rocks as an unlocked build does (a Containerfile can't check a lock's
    hashes of rock files), except a locked git rock: that is built as build-runtime builds
    it, from the locked commit, at the fixed build path, paths remapped.
    """
    config = target.config
    steps = []
    comments: dict[int, list[str]] = {}
    in_config = target.path.parent.name == "config"
    lock_name = f"{'config/' if in_config else ''}{target.path.stem}.lock"
    for index, rock in enumerate(config.rocks):
        directory = find_local_rock(target, index)
        entry = lock.entry(rock.name) if lock and directory is None else None
        if entry is not None and entry.git is not None:
            steps.append(_git_rock_step(config, rock, entry))
            comments[index] = _git_rock_comment(entry, lock_name)
        else:
            steps.append(rock_step(config, rock, directory, None))
    local = any(step.copy for step in steps) or local_servers(config, None)
    source = f"config/{target.path.name}" if in_config else target.name
    lines = [
        f"# Generated by qjson-tasks from {source}; do not edit.",
        f"# Rebuild it with: invoke containerfile --target {target.name}",
        f"# Build with:      podman build -f <this file> {'<project dir>' if local else '.'}",
    ]
    if config.runtime.bootstrap is not None:
        lines += [
            f"# The runtime base {config.runtime.base_image} is made from Debian packages,",
            f"# not pulled: invoke base-image --target {target.name}",
        ]
    lines += _platform_comment(target, "<project dir>" if local else ".")
    lines += [f"FROM {config.builder.image} AS builder", "USER root"]
    if config.builder.package_manager == "apt" and config.builder.packages:
        # An ARG, not an ENV: apt must not prompt while building; the image keeps no trace.
        lines.append("ARG DEBIAN_FRONTEND=noninteractive")
    lines += _setup_lines(builder_setup_commands(config))
    for host, inside in local_servers(config, None):
        relative = _in_context(target, context, "luarocks.server", host)
        lines.append(f"COPY {relative}/ {inside}/")
    env = dict(config.builder.env)
    secrets = sorted(name for name in env if is_secret_name(name))
    if secrets:
        # Never written into this file: give them at build time, e.g. --build-arg NAME.
        # An ARG is visible to RUN like an env variable and stays in the builder stage.
        lines += [f"ARG {name}" for name in secrets]
    plain = {name: value for name, value in env.items() if name not in secrets}
    lines += _vendor_comment(target, lock_name)
    for index, step in enumerate(steps):
        lines += comments.get(index, [])
        if step.copy:
            host, inside = step.copy
            field = config.rock_field(index, "source")
            relative = _in_context(target, context, field, host)
            slash = "/" if step.copies_directory else ""
            lines.append(f"COPY {relative}{slash} {inside}{slash}")
        if step.workdir:
            lines.append(f"WORKDIR {step.workdir}")
        lines.append(_run_line(step.argv, plain))
    lines += [
        "",
        f"FROM {config.runtime.base_image}",
        f"COPY --from=builder --chown=0:0 {config.staging.tree}/ {config.runtime.prefix}/",
    ]
    lines += [f"LABEL {key}={json.dumps(value)}" for key, value in static_labels(target).items()]
    lines.append(f"USER {config.runtime.user}")
    return "\n".join(lines) + "\n"
