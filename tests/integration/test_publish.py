"""Publishing to a real registry (docker-registry on 127.0.0.1) and checking what it holds.

The image is the session's verified build of the offline target, published through a config
file named offline.toml (the same target, so the same units) whose output is that build's
test tag. Registries are the tests' own (tests/fixtures/registry.py); signatures go to a
lookaside directory set in a registries.d the tests write, signed with keys of a throwaway
GNUPGHOME. Every run of `invoke` must leave no temporary storage behind.
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from qjson_tasks.app.build import run_build
from qjson_tasks.app.targets import resolve_target
from qjson_tasks.app.tools import Tools
from qjson_tasks.app.units import current_plan
from qjson_tasks.build.labels import SBOM_LABEL
from qjson_tasks.build.pipeline import BuildResult
from qjson_tasks.config.model import Target
from qjson_tasks.host.storage import STORAGE_PREFIX, storage_place
from qjson_tasks.sbom.store import provenance_path, stored_path
from tests.conftest import PROJECT_DIR
from tests.fixtures.registry import Registry, free_port, missing_tools
from tests.integration.conftest import SUFFIX, TEST_REPOSITORY

pytestmark = pytest.mark.skipif(
    bool(missing_tools()),
    reason=f"needs {', '.join(missing_tools())} (run.sh installs docker-registry, apache2-utils)",
)

PASSWORD = "qjt-Pw-9f2c61d0"  # the test registry's; must never be printed


def run_invoke(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "invoke", "--search-root", str(PROJECT_DIR), *args]
    return subprocess.run(
        command, cwd=PROJECT_DIR, capture_output=True, text=True, check=False,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def storages() -> set[str]:
    return {p.name for p in storage_place().glob(f"{STORAGE_PREFIX}*")}


def one_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single ERROR line a failed task printed (no traceback)."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1, result.stderr
    return errors[0]


# Anonymous: inside `buildah unshare` skopeo would read root's auth file (and be refused).
SKOPEO = ["skopeo", "inspect", "--tls-verify=false", "--no-creds"]


def skopeo_digest(ref: str) -> str:
    argv = [*SKOPEO, "--format", "{{.Digest}}", ref]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


def skopeo_manifest(ref: str) -> dict[str, Any]:
    argv = [*SKOPEO, "--raw", ref]
    return json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)


@pytest.fixture(autouse=True)
def no_storage_left() -> Iterator[None]:
    before = storages()
    yield
    assert storages() - before == set(), "a temporary storage was left behind"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with Registry(tmp_path_factory.mktemp("registry")) as served:
        yield served


def config_file(directory: Path, output_ref: str) -> Path:
    """offline.toml (the offline target, same units) with its output at output_ref."""
    data = resolve_target("offline").config.model_dump(mode="json", exclude_none=True)
    image, _, tag = output_ref.rpartition(":")
    data["output"] = {"image": image, "tag": tag}
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "offline.toml"
    path.write_text(tomli_w.dumps(data))
    return path


@pytest.fixture(scope="module")
def config(built: BuildResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return config_file(tmp_path_factory.mktemp("config"), built.image_ref)


def publish(
    config: Path, to: str, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    args = ("--config", str(config), "--to", to, "--no-tls-verify", *extra)
    return run_invoke("publish", *args, env=env)


def test_publish_pushes_the_verified_image_and_checks_the_registry_copy(
    registry: Registry, config: Path, built: BuildResult, tmp_path: Path
) -> None:
    digest_file = tmp_path / "digest"
    to = f"{registry.host}/qjt/offline:published"
    result = publish(config, to, "--digest-file", str(digest_file))
    assert result.returncode == 0, result.stderr
    digest = skopeo_digest(f"docker://{to}")
    assert f"  digest: {digest}" in result.stdout
    assert digest_file.read_text() == digest + "\n"
    assert f"pushed {to}@{digest}" in result.stderr
    table = result.stderr.split("==> remote check", 1)[1]
    for check in ("registry", "no-rust", "artifacts", "hygiene", "contract", "smoke"):
        assert f"\n{check} " in table and "FAIL" not in table, table
    assert f"image {built.image_id[:12]} as pushed" in table
    assert skopeo_manifest(f"docker://{to}")["config"]["digest"] == f"sha256:{built.image_id}"


def test_build_runtime_push_builds_verifies_and_publishes(registry: Registry, config: Path) -> None:
    to = f"{registry.host}/qjt/built-and-pushed:v1"
    result = run_invoke("build-runtime", "--config", str(config), "--push", to, "--no-tls-verify")
    assert result.returncode == 0, result.stderr
    assert "up to date (verified when it was built)" in result.stdout
    assert f"  digest: {skopeo_digest(f'docker://{to}')}" in result.stdout


@dataclass(frozen=True)
class Signing:
    home: Path
    trusted: str  # fingerprint the policy accepts
    other: str  # a second key, in the same GNUPGHOME
    registries_d: Path
    policy: Path


def _generate_key(home: Path, name: str) -> str:
    env = {**os.environ, "GNUPGHOME": str(home)}
    gpg = ["gpg", "--batch", "--passphrase", ""]
    subprocess.run([*gpg, "--quick-gen-key", f"{name} <{name}@qjt.invalid>", "default",
                    "default", "never"], env=env, capture_output=True, check=True)  # fmt: skip
    listed = subprocess.run(
        ["gpg", "--batch", "--with-colons", "--list-secret-keys", f"{name}@qjt.invalid"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return next(line.split(":")[9] for line in listed.splitlines() if line.startswith("fpr:"))


@pytest.fixture(scope="module")
def signing(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Signing]:
    base = tmp_path_factory.mktemp("signing")
    home = base / "gnupg"
    home.mkdir(mode=0o700)
    trusted, other = _generate_key(home, "trusted"), _generate_key(home, "other")
    public = base / "trusted.asc"
    env = {**os.environ, "GNUPGHOME": str(home)}
    exported = subprocess.run(["gpg", "--batch", "--armor", "--export", trusted], env=env,
                              capture_output=True, check=True).stdout  # fmt: skip
    public.write_bytes(exported)
    registries_d = base / "registries.d"
    registries_d.mkdir()
    lookaside = f"file://{base / 'signatures'}"
    (registries_d / "qjt-test.yaml").write_text(
        f"docker:\n  {registry.host}:\n    lookaside: {lookaside}\n"
        f"    lookaside-staging: {lookaside}\n"
    )
    policy = base / "policy.json"
    signed_by = {"type": "signedBy", "keyType": "GPGKeys", "keyPath": str(public)}
    policy.write_text(json.dumps({
        "default": [{"type": "insecureAcceptAnything"}],
        "transports": {"docker": {registry.host: [signed_by]}},
    }))  # fmt: skip
    try:
        yield Signing(home, trusted, other, registries_d, policy)
    finally:  # gpg left an agent running for this GNUPGHOME
        subprocess.run(["gpgconf", "--kill", "all"], env=env, check=False)


def verify_remote(ref: str, signing: Signing) -> subprocess.CompletedProcess[str]:
    return run_invoke(
        "verify", "--image", f"docker://{ref}", "--no-tls-verify",
        "--policy", str(signing.policy), "--registries-d", str(signing.registries_d),
    )  # fmt: skip


def test_a_signed_image_is_accepted_under_a_signed_by_policy(
    registry: Registry, config: Path, signing: Signing
) -> None:
    to = f"{registry.host}/qjt/signed:v1"
    env = {"GNUPGHOME": str(signing.home)}
    flags = ("--sign-by", signing.trusted, "--registries-d", str(signing.registries_d))
    result = publish(config, to, *flags, "--policy", str(signing.policy), env=env)
    assert result.returncode == 0, result.stderr
    assert f"  signed by: {signing.trusted}" in result.stdout
    assert f"signature    PASS    accepted by the policy {signing.policy}" in result.stderr
    checked = verify_remote(to, signing)
    assert checked.returncode == 0, checked.stderr
    assert "\nsignature    PASS    accepted by the policy" in checked.stdout


def test_unsigned_and_other_key_images_are_refused(
    registry: Registry, config: Path, signing: Signing, built: BuildResult
) -> None:
    unsigned = f"{registry.host}/qjt/unsigned:v1"
    other = f"{registry.host}/qjt/other-key:v1"
    push = ["buildah", "push", "--quiet", "--tls-verify=false"]
    subprocess.run([*push, built.image_id, f"docker://{unsigned}"], check=True)
    subprocess.run(
        ["buildah", "--registries-conf-dir", str(signing.registries_d), *push[1:],
         "--sign-by", signing.other, built.image_id, f"docker://{other}"],
        env={**os.environ, "GNUPGHOME": str(signing.home)}, check=True,
    )  # fmt: skip
    refused = one_error(verify_remote(unsigned, signing))
    assert "refused by the signature policy" in refused and refused.endswith("it has no signature")
    refused = one_error(verify_remote(other, signing))
    assert f"signed by key {signing.other}, which the policy doesn't accept" in refused


# --- bad input and faults: one ERROR line each, nothing pushed or half-tagged ---------------


@pytest.mark.parametrize(
    ("to", "expected"),
    [
        (
            "127.0.0.1:5000/Qjt/Upper",
            "--to: '127.0.0.1:5000/Qjt/Upper' is not a registry reference",
        ),
        ("qjt/offline", "--to: 'qjt/offline' names no registry"),
        (f"127.0.0.1:5000/qjt/offline@sha256:{'0' * 64}", "has a digest; a push names a tag"),
    ],
    ids=["upper case", "no registry", "digest"],
)
def test_a_bad_repository_is_refused_before_anything_runs(
    config: Path, to: str, expected: str
) -> None:
    assert expected in one_error(publish(config, to))


def test_an_unreachable_registry_is_one_error(config: Path) -> None:
    error = one_error(publish(config, f"127.0.0.1:{free_port()}/qjt/offline:v1"))
    assert error.endswith("is unreachable (connection refused); nothing was pushed"), error


def test_an_image_that_is_not_there_is_refused(registry: Registry, tmp_path: Path) -> None:
    path = config_file(tmp_path, f"{TEST_REPOSITORY}/never-built-{SUFFIX}:latest")
    error = one_error(publish(path, f"{registry.host}/qjt/never:v1"))
    assert f"is not a local image: build it with `invoke build-runtime --config {path}`" in error
    assert not registry.has_tag("qjt/never", "v1")


def test_an_unverified_image_is_refused(
    registry: Registry, tmp_path: Path, derive: Callable[..., str]
) -> None:
    unverified = derive("unverified", lambda root, ctr: None)  # no runtime unit name
    error = one_error(publish(config_file(tmp_path, unverified), f"{registry.host}/qjt/unv:v1"))
    assert "was not verified by qjson-tasks (built with --no-verify" in error
    assert not registry.has_tag("qjt/unv", "v1")


def test_build_runtime_refuses_push_with_no_verify(registry: Registry, config: Path) -> None:
    to = f"{registry.host}/qjt/no-verify:v1"
    result = run_invoke("build-runtime", "--config", str(config), "--no-verify", "--push", to)
    assert "--push publishes verified images only" in one_error(result)
    assert "==> " not in result.stderr  # refused before any step


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with Registry(tmp_path_factory.mktemp("auth-registry"), users={"qjt": PASSWORD}) as served:
        yield served


def auth_file(path: Path, registry: Registry, password: str) -> str:
    token = base64.b64encode(f"qjt:{password}".encode()).decode()
    path.write_text(json.dumps({"auths": {registry.host: {"auth": token}}}))
    return str(path)


def test_a_wrong_password_is_refused_and_never_printed(
    auth_registry: Registry, config: Path, tmp_path: Path
) -> None:
    wrong = f"not-{PASSWORD}"
    authfile = auth_file(tmp_path / "auth.json", auth_registry, wrong)
    result = publish(config, f"{auth_registry.host}/qjt/private:v1", "--authfile", authfile)
    error = one_error(result)
    assert f"refused the credentials from --authfile {authfile}" in error
    assert error.endswith("nothing was pushed")
    assert wrong not in result.stdout + result.stderr + auth_registry.log
    assert not auth_registry.has_tag("qjt/private", "v1")


def test_the_authfile_serves_the_push_and_the_pull_back(
    auth_registry: Registry, config: Path, tmp_path: Path
) -> None:
    authfile = auth_file(tmp_path / "auth.json", auth_registry, PASSWORD)
    result = publish(config, f"{auth_registry.host}/qjt/private:v2", "--authfile", authfile)
    assert result.returncode == 0, result.stderr
    assert PASSWORD not in result.stdout + result.stderr + auth_registry.log
    assert auth_registry.has_tag("qjt/private", "v2")


def processes_naming(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in argv:
            found.append(argv)
    return found


def test_an_interrupted_push_leaves_nothing_and_a_rerun_pushes_it(
    config: Path, tmp_path: Path
) -> None:
    digest_file = tmp_path / "digest"
    # Where buildah would leave the blob copies of an interrupted push (its TMPDIR).
    temporary_files = set(storage_place().iterdir())
    with Registry(tmp_path / "fresh") as fresh:  # no blob of the image there yet
        to = f"{fresh.host}/qjt/interrupted:v1"
        command = [sys.executable, "-m", "invoke", "--search-root", str(PROJECT_DIR), "publish",
                   "--config", str(config), "--to", to, "--no-tls-verify",
                   "--digest-file", str(digest_file)]  # fmt: skip
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 60
        while not fresh.uploading("qjt/interrupted"):
            assert process.poll() is None and time.monotonic() < deadline, "no push started"
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 130, stderr
        assert "ERROR interrupted" in stderr and "Traceback" not in stderr
        assert not fresh.has_tag("qjt/interrupted", "v1") and not digest_file.exists()
        assert processes_naming(to) == []
        assert set(storage_place().iterdir()) - temporary_files == set()
        rerun = publish(config, to, "--digest-file", str(digest_file))
        assert rerun.returncode == 0, rerun.stderr
        assert digest_file.read_text().strip() == skopeo_digest(f"docker://{to}")


def test_a_corrupted_blob_in_the_registry_fails_the_remote_check(
    config: Path, built: BuildResult, tmp_path: Path
) -> None:
    digest_file = tmp_path / "digest"
    with Registry(tmp_path / "damaged") as damaged:
        to = f"{damaged.host}/qjt/damaged:v1"
        push = ["buildah", "push", "--quiet", "--tls-verify=false"]
        subprocess.run([*push, built.image_id, f"docker://{to}"], check=True)
        layer = skopeo_manifest(f"docker://{to}")["layers"][-1]["digest"]  # the rock tree's
        blob = damaged.blob(layer)
        data = bytearray(blob.read_bytes())
        data[len(data) // 2] ^= 0xFF
        blob.write_bytes(data)
        error = one_error(publish(config, to, "--digest-file", str(digest_file)))
        assert "the registry serves a damaged copy" in error and layer in error, error
        assert not digest_file.exists()


def test_publish_attaches_the_sbom_and_the_provenance_statement(
    registry: Registry, config: Path, built: BuildResult, offline_target: Target, tools: Tools
) -> None:
    # The runtime made again (same image ID), so its provenance statement is surely here.
    tools.buildah.rmi(current_plan(offline_target, tools).runtime.image)
    run_build(offline_target, tools, verify=True)
    to = f"{registry.host}/qjt/attached:v1"
    result = publish(config, to)
    assert result.returncode == 0, result.stderr
    digest = skopeo_digest(f"docker://{to}")
    labels = tools.buildah.inspect_image(built.image_id).labels  # type: ignore[union-attr]
    expected = {
        "sbom": ("sbom.cdx.json", stored_path(labels[SBOM_LABEL]).read_bytes()),
        "att": ("provenance.intoto.json", provenance_path(built.image_id).read_bytes()),
    }
    for suffix, (name, content) in expected.items():
        tag = f"{registry.host}/qjt/attached:{digest.replace(':', '-')}.{suffix}"
        assert f"  attached: {tag}" in result.stdout
        [layer] = skopeo_manifest(f"docker://{tag}")["layers"]
        url = f"http://{registry.host}/v2/qjt/attached/blobs/{layer['digest']}"
        with urllib.request.urlopen(url, timeout=10) as answer:
            blob = answer.read()
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as archive:
            member = archive.extractfile(name)
            assert member is not None and member.read() == content
