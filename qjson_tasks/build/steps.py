"""How each step runs in the builder, as argv and mounts: the package installs, each rock's
install, the local servers copied in, cargo's caches. Pure, like the plan that uses it."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from qjson_tasks.config.lockfile import Lock, LockedRock
from qjson_tasks.config.model import Rock, TargetConfig
from qjson_tasks.config.sources import RockSource

SOURCE_DIR = "/qjson-src"
# Local rock servers (and, with a lock, the vendored rocks) are copied here in the builder.
SERVER_DIR = "/qjson-servers"
VENDOR_DIR = "/qjson-vendor"
# A locked git rock is unpacked and built here, not in luarocks' random temporary directory,
# and Rust's source paths under it and cargo's home are remapped: the same .so every build.
BUILD_DIR = "/qjson-build"
CACHE_PREFIX = "qjson-tasks-"

Argv = tuple[str, ...]


@dataclass(frozen=True)
class LocalRock:
    """A rock directory on the host and the rockspec found in it (relative path)."""

    directory: str
    rockspec: str
    version: str


@dataclass(frozen=True)
class RockStep:
    """Installing one rock in the builder: what is copied in first, then the command."""

    name: str
    requirement: str
    argv: Argv
    workdir: str | None = None
    copy: tuple[str, str] | None = None  # (host path, path in the builder)
    mounts: tuple[str, ...] = ()
    copies_directory: bool = False  # copy is a rock directory (else a rock file)


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


def luarocks_argv(config: TargetConfig, server: str | None) -> Argv:
    only = (f"--only-server={server}",) if server else ()
    return (config.builder.luarocks, f"--lua-version={config.runtime.lua_version}", *only)


def server_path(server: RockSource, name: str) -> str:
    """Where a server is found from inside the builder: remote URLs as they are, local
    directories under SERVER_DIR."""
    return f"{SERVER_DIR}/{name}" if server.is_local_server else server.text


def rock_step(
    config: TargetConfig, rock: Rock, local: LocalRock | None, lock: Lock | None
) -> RockStep:
    """How one rock is installed into the staging tree.

    Without a lock each rock comes from its own source, and luarocks finds dependencies on
    the rock's server (or luarocks.server). With a lock every rock and dependency comes from
    the vendored directory, which holds exactly the locked files.
    """
    tree = f"--tree={config.staging.tree}"
    source_dir = f"{SOURCE_DIR}/{rock.name}"
    deps = config.luarocks.where
    dep_server = server_path(deps, "deps") if deps else None
    if lock is not None:
        dep_server = VENDOR_DIR
    if local is not None:
        return RockStep(
            rock.name,
            rock.version,
            (*luarocks_argv(config, dep_server), "make", tree, local.rockspec),
            workdir=source_dir,
            copy=(local.directory, source_dir),
            copies_directory=True,
        )
    entry = lock.entry(rock.name) if lock else None
    if entry is not None and entry.git is not None:
        return RockStep(rock.name, rock.version, git_rock_install(config, entry))
    if entry is not None:
        argv = (*luarocks_argv(config, VENDOR_DIR), "install", tree, rock.name, entry.version)
        return RockStep(rock.name, rock.version, argv)
    source = rock.where
    if source.kind == "file":
        inside = f"{SOURCE_DIR}/{rock.source.rsplit('/', 1)[-1]}"
        argv = (*luarocks_argv(config, dep_server), "install", tree, inside)
        return RockStep(rock.name, rock.version, argv, copy=(rock.source, inside))
    server = server_path(source, rock.name) if source.kind == "server" else dep_server
    exact = rock.requirement.exact
    version = (str(exact),) if exact else ()
    return RockStep(
        rock.name,
        rock.version,
        (*luarocks_argv(config, server), "install", tree, rock.name, *version),
    )


def git_rock_install(config: TargetConfig, entry: LockedRock) -> Argv:
    """`luarocks unpack` of a locked git rock's packed .src.rock at BUILD_DIR/NAME, then
    `luarocks make` in its source directory, with Rust's paths remapped."""
    luarocks = shlex.join(luarocks_argv(config, VENDOR_DIR))
    fetch = (f"{luarocks} unpack {shlex.quote(entry.name)} {shlex.quote(entry.version)}",)
    return ("/bin/sh", "-c", _git_rock_script(config, entry, fetch, VENDOR_DIR))


def git_rock_fetch_install(config: TargetConfig, entry: LockedRock, server: str | None) -> Argv:
    """The same build with no packed rock at hand (a rendered Containerfile): the rockspec
    from the rock's server, checked against the lock's sha256, and a clone of the tag,
    checked to be the locked commit, laid out as `luarocks unpack` lays out the packed rock."""
    git = entry.git
    assert git is not None
    from qjson_tasks.rocks.gitsource import git_url  # not on warm runs

    luarocks = shlex.join(luarocks_argv(config, server))
    name = shlex.quote(f"{entry.name}-{entry.version}")
    source = f"{name}/{shlex.quote(git.dir)}"
    url = shlex.quote(git_url(git.url))
    moved = shlex.quote(
        f"{entry.label}: tag {git.tag} of {git.url} no longer names the locked commit {git.commit}"
    )
    fetch = (
        f"{luarocks} download --rockspec {shlex.quote(entry.name)} {shlex.quote(entry.version)}",
        f"echo {shlex.quote(f'{entry.rockspec_sha256}  {entry.name}-{entry.version}.rockspec')}"
        " | sha256sum -c -",
        f"mkdir {name} && mv {name}.rockspec {name}/",
        f"git clone -q --depth=1 --branch={shlex.quote(git.tag)} {url} {source}",
        f'[ "$(git -C {source} rev-parse HEAD)" = {git.commit} ]'
        f" || {{ echo {moved} >&2; exit 1; }}",
        f"rm -rf {source}/.git",
    )
    return ("/bin/sh", "-c", _git_rock_script(config, entry, fetch, server))


def _git_rock_script(
    config: TargetConfig, entry: LockedRock, fetch: tuple[str, ...], server: str | None
) -> str:
    """In BUILD_DIR/NAME: `fetch` lays out NAME-VERSION/{rockspec, source dir}; then
    `luarocks make` in the source directory (dependencies from `server`) with Rust's paths
    under it and cargo's home remapped, so the .so holds no path that differs between
    builds."""
    assert entry.git is not None
    luarocks = shlex.join(luarocks_argv(config, server))
    name = f"{entry.name}-{entry.version}"
    build = f"{BUILD_DIR}/{entry.name}"
    tree = shlex.quote(config.staging.tree)
    return "\n".join(
        (
            "set -eu",
            f"mkdir -p {build} && cd {build}",
            *fetch,
            f"cd {shlex.quote(name)}/{shlex.quote(entry.git.dir)}",
            'home="${CARGO_HOME:-$HOME/.cargo}"',
            f'remap="--remap-path-prefix={build}=/build --remap-path-prefix=$home=/cargo"',
            'export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }$remap"',
            f"{luarocks} make --tree={tree} ../{shlex.quote(name)}.rockspec",
        )
    )


def local_servers(config: TargetConfig, lock: Lock | None) -> tuple[tuple[str, str], ...]:
    """Rock servers on this machine, copied into the builder (with a lock: none needed)."""
    if lock is not None:
        return ()
    servers = []
    deps = config.luarocks.where
    if deps and deps.host_path:
        servers.append((deps.host_path, server_path(deps, "deps")))
    for rock in config.rocks:
        if rock.where.is_local_server and rock.where.host_path:
            servers.append((rock.where.host_path, server_path(rock.where, rock.name)))
    return tuple(servers)


def cache_mounts(builder_hash: str, step: RockStep) -> tuple[str, ...]:
    """Cargo's target directory survives between builds of a local rock (same builder).

    Only for a local rock: `luarocks install` unpacks into a fresh temporary directory, and
    moving cargo's target directory elsewhere would break rockspecs that copy from it.
    """
    if step.workdir is None:
        return ()
    cache_id = f"{CACHE_PREFIX}{builder_hash}-{step.name}-target"
    return (f"type=cache,target={step.workdir}/target,id={cache_id},sharing=locked",)


def cargo_home(image_env: Mapping[str, str], rock_env: Mapping[str, str]) -> str:
    """Where cargo keeps its downloads in a rock build: CARGO_HOME, else $HOME/.cargo, from
    the config's builder env over the builder image's; HOME of the build user (root) last."""
    env = {**image_env, **rock_env}
    if env.get("CARGO_HOME"):
        return env["CARGO_HOME"].rstrip("/") or "/"
    return f"{(env.get('HOME') or '/root').rstrip('/')}/.cargo"


def cargo_download_mounts(builder_hash: str, home: str) -> tuple[str, ...]:
    """Cargo's registry and git checkouts survive between rock builds (same builder), so a
    changed rock doesn't download its crates again. Every rock's install gets them."""
    return tuple(
        f"type=cache,target={home}/{part},id={CACHE_PREFIX}{builder_hash}-cargo-{part}"
        ",sharing=locked"
        for part in ("registry", "git")
    )
