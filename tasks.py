"""Invoke tasks: build and verify Rust-free LuaJIT runtime images carrying a Rust-built rock.

Each task is a few lines: flags in, a use case from qjson_tasks.app, one line out.
Errors a user can act on become a single `ERROR ...` line and a non-zero exit. Tasks import
the use cases (pydantic and all) when they run, so listing the tasks doesn't wait for them.
"""

from __future__ import annotations

import functools
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from invoke import Exit, task

from qjson_tasks import DEFAULT_TARGET
from qjson_tasks.errors import QjsonTasksError
from qjson_tasks.host import rootless
from qjson_tasks.host.buildah import start_image_listing

TARGET_HELP = f"target name: a file config/NAME.toml (default: {DEFAULT_TARGET})"
CONFIG_HELP = "path of a target config file, instead of --target"
REGISTRY_HELP = {
    "tls_verify": "verify the registry's TLS certificate (the default); --no-tls-verify only"
    " for a plain-HTTP registry you trust, such as one on 127.0.0.1",
    "authfile": "the registry credentials file (`buildah login --authfile` writes one);"
    " default: buildah's own",
    "registries_d": "a registries.d directory saying where signatures are written and read"
    " (default: buildah's)",
    "policy": "a containers-policy.json the pulled image must satisfy (e.g. signedBy a key)",
}
CACHE_FLAGS = ("tls_verify", "authfile")  # of REGISTRY_HELP: a unit cache takes these too
PUSH_HELP = {
    "digest_file": "write the pushed manifest digest here once the remote check passed",
    "sign_by": "sign the pushed image with this GPG key (fingerprint; simple signing)",
}
# Flags that replace config values for one run (see config.load.Overrides).
ONE_RUN_OVERRIDES = {
    "builder_image": "builder image for this run (overrides builder.image)",
    "rock_source": "rock source for this run: a server URL or a local directory",
}
INTERRUPTED = (
    "ERROR interrupted; working containers were removed unless --keep-on-failure was given"
)


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def cli(needs_mount: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Turn our errors into `ERROR ...` + exit 1, interrupts into exit 130.

    With needs_mount, a non-root user's run is re-executed inside `buildah unshare`.
    """

    def decorate(body: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(body)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            signal.signal(signal.SIGTERM, _terminate)
            try:
                if needs_mount and rootless.needs_user_namespace():
                    rootless.reexec_in_user_namespace()
                return body(*args, **kwargs)
            except QjsonTasksError as exc:
                raise Exit(f"ERROR {exc}", code=1) from None
            except KeyboardInterrupt:
                raise Exit(INTERRUPTED, code=130) from None

        return wrapper

    return decorate


@task
@cli()
def targets(c):
    """List the targets in config/ with a one-line summary."""
    from qjson_tasks.app.targets import describe_targets

    for line in describe_targets():
        print(line)


@task(help={"target": TARGET_HELP, "config": CONFIG_HELP})
@cli()
def show(c, target=None, config=None):
    """Print a target's resolved config as TOML."""
    from qjson_tasks.app.targets import floating_warnings, resolve_target, show_target

    resolved = resolve_target(target, config)
    for line in floating_warnings(resolved):
        print(line, file=sys.stderr)
    print(show_target(resolved), end="")


@task(
    help={
        "target": TARGET_HELP,
        "config": CONFIG_HELP,
        "rebuild": "make the base image again even if it exists",
        "platform": "make the base for this platform (e.g. linux/arm64; debootstrap --arch),"
        " named NAME:TAG-linux-arm64 as a multi-platform build expects",
    }
)
@cli(needs_mount=True)
def base_image(c, target=None, config=None, rebuild=False, platform=None):
    """Make a target's runtime base image from Debian packages (debootstrap)."""
    from qjson_tasks.app.build import make_base_image
    from qjson_tasks.app.targets import resolve_target
    from qjson_tasks.app.tools import run_tools

    resolved = resolve_target(target, config)
    with run_tools(resolved) as tools:
        image_id = make_base_image(resolved, tools, rebuild, platform)
    print(f"{resolved.config.runtime.base_image} {image_id}" if platform is None else image_id)


# More flags than letters: invoke's automatic short flags would give --cache-repo '-'.
@task(
    auto_shortflags=False,
    help={
        "target": TARGET_HELP,
        "config": CONFIG_HELP,
        "base_image": "runtime base image for this run (overrides runtime.base_image)",
        "tag": "tag of the output image for this run (overrides output.tag)",
        **ONE_RUN_OVERRIDES,
        "verify": "verify the image before tagging it (default on; --no-verify skips)",
        "keep_on_failure": "keep the working containers when a step fails, for debugging",
        "rebuild": "build every unit again even if its image exists",
        "update_lock": "resolve the rocks again and rewrite config/NAME.lock before building",
        "vendor": "take every locked rock from this directory (made by `invoke vendor`)",
        "push": "then publish the verified image to REGISTRY/REPOSITORY[:TAG] (as `publish`)",
        "platform": "build for these platforms (comma list: linux/amd64,linux/arm64) and tag a"
        " manifest list of them (overrides output.platforms)",
        "cache_repo": "the unit cache for this run: REGISTRY/NAMESPACE (overrides"
        " cache.repository)",
        "cache_push": "push the units built to the unit cache (default: cache.push);"
        " --no-cache-push only reads it",
        **{name: f"with --push: {text}" for name, text in {**REGISTRY_HELP, **PUSH_HELP}.items()},
        **{name: f"with --push or a unit cache: {REGISTRY_HELP[name]}" for name in CACHE_FLAGS},
    },
)
@cli(needs_mount=True)
def build_runtime(
    c,
    target=None,
    config=None,
    base_image=None,
    builder_image=None,
    tag=None,
    rock_source=None,
    verify=True,
    keep_on_failure=False,
    rebuild=False,
    update_lock=False,
    vendor=None,
    push=None,
    tls_verify=True,
    authfile=None,
    registries_d=None,
    policy=None,
    digest_file=None,
    sign_by=None,
    platform=None,
    cache_repo=None,
    cache_push=True,
):
    """Build a target's Rust-free runtime image (builder stage + copied rock tree)."""
    listing = start_image_listing()
    from qjson_tasks.app.build import (  # loads pydantic and the config code meanwhile
        format_build_result,
        run_build,
    )
    from qjson_tasks.app.targets import resolve_target
    from qjson_tasks.app.tools import run_tools
    from qjson_tasks.config.load import Overrides

    no_push = None if cache_push else False
    overrides = Overrides(base_image, builder_image, tag, rock_source, cache_repo, no_push)
    resolved = resolve_target(target, config, overrides)
    push_flags = (authfile, registries_d, policy, digest_file, sign_by)
    request, registry = None, None
    if push is not None or not tls_verify or any(flag is not None for flag in push_flags):
        from qjson_tasks.app.publish import registry_flags

        request, registry = registry_flags(resolved, push, verify, tls_verify, *push_flags)
    from qjson_tasks.build.platforms import target_platforms

    platforms = target_platforms(resolved, platform)
    with run_tools(resolved, keep=keep_on_failure, listing=listing) as tools:
        if platforms is not None:
            from qjson_tasks.app.build import format_multi_result, run_platform_builds

            multi = run_platform_builds(
                resolved, tools, platforms, verify, rebuild, update_lock, vendor, registry
            )
            print(format_multi_result(multi), flush=True)
        else:
            result = run_build(
                resolved, tools, verify, rebuild, update_lock, vendor, registry=registry
            )
            print(format_build_result(result), flush=True)
        if request is not None:
            from qjson_tasks.app.publish import format_publish_result, run_publish

            print(format_publish_result(run_publish(resolved, tools, request, platforms)))


@task(help={"target": TARGET_HELP, "config": CONFIG_HELP, **ONE_RUN_OVERRIDES})
@cli()
def lock(c, target=None, config=None, builder_image=None, rock_source=None):
    """Resolve every rock and its dependencies; write config/NAME.lock with sha256 hashes."""
    from qjson_tasks.app.lock import lock_target
    from qjson_tasks.app.targets import resolve_target
    from qjson_tasks.config.load import Overrides

    overrides = Overrides(None, builder_image, None, rock_source)
    resolved = resolve_target(target, config, overrides)
    written = lock_target(resolved)
    for rock in written.rocks:
        print(f"{rock.name} {rock.version} {rock.role} {rock.kind} {rock.source}")


@task(
    help={
        "target": TARGET_HELP,
        "config": CONFIG_HELP,
        "directory": "where the rock files, the luarocks manifest and crates/ go",
        **ONE_RUN_OVERRIDES,
    },
    positional=["directory"],
)
@cli(needs_mount=True)
def vendor(c, directory, target=None, config=None, builder_image=None, rock_source=None):
    """Download every locked rock (and Rust rocks' crates) into DIRECTORY, for offline builds."""
    from qjson_tasks.app.lock import vendor_target
    from qjson_tasks.app.targets import resolve_target
    from qjson_tasks.app.tools import run_tools
    from qjson_tasks.config.load import Overrides

    overrides = Overrides(None, builder_image, None, rock_source)
    resolved = resolve_target(target, config, overrides)
    with run_tools(resolved) as tools:
        names = vendor_target(resolved, tools, Path(directory))
    for name in names:
        print(f"{directory}/{name}")


@task(
    help={
        "target": TARGET_HELP,
        "config": CONFIG_HELP,
        "cache_repo": "also look up missing units in this unit cache: REGISTRY/NAMESPACE"
        " (overrides cache.repository)",
    }
)
@cli()
def plan(c, target=None, config=None, cache_repo=None):
    """Print the build units (name-hash, inputs, dependencies, status) as TOML; runs nothing."""
    from qjson_tasks.app.targets import resolve_target
    from qjson_tasks.app.tools import make_tools
    from qjson_tasks.app.units import plan_toml
    from qjson_tasks.config.load import Overrides

    resolved = resolve_target(target, config, Overrides(cache_repo=cache_repo))
    print(plan_toml(resolved, make_tools(resolved)), end="")


@task(help={"all": "remove every unit image and the cargo caches, not only unused units"})
@cli(needs_mount=True)  # the sweep unmounts what interrupted runs left mounted
def clean(c, all=False):
    """Remove unit images no current target uses (with --all: every unit image and cache)."""
    from qjson_tasks.app.tools import run_tools
    from qjson_tasks.app.units import clean_units

    with run_tools(None) as tools:  # also sweeps what interrupted runs left
        removed = clean_units(tools, everything=all)
    for name in removed:
        print(f"removed {name}")
    print(f"{len(removed)} removed")


@task(
    help={
        "target": TARGET_HELP,
        "config": CONFIG_HELP,
        "image": "verify this local image against the target (default: the target's output),"
        " or docker://REGISTRY/REPOSITORY[:TAG|@DIGEST], pulled into a temporary storage",
        "json": "also write the report as JSON to this path",
        **{name: f"for a docker:// image: {text}" for name, text in REGISTRY_HELP.items()},
    }
)
@cli(needs_mount=True)
def verify(
    c,
    target=None,
    config=None,
    image=None,
    json=None,
    tls_verify=True,
    authfile=None,
    registries_d=None,
    policy=None,
):
    """Prove an image is Rust-free and works: checks with a table, exit 0 only if all pass."""
    from qjson_tasks.app.publish import registry_access_for, run_remote_verify
    from qjson_tasks.app.targets import resolve_target
    from qjson_tasks.app.tools import run_tools
    from qjson_tasks.app.verify import run_verify_outputs, write_json_report

    resolved = resolve_target(target, config)
    access = registry_access_for(image, tls_verify, authfile, registries_d, policy)
    with run_tools(resolved) as tools:
        if access is None:
            reports = run_verify_outputs(resolved, tools, image)  # one per platform
        else:
            reports = [run_remote_verify(resolved, tools, image, access)]
    for report in reports:
        if len(reports) > 1:
            print(f"== {report.image}")
        print(report.table())
        if report.provenance:
            print(report.provenance_lines())
    if json:
        write_json_report(reports if len(reports) > 1 else reports[0], json)
    failed = [report for report in reports if not report.passed]
    if failed:
        report = failed[0]
        names = ", ".join(check.name for check in report.failed())
        raise Exit(f"ERROR verification of {report.image} failed: {names}", code=1)


@task(
    help={
        "target": TARGET_HELP,
        "config": CONFIG_HELP,
        "to": "where to push: REGISTRY/REPOSITORY[:TAG] (default tag: the output's)",
        **REGISTRY_HELP,
        **PUSH_HELP,
    }
)
@cli(needs_mount=True)
def publish(
    c,
    to=None,
    target=None,
    config=None,
    tls_verify=True,
    authfile=None,
    registries_d=None,
    policy=None,
    digest_file=None,
    sign_by=None,
):
    """Push a target's verified image, then verify the registry's copy, pulled by digest."""
    from qjson_tasks.app.publish import format_publish_result, push_request, run_publish
    from qjson_tasks.app.targets import resolve_target
    from qjson_tasks.app.tools import run_tools

    resolved = resolve_target(target, config)
    flags = (authfile, registries_d, policy, digest_file, sign_by)
    request = push_request(resolved, to, True, tls_verify, *flags, flag="--to")
    with run_tools(resolved) as tools:
        result = run_publish(resolved, tools, request)
    print(format_publish_result(result))


@task(
    help={
        "target": TARGET_HELP,
        "config": CONFIG_HELP,
        "write": "write containerfiles/NAME.Containerfile instead of printing it",
    }
)
@cli()
def containerfile(c, target=None, config=None, write=False):
    """Render the equivalent multi-stage Containerfile (for docker/podman build)."""
    from qjson_tasks.app.containerfile import containerfile_path, render_containerfile
    from qjson_tasks.app.targets import resolve_target

    resolved = resolve_target(target, config)
    text = render_containerfile(resolved)
    if write:
        path = containerfile_path(resolved)
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    else:
        print(text, end="")


@task
@cli()
def schema(c):
    """Write schema/target.schema.json and docs/configuration.md from the config models."""
    from qjson_tasks.app.schema import write_generated

    for path, changed in write_generated():
        print(f"{'wrote' if changed else 'up to date:'} {path}")


@task(help={"target": TARGET_HELP, "config": CONFIG_HELP})
@cli()
def pin(c, target=None, config=None):
    """Pin the target's floating image tags to the local images' digests, in its config file."""
    from qjson_tasks.app.targets import pin_target, resolve_target
    from qjson_tasks.app.tools import make_tools

    resolved = resolve_target(target, config)
    for line in pin_target(resolved, make_tools(resolved)):
        print(line)


@task(
    help={
        "target": TARGET_HELP,
        "repeat": "repetitions of every scenario (default 3)",
        "out": "directory for results.json and results.md (default bench/)",
    }
)
@cli(needs_mount=True)
def bench(c, target=None, repeat=3, out="bench"):
    """Time cold/warm/rock-change builds against `buildah build --layers`; write the results."""
    from qjson_tasks.app.bench import run_benchmark
    from qjson_tasks.app.targets import resolve_target
    from qjson_tasks.app.tools import run_tools

    resolved = resolve_target(target)
    with run_tools(resolved) as tools:
        print(run_benchmark(resolved, tools, int(repeat), Path(out)), end="")


@task(
    help={
        "target": TARGET_HELP,
        "config": CONFIG_HELP,
        "image": "the local image to describe (default: the target's output)",
        "format": "cyclonedx (CycloneDX 1.6 JSON, the default) or spdx (SPDX 2.3 JSON)",
        "output": "where to write the document",
    }
)
@cli(needs_mount=True)
def sbom(c, output, target=None, config=None, image=None, format="cyclonedx"):
    """Write the SBOM of a target's image: base, rocks, crates, every added file's sha256."""
    from qjson_tasks.app.sbom import describe, write_sbom
    from qjson_tasks.app.targets import resolve_target
    from qjson_tasks.app.tools import run_tools

    resolved = resolve_target(target, config)
    with run_tools(resolved) as tools:
        written = write_sbom(resolved, tools, output, image, format)
    print(describe(written))
