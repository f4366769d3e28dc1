"""Registry references given as flags: parsed once, with the config's image rules."""

from __future__ import annotations

import pytest

from qjson_tasks.config.remote import RemoteRef, parse_remote
from qjson_tasks.errors import ConfigError

DIGEST = "sha256:" + "e" * 64


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:5000/qjt/offline", RemoteRef("127.0.0.1:5000", "qjt/offline", "latest")),
        ("ghcr.io/org/apisix-qjson:3.16.0", RemoteRef("ghcr.io", "org/apisix-qjson", "3.16.0")),
        ("docker://localhost/x:1", RemoteRef("localhost", "x", "1")),
    ],
)
def test_a_push_reference(text: str, expected: RemoteRef) -> None:
    assert parse_remote("--to", text, default_tag="latest") == expected


def test_a_reference_by_digest_is_for_reading_only() -> None:
    ref = parse_remote("--image", f"docker://127.0.0.1:5000/qjt/x@{DIGEST}", allow_digest=True)
    assert ref == RemoteRef("127.0.0.1:5000", "qjt/x", "", DIGEST)
    assert ref.transport == f"docker://127.0.0.1:5000/qjt/x@{DIGEST}"
    assert ref.by_digest(DIGEST).pinned == f"127.0.0.1:5000/qjt/x@{DIGEST}"
    with pytest.raises(ConfigError, match="has a digest; a push names a tag"):
        parse_remote("--to", f"127.0.0.1:5000/qjt/x@{DIGEST}")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:5000/Qjt/Upper", "is not a registry reference"),
        ("127.0.0.1:5000/qjt/x:bad tag", "is not a registry reference"),
        ("qjt/offline", "names no registry"),
        ("offline", "names no registry"),
        ("127.0.0.1:5000", "names no repository"),
    ],
)
def test_a_bad_reference_names_the_flag(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_remote("--to", text)
    assert str(caught.value).startswith(f"--to: {text!r} ") and expected in str(caught.value)
