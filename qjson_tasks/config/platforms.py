"""Platforms (`linux/amd64`, `linux/arm64`): parsed once into a Platform; pure, no I/O.

A Platform knows what every consumer needs of it: the OCI os/architecture/variant that
`buildah config`, `manifest add` and the image config use, Debian's architecture name for
`debootstrap --arch`, the ELF machine and class its libraries must have (the `arch` check),
and the tag suffix that names its images locally.
"""

from __future__ import annotations

import platform as _host
from dataclasses import dataclass


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str  # OCI's name: amd64, arm64, ...
    variant: str = ""
    debian: str = ""  # Debian's architecture name (dpkg, debootstrap --arch)
    elf_machine: str = ""  # pyelftools' e_machine name
    elf_class: int = 64
    uname: str = ""  # what `uname -m` says on it (the binfmt_misc handler's suffix)

    @property
    def text(self) -> str:
        return "/".join(part for part in (self.os, self.architecture, self.variant) if part)

    @property
    def suffix(self) -> str:
        """What a local image name gets for this platform: `linux-arm64`."""
        return self.text.replace("/", "-")

    def __str__(self) -> str:
        return self.text


KNOWN: dict[str, Platform] = {
    p.text: p
    for p in (
        Platform("linux", "amd64", "", "amd64", "EM_X86_64", 64, "x86_64"),
        Platform("linux", "arm64", "", "arm64", "EM_AARCH64", 64, "aarch64"),
        Platform("linux", "arm", "v7", "armhf", "EM_ARM", 32, "arm"),
        Platform("linux", "386", "", "i386", "EM_386", 32, "i386"),
        Platform("linux", "ppc64le", "", "ppc64el", "EM_PPC64", 64, "ppc64le"),
        Platform("linux", "s390x", "", "s390x", "EM_S390", 64, "s390x"),
    )
}
ALIASES = {"linux/arm64/v8": "linux/arm64", "linux/x86_64": "linux/amd64"}
_BY_UNAME = {p.uname: p for p in KNOWN.values()}
_BY_ARCHITECTURE = {p.architecture: p for p in KNOWN.values()}


def parse_platform(text: str) -> Platform:
    """`linux/arm64` as a Platform; a ValueError names what is allowed."""
    key = ALIASES.get(text.strip().lower(), text.strip().lower())
    found = KNOWN.get(key)
    if found is None:
        raise ValueError(
            f"{text!r} is not a supported platform: use one of {', '.join(KNOWN)} (os/arch)"
        )
    return found


def check_platforms(values: tuple[str, ...]) -> tuple[str, ...]:
    """A platforms list: each known, none twice, not empty; kept in the canonical spelling."""
    if not values:
        raise ValueError("the list is empty: give at least one platform, or leave it out")
    canonical = tuple(parse_platform(value).text for value in values)
    twice = sorted({value for value in canonical if canonical.count(value) > 1})
    if twice:
        raise ValueError(f"'{twice[0]}' is listed twice; list each platform once")
    return canonical


def by_architecture(architecture: str) -> Platform | None:
    """The platform an image config's Architecture names (amd64, arm64 ...)."""
    return _BY_ARCHITECTURE.get(architecture)


def host_platform(machine: str | None = None) -> Platform:
    """The platform this machine runs natively (`uname -m`)."""
    machine = machine or _host.machine()
    machine = {"armv7l": "arm", "i686": "i386", "arm64": "aarch64"}.get(machine, machine)
    found = _BY_UNAME.get(machine)
    if found is None:
        return Platform("linux", machine, "", machine, "", 64, machine)
    return found
