"""A secret given to the builder (builder.env) never reaches the runtime image.

The offline target is built with a random dummy token in builder.env, which the rock install
step gets through `buildah run --env`. Then the runtime image's whole inspect document (config,
env, labels, history, manifest) and every blob it is made of (pushed to a `dir:` copy, gzip
layers unpacked) are searched for the token. A planted copy of the token, in an image derived
from the good one, proves the search finds one where it is.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from qjson_tasks.app.build import run_build
from qjson_tasks.app.tools import Tools
from qjson_tasks.build.names import UNIT_REPOSITORY
from qjson_tasks.build.pipeline import BuildResult
from qjson_tasks.config.model import Target
from qjson_tasks.host.buildah import Buildah
from tests.integration.conftest import RealRunner, retarget

NAME = "QJT_DUMMY_TOKEN"
SECRET = f"qjt-dummy-{uuid.uuid4().hex}"
CHUNK = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@dataclass
class Findings:
    config: list[str] = field(default_factory=list)  # JSON paths in `buildah inspect`
    blobs: list[str] = field(default_factory=list)  # "blob" or "blob: member" in the dir: copy

    def __bool__(self) -> bool:
        return bool(self.config or self.blobs)


def json_paths(node: Any, needle: str, path: str = "") -> Iterator[str]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if needle in str(key):
                yield f"{path}.{key} (key)"
            yield from json_paths(value, needle, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from json_paths(value, needle, f"{path}[{index}]")
    elif isinstance(node, str) and needle in node:
        yield path or "."


def stream_contains(stream: BinaryIO, needle: bytes) -> bool:
    """Whether needle occurs in the stream, also across chunk boundaries."""
    tail = b""
    while chunk := stream.read(CHUNK):
        if needle in tail + chunk:
            return True
        tail = chunk[-(len(needle) - 1) :]
    return False


def open_blob(path: Path) -> BinaryIO:
    with path.open("rb") as raw:
        magic = raw.read(4)
    if magic.startswith(GZIP_MAGIC):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if magic == ZSTD_MAGIC:
        # Not searched would mean not proven: refuse rather than pass.
        pytest.fail(f"{path.name} is zstd-compressed; this search only reads plain and gzip")
    return path.open("rb")


def members_containing(path: Path, needle: bytes) -> list[str]:
    """Which files of a tar layer hold needle in their name or content."""
    found = []
    with open_blob(path) as stream, tarfile.open(fileobj=stream, mode="r|") as layer:
        for member in layer:
            content = layer.extractfile(member) if member.isfile() else None
            name_hit = needle in member.name.encode() or needle in member.linkname.encode()
            if name_hit or (content is not None and stream_contains(content, needle)):
                found.append(member.name)
    return found


def search_image(buildah: Buildah, image: str, needle: str, copy_dir: Path) -> Findings:
    """Every place the image's config and blobs hold needle."""
    findings = Findings()
    # The whole inspect document, not only what the facade reads of it.
    info = json.loads(buildah.runner.run(["buildah", "inspect", "--type", "image", image]))
    findings.config = list(json_paths(info, needle))
    buildah.runner.run(["buildah", "push", "--quiet", image, f"dir:{copy_dir}"])
    blobs = [p for p in sorted(copy_dir.iterdir()) if p.is_file() and p.name != "version"]
    assert len(blobs) >= 3, f"expected manifest, config and layers in {copy_dir}: {blobs}"
    for blob in blobs:
        with open_blob(blob) as stream:
            if not stream_contains(stream, needle.encode()):
                continue
        try:
            members = members_containing(blob, needle.encode())
        except tarfile.TarError:
            members = []  # the manifest or the config (JSON)
        findings.blobs += [f"{blob.name}: {m}" for m in members] or [blob.name]
    return findings


@pytest.fixture(scope="module")
def secret_build(
    offline_target: Target, buildah: Buildah
) -> Iterator[tuple[BuildResult, RealRunner]]:
    """The offline target built with the secret; the units only it uses are removed after."""
    config = offline_target.config
    builder = config.builder.model_copy(update={"env": {**config.builder.env, NAME: SECRET}})
    with_secret = Target(
        offline_target.name, offline_target.path, config.model_copy(update={"builder": builder})
    )
    target = retarget(with_secret, "secrets")
    runner = RealRunner(buildah.runner)
    tools = Tools(runner, Buildah(runner, isolation=buildah.isolation))
    result = run_build(target, tools, verify=True)
    yield result, runner
    # The secret is an input of the rock-tree and runtime units: nobody else will use them.
    for kind in result.built:
        if kind != "builder":
            name = result.units[kind]
            buildah.rmi_quietly(f"{UNIT_REPOSITORY}/{kind}:{name.removeprefix(kind + '-')}")


def test_the_secret_reached_the_rock_install(
    secret_build: tuple[BuildResult, RealRunner],
) -> None:
    result, runner = secret_build
    handed = [c for c in runner.calls if c[:2] == ["buildah", "run"] and f"{NAME}={SECRET}" in c]
    assert handed, "the build never passed the secret to a step: the test below proves nothing"
    assert "rock-tree" in result.built
    assert result.verification is not None and result.verification.passed


def test_the_runtime_image_holds_no_trace_of_the_secret(
    secret_build: tuple[BuildResult, RealRunner], buildah: Buildah, tmp_path: Path
) -> None:
    result, _ = secret_build
    findings = search_image(buildah, result.image_ref, SECRET, tmp_path / "copy")
    assert not findings.config, f"secret in the runtime image's config at {findings.config}"
    assert not findings.blobs, f"secret in the runtime image's blobs: {findings.blobs}"


def test_the_search_finds_a_planted_secret(
    derive: Callable[..., str], buildah: Buildah, tmp_path: Path
) -> None:
    planted = f"qjt-planted-{uuid.uuid4().hex}"

    def plant(root: Path, container: str) -> None:
        (root / "etc" / "qjt-planted.conf").write_text(f"token = {planted}\n")
        buildah.runner.run(["buildah", "config", "--env", f"{NAME}={planted}", container])

    image = derive("planted-secret", plant)
    findings = search_image(buildah, image, planted, tmp_path / "copy")
    assert any(".Env[" in path for path in findings.config), findings.config
    assert any(hit.endswith("etc/qjt-planted.conf") for hit in findings.blobs), findings.blobs


def test_the_blob_search_reads_gzip_layers_and_chunk_boundaries(tmp_path: Path) -> None:
    needle = b"qjt-needle"
    payload = b"x" * (CHUNK - 4) + needle + b"y" * 10
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        info = tarfile.TarInfo("etc/deep/file")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    blob = tmp_path / "blob"
    blob.write_bytes(gzip.compress(layer.getvalue()))
    with open_blob(blob) as stream:
        assert stream_contains(stream, needle)
    assert members_containing(blob, needle) == ["etc/deep/file"]
    assert json.dumps(list(json_paths({"a": [{"b": "..qjt-needle.."}]}, "qjt-needle"))) == (
        '[".a[0].b"]'
    )
