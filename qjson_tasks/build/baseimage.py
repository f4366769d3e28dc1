"""Make a runtime base image from Debian packages: debootstrap into a scratch container."""

from __future__ import annotations

import re
from pathlib import Path

from qjson_tasks.build.names import container_name
from qjson_tasks.config.model import Bootstrap
from qjson_tasks.config.platforms import Platform
from qjson_tasks.errors import ConfigError
from qjson_tasks.host.buildah import Buildah
from qjson_tasks.host.runner import Runner

APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))


def _mirrors_in(text: str, deb822: bool) -> list[str]:
    if deb822:
        return [m.group(1) for m in re.finditer(r"^URIs:\s*(\S+)", text, re.MULTILINE)]
    mirrors = []
    for line in text.splitlines():
        match = re.match(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)", line.strip())
        if match:
            mirrors.append(match.group(1))
    return mirrors


def detect_mirror(sources: tuple[Path, ...] = APT_SOURCES) -> str | None:
    """The host's Debian mirror (not the security one) from its apt sources, if any."""
    files: list[Path] = []
    for source in sources:
        if source.is_dir():
            files += sorted(source.glob("*.sources")) + sorted(source.glob("*.list"))
        elif source.is_file():
            files.append(source)
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        for mirror in _mirrors_in(text, deb822=path.suffix == ".sources"):
            if mirror.startswith(("http://", "https://")) and "security" not in mirror:
                return mirror
    return None


def debootstrap_command(
    bootstrap: Bootstrap, root: Path, mirror: str, platform: Platform | None = None
) -> list[str]:
    """debootstrap's argv; for a platform, its Debian architecture (`--arch=arm64`), whose
    programs the second stage runs under emulation when it is not the host's."""
    arch = [f"--arch={platform.debian}"] if platform is not None else []
    return [
        "debootstrap",
        *arch,
        "--variant=minbase",
        f"--include={','.join(bootstrap.packages)}",
        bootstrap.suite,
        str(root),
        mirror,
    ]


def build_base_image(
    buildah: Buildah,
    runner: Runner,
    bootstrap: Bootstrap,
    ref: str,
    where: str,
    run_id: str,
    platform: Platform | None = None,
) -> str:
    """Create `ref` from Debian packages in a container of run run_id; returns the image ID.
    For a platform, its packages, and the image config says its os and architecture."""
    mirror = bootstrap.mirror or detect_mirror()
    if not mirror:
        raise ConfigError(
            f"{where}: runtime.bootstrap.mirror is not set and no Debian mirror was found in"
            " /etc/apt/sources.list(.d); set it to your Debian mirror URL"
        )
    with buildah.container("scratch", container_name(run_id, "base"), scratch=True) as ctr:
        with buildah.mounted(ctr) as root:
            runner.run(debootstrap_command(bootstrap, root, mirror, platform), stream=True)
        buildah.run(ctr, ["apt-get", "clean"])
        if bootstrap.user:
            buildah.run(
                ctr,
                [
                    "useradd",
                    "--uid",
                    str(bootstrap.uid),
                    "--create-home",
                    "--shell",
                    "/bin/sh",
                    bootstrap.user,
                ],
            )
        buildah.config(
            ctr,
            user=bootstrap.user,
            workdir=bootstrap.workdir,
            env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
            cmd="luajit -v",
        )
        if platform is not None:
            buildah.config(
                ctr, os=platform.os, arch=platform.architecture, variant=platform.variant
            )
        return buildah.commit(ctr, ref, timestamp=0)
