"""A multi-platform target seen one platform at a time; pure.

Each platform gets its own base and builder image and so its own units: the platform's view
of the target names them locally as `NAME:TAG-linux-arm64` (a digest-pinned `NAME@sha256:H`
as `NAME:sha256-H-linux-arm64`), except that the host's platform keeps the names the config
gives, so the images a single-platform build made serve it too. Each view's output is
`IMAGE:TAG-linux-arm64`, the image its build verifies; the target's own output tag becomes
the manifest list of them all.
"""

from __future__ import annotations

from dataclasses import dataclass

from qjson_tasks.config.model import Target
from qjson_tasks.config.platforms import Platform, host_platform, parse_platform


def split_ref(ref: str) -> tuple[str, str, str]:
    """`name[:tag][@sha256:hex]` as (name, tag, digest); '' for what is absent."""
    name, _, digest = ref.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = ""
    if ":" in last:
        name, tag = name.rsplit(":", 1)
    return name, tag, digest


def local_ref(ref: str, platform: Platform, host: Platform) -> str:
    """The local name of `ref`'s image for `platform` (ref itself for the host's)."""
    if platform.architecture == host.architecture:
        return ref
    name, tag, digest = split_ref(ref)
    if digest:
        return f"{name}:{digest.replace(':', '-')}-{platform.suffix}"
    return f"{name}:{tag or 'latest'}-{platform.suffix}"


def origin_ref(local: str, platform: Platform) -> str:
    """Where a platform's local image name is pulled from: local_ref undone."""
    name, tag, _ = split_ref(local)
    ending = f"-{platform.suffix}"
    if not tag.endswith(ending):
        return local
    tag = tag.removesuffix(ending)
    if tag.startswith("sha256-") and len(tag) == len("sha256-") + 64:
        return f"{name}@sha256:{tag.removeprefix('sha256-')}"
    return f"{name}:{tag}"


def target_platforms(target: Target, flag: str | None = None) -> tuple[Platform, ...] | None:
    """The platforms a build makes: --platform's comma list, else output.platforms; None
    for a target that builds one image for the host, as every target did before."""
    if flag is not None:
        from qjson_tasks.config.platforms import check_platforms
        from qjson_tasks.errors import ConfigError

        try:
            texts = check_platforms(tuple(part.strip() for part in flag.split(",") if part.strip()))
        except ValueError as exc:
            raise ConfigError(f"--platform: {exc}") from None
        return tuple(parse_platform(text) for text in texts)
    texts = target.config.output.platforms
    return None if texts is None else tuple(parse_platform(text) for text in texts)


@dataclass(frozen=True)
class PlatformView:
    platform: Platform
    target: Target  # its config names this platform's base, builder and output images

    @property
    def output_ref(self) -> str:
        return self.target.config.output.reference


def platform_view(target: Target, platform: Platform, host: Platform | None = None) -> PlatformView:
    host = host or host_platform()
    config = target.config
    runtime = config.runtime.model_copy(
        update={"base_image": local_ref(config.runtime.base_image, platform, host)}
    )
    builder = config.builder.model_copy(
        update={"image": local_ref(config.builder.image, platform, host)}
    )
    output = config.output.model_copy(update={"tag": f"{config.output.tag}-{platform.suffix}"})
    view = config.model_copy(update={"runtime": runtime, "builder": builder, "output": output})
    return PlatformView(platform, Target(target.name, target.path, view, platform))


def platform_targets(target: Target) -> tuple[Target, ...]:
    """What a build of target builds: its platforms' views, or target itself."""
    platforms = target_platforms(target)
    if platforms is None:
        return (target,)
    return tuple(platform_view(target, platform).target for platform in platforms)
