"""A registry reference given as a flag (`--to`, `--push`, `verify --image docker://...`),
parsed once into a RemoteRef with the same rules as the config's image references."""

from __future__ import annotations

from dataclasses import dataclass

from qjson_tasks.config.model import check_image_ref
from qjson_tasks.errors import ConfigError

TRANSPORT = "docker://"
SHAPE = "REGISTRY/REPOSITORY[:TAG]"


@dataclass(frozen=True)
class RemoteRef:
    """`registry/repository` plus a tag, a digest, or both."""

    registry: str
    repository: str  # without the registry
    tag: str = ""
    digest: str = ""

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def tagged(self) -> str:
        return f"{self.name}:{self.tag}" if self.tag else self.name

    def by_digest(self, digest: str) -> RemoteRef:
        return RemoteRef(self.registry, self.repository, self.tag, digest)

    @property
    def pinned(self) -> str:
        """name@digest when the digest is known, else name:tag."""
        return f"{self.name}@{self.digest}" if self.digest else self.tagged

    @property
    def transport(self) -> str:
        """What buildah pulls: docker://name@digest, else docker://name:tag."""
        return TRANSPORT + self.pinned

    def __str__(self) -> str:
        return self.pinned if self.digest and not self.tag else self.tagged


def _is_registry(component: str) -> bool:
    # The rule docker and containers/image use to tell a registry from a first path part.
    return "." in component or ":" in component or component == "localhost"


def parse_remote(
    flag: str, value: str, default_tag: str = "", allow_digest: bool = False
) -> RemoteRef:
    """A flag's registry reference; an optional docker:// is dropped. Errors name the flag."""
    text = value.removeprefix(TRANSPORT)
    try:
        check_image_ref(text)
    except ValueError:
        raise ConfigError(
            f"{flag}: {value!r} is not a registry reference: use {SHAPE} (a lower-case"
            " repository path; a tag of letters, digits, '_', '.', '-')"
        ) from None
    registry, _, rest = text.partition("/")
    if not rest and _is_registry(registry):
        raise ConfigError(f"{flag}: {value!r} names no repository: use {SHAPE}")
    if not rest or not _is_registry(registry):
        raise ConfigError(
            f"{flag}: {value!r} names no registry: use {SHAPE} (the registry is a host name"
            " with a dot or a port, or localhost), for example ghcr.io/org/name:tag"
        )
    rest, _, digest = rest.partition("@")
    if digest and not allow_digest:
        raise ConfigError(f"{flag}: {value!r} has a digest; a push names a tag: use {SHAPE}")
    repository, _, tag = rest.partition(":")
    return RemoteRef(registry, repository, tag or ("" if digest else default_tag), digest)
