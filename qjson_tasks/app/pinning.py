"""Pin a target's images by digest: which references float, and the config rewrite.

A reference like `docker.io/apache/apisix:3.16.0-debian` names whatever the registry serves
under that tag today; `...:3.16.0-debian@sha256:<digest>` names one image forever. Images under
`localhost/` are made on this machine (the bootstrap base, builder units), so they never float.

The rewrite works on the config's text, not on parsed TOML, so comments and layout survive;
it changes exactly one value and checks that by parsing the result.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from qjson_tasks.config.load import parse_target
from qjson_tasks.config.model import Target, TargetConfig
from qjson_tasks.errors import ConfigError, ToolError
from qjson_tasks.host.buildah import Buildah

# The config fields that name images pulled from a registry, and their flags.
IMAGE_FIELDS = (("runtime", "base_image"), ("builder", "image"))
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class FloatingRef:
    section: str
    key: str
    ref: str

    @property
    def field(self) -> str:
        return f"{self.section}.{self.key}"


def is_local(ref: str) -> bool:
    """True for images made on this machine (`localhost/...`, `localhost:5000/...`)."""
    first = ref.split("/", 1)[0]
    return "/" in ref and (first == "localhost" or first.startswith("localhost:"))


def is_pinned(ref: str) -> bool:
    return bool(_DIGEST.search(ref))


def floating_refs(config: TargetConfig) -> list[FloatingRef]:
    """The image fields whose value is a tag (no digest) of a registry image."""
    found = []
    for section, key in IMAGE_FIELDS:
        ref = getattr(getattr(config, section), key)
        if not is_pinned(ref) and not is_local(ref):
            found.append(FloatingRef(section, key, ref))
    return found


def pin_command(target: Target, config_dir: Path) -> str:
    shipped = target.path.resolve() == (config_dir / f"{target.name}.toml").resolve()
    return f"invoke pin --target {target.name}" if shipped else f"invoke pin --config {target.path}"


def floating_warnings(target: Target, config_dir: Path) -> list[str]:
    """One `WARNING ...` line per floating image reference of the target."""
    command = pin_command(target, config_dir)
    return [
        f"WARNING {target.path}: {ref.field} {ref.ref} is a floating tag (no @sha256 digest);"
        f" pin it with: {command}"
        for ref in floating_refs(target.config)
    ]


def with_digest(ref: str, digest: str) -> str:
    """`name:tag` -> `name:tag@sha256:...` (the tag stays for readers; the digest decides)."""
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        raise ToolError(f"'{digest}' is not a sha256 digest (for {ref})")
    return f"{_DIGEST.sub('', ref)}@{digest}"


# --- the text rewrite ---------------------------------------------------------------------

_TABLE = re.compile(r"^\s*\[(?!\[)\s*(?P<name>[^\]#]+?)\s*\]\s*(?:#.*)?$")
_ASSIGN = re.compile(
    r"^\s*(?P<key>[A-Za-z0-9_.\-\"' ]+?)\s*=\s*(?P<quote>[\"'])(?P<value>[^\"'\n]*)(?P=quote)"
)


def _dotted(name: str) -> str:
    return ".".join(part.strip().strip("\"'") for part in name.split("."))


def rewrite_value(text: str, section: str, key: str, old: str, new: str) -> str:
    """Replace the one `section.key = "old"` string in TOML text with `new`, nothing else.

    Finds the key under a `[section]` header or as a dotted `section.key` before any header.
    Raises ConfigError when it is not there exactly once or the result would parse differently.
    """
    wanted = f"{section}.{key}"
    table = ""
    spans: list[tuple[int, int]] = []
    offset = 0
    for line in text.splitlines(keepends=True):
        header = _TABLE.match(line)
        if header:
            table = _dotted(header.group("name"))
        else:
            assign = _ASSIGN.match(line)
            if assign:
                full = _dotted(assign.group("key"))
                full = f"{table}.{full}" if table else full
                if full == wanted and assign.group("value") == old:
                    spans.append((offset + assign.start("value"), offset + assign.end("value")))
        offset += len(line)
    if len(spans) != 1:
        found = "not found" if not spans else f"found {len(spans)} times"
        raise ConfigError(
            f'{wanted} = "{old}" {found} as a plain string in the config; edit it by hand'
        )
    start, end = spans[0]
    result = text[:start] + new + text[end:]
    _check_one_change(text, result, section, key, new)
    return result


def _check_one_change(before: str, after: str, section: str, key: str, new: str) -> None:
    expected = tomllib.loads(before)
    expected[section][key] = new
    if tomllib.loads(after) != expected:
        raise ConfigError(f"rewriting {section}.{key} would change more than that value")


# --- with buildah -------------------------------------------------------------------------


def local_digest(buildah: Buildah, ref: str) -> str | None:
    """The manifest digest of the local image `ref`, None when it is not in local storage."""
    info = buildah.inspect_image(ref)
    if info is None:
        return None
    if not info.digest:
        raise ToolError(f"buildah reports no digest for the local image {ref}")
    return info.digest


def pin_target(target: Target, buildah: Buildah) -> list[str]:
    """Pin every floating image of the target to its local digest, rewriting the config file.

    All images are looked up before the file is touched: a missing one changes nothing.
    Returns one line per field saying what happened.
    """
    floating = floating_refs(target.config)
    if not floating:
        return [f"{target.path}: nothing to pin (images are pinned by digest or local)"]
    pins = []
    for ref in floating:
        digest = local_digest(buildah, ref.ref)
        if digest is None:
            raise ToolError(
                f"{ref.ref} ({ref.field}) is not in local storage; pull it first:"
                f" buildah pull {ref.ref}"
            )
        pins.append((ref, with_digest(ref.ref, digest)))
    try:
        text = target.path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{target.path}: cannot read: {exc.strerror}") from None
    for ref, pinned in pins:
        try:
            text = rewrite_value(text, ref.section, ref.key, ref.ref, pinned)
        except ConfigError as exc:
            raise ConfigError(f"{target.path}: {exc}") from None
    parse_target(text, target.path)  # still a valid target config, or nothing is written
    target.path.write_text(text, encoding="utf-8")
    return [f'{target.path}: {ref.field} = "{pinned}"' for ref, pinned in pins]
