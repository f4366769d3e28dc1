"""Reaching a registry: the flags each tool gets, and each kind of failure as one line."""

from __future__ import annotations

import pytest

from qjson_tasks.errors import ToolError
from qjson_tasks.host.registry import RemoteAccess, last_error, registry_failure

REGISTRY = "127.0.0.1:5000"


def test_verified_tls_is_buildahs_default_and_passes_no_flag() -> None:
    assert RemoteAccess().buildah_args() == []
    assert RemoteAccess().buildah_globals() == []
    access = RemoteAccess(tls_verify=False, authfile="/a.json", registries_d="/r.d")
    assert access.buildah_args() == ["--tls-verify=false", "--authfile", "/a.json"]
    assert access.buildah_globals() == ["--registries-conf-dir", "/r.d"]


# What buildah 1.28 printed here for each case.
REFUSED = (
    'Error: pushing image "x" to "docker://127.0.0.1:5000/qjt/a:v1": trying to reuse blob'
    " sha256:a24e at destination: checking whether a blob sha256:a24e exists in"
    " 127.0.0.1:5000/qjt/a: unauthorized: authentication required"
)
UNREACHABLE = (
    'Error: pushing image "x": pinging container registry 127.0.0.1:5000: Get'
    ' "http://127.0.0.1:5000/v2/": dial tcp 127.0.0.1:5000: connect: connection refused'
)
PLAIN_HTTP = (
    'Error: pinging container registry 127.0.0.1:5000: Get "https://127.0.0.1:5000/v2/":'
    " http: server gave HTTP response to HTTPS client"
)
UNKNOWN = (
    "Error: initializing source docker://127.0.0.1:5000/qjt/nothere:v1: reading manifest v1"
    " in 127.0.0.1:5000/qjt/nothere: manifest unknown: manifest unknown"
)


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (
            REFUSED,
            "registry 127.0.0.1:5000 refused the credentials from --authfile /a.json"
            " (unauthorized: authentication required): log in with `buildah login"
            " 127.0.0.1:5000` or pass --authfile; nothing was pushed",
        ),
        (
            UNREACHABLE,
            "registry 127.0.0.1:5000 is unreachable (connection refused); nothing was pushed",
        ),
        (PLAIN_HTTP, "registry 127.0.0.1:5000 answers plain HTTP, not HTTPS: pass --no-tls-verify"),
        (UNKNOWN, "the registry has no such image (manifest unknown); nothing was pushed"),
        ("Error: writing blob: disk quota exceeded", "writing blob: disk quota exceeded"),
    ],
    ids=["credentials", "unreachable", "plain http", "no such image", "other"],
)
def test_a_failure_is_one_line_saying_why(output: str, expected: str) -> None:
    exc = ToolError("command failed (exit 125): buildah push ...", output=output)
    access = RemoteAccess(authfile="/a.json")
    message = str(registry_failure(exc, REGISTRY, "pushing x", access, "nothing was pushed"))
    assert message.startswith("pushing x failed: ") and expected in message
    assert "\n" not in message
    if "quota" in output:  # it may have happened mid-push: no claim that nothing was sent
        assert "nothing was pushed" not in message


def test_the_last_error_line_of_buildah() -> None:
    buildah = ToolError("command failed", output="WARN retrying\nError: first\nError: last one")
    assert last_error(buildah) == "last one"
    assert last_error(ToolError("command failed (exit 1): x\nno error line")) == (
        "command failed (exit 1): x"
    )


def test_skopeo_reads_the_real_users_auth_file_inside_buildah_unshare(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from qjson_tasks.host.skopeo import Skopeo

    calls: list[list[str]] = []

    class Recorder:
        def run(self, argv: list[str], **_: object) -> str:
            calls.append(list(argv))
            return '{"Digest": "sha256:ab", "Labels": {"k": "v"}}'

    monkeypatch.setenv("_CONTAINERS_ROOTLESS_UID", "1001")
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    found = Skopeo(Recorder()).inspect("r.example:5000/ns/unit-builder:1", RemoteAccess(False))  # type: ignore[arg-type]
    assert found is not None and found.labels == {"k": "v"}
    assert calls[0][-3:] == [
        "--authfile", "/run/user/1001/containers/auth.json", "docker://r.example:5000/ns/unit-builder:1"
    ]  # fmt: skip
    assert "--tls-verify=false" in calls[0]
    monkeypatch.delenv("_CONTAINERS_ROOTLESS_UID")
    calls.clear()
    Skopeo(Recorder()).inspect("r.example:5000/ns/x:1", RemoteAccess(authfile="/a.json"))  # type: ignore[arg-type]
    assert calls[0].count("--authfile") == 1 and "/a.json" in calls[0]


def test_skopeo_answers_none_for_a_missing_image_and_raises_for_other_failures() -> None:
    from qjson_tasks.host.skopeo import Skopeo

    class Failing:
        def __init__(self, output: str) -> None:
            self.output = output

        def run(self, argv: list[str], **_: object) -> str:
            raise ToolError("command failed (exit 1): skopeo inspect", self.output)

    missing = Failing("Error: reading manifest 1 in r.example/ns/x: manifest unknown")
    assert Skopeo(missing).inspect("r.example/ns/x:1", RemoteAccess()) is None  # type: ignore[arg-type]
    refused = Failing("Error: pinging container registry r.example: connection refused")
    with pytest.raises(ToolError):
        Skopeo(refused).inspect("r.example/ns/x:1", RemoteAccess())  # type: ignore[arg-type]
