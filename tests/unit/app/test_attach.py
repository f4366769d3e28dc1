"""The SBOM and the statement pushed beside an image: their cosign-style tags, what is pushed
(exact argv), what is skipped when a document is not here, and the cleanup."""

from __future__ import annotations

from pathlib import Path

from qjson_tasks.app.attach import attachment_tag, push_attachments
from qjson_tasks.app.tools import Tools
from qjson_tasks.build.labels import SBOM_LABEL
from qjson_tasks.config.remote import parse_remote
from qjson_tasks.host.buildah import Buildah
from qjson_tasks.host.registry import RemoteAccess
from qjson_tasks.sbom.store import provenance_path, store
from tests.unit.fakes import FakeRunner, is_call

IMAGE_ID = "a" * 64
DIGEST = "sha256:" + "b" * 64
PUSHED = parse_remote("--to", "127.0.0.1:5000/qjt/offline:1.0").by_digest(DIGEST)


def test_the_tags_are_named_by_the_manifest_digest() -> None:
    assert attachment_tag(PUSHED, "sbom") == f"127.0.0.1:5000/qjt/offline:sha256-{'b' * 64}.sbom"


def tools_for(runner: FakeRunner) -> Tools:
    return Tools(runner, Buildah(runner), run_id="r1")


def test_both_documents_are_pushed_and_nothing_is_left(tmp_path: Path, sbom_dir: Path) -> None:
    sha256, _ = store(b"{}\n")
    provenance_path(IMAGE_ID).write_bytes(b"{}\n")
    runner = FakeRunner(tmp_path, images={"img": IMAGE_ID})
    runner.image_labels[IMAGE_ID] = {SBOM_LABEL: sha256}
    tags = push_attachments(tools_for(runner), PUSHED, RemoteAccess(), IMAGE_ID)
    assert tags == (attachment_tag(PUSHED, "sbom"), attachment_tag(PUSHED, "att"))
    pushes = [c for c in runner.calls if is_call("buildah", "push")(c)]
    assert [c[-1] for c in pushes] == [f"docker://{tag}" for tag in tags]
    copies = [c for c in runner.calls if is_call("buildah", "copy")(c)]
    assert [c[-1] for c in copies] == ["/sbom.cdx.json", "/provenance.intoto.json"]
    assert runner.left_behind() == (set(), set())
    assert not any("attachment" in name for name in runner.images)


def test_a_document_not_here_is_skipped(tmp_path: Path, sbom_dir: Path) -> None:
    runner = FakeRunner(tmp_path, images={"img": IMAGE_ID})
    assert push_attachments(tools_for(runner), PUSHED, RemoteAccess(), IMAGE_ID) == ()
    assert not any(is_call("buildah", "push")(c) for c in runner.calls)
