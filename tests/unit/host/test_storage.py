"""A temporary storage: how the facade addresses it, and that it goes in every case."""

from __future__ import annotations

from pathlib import Path

import pytest

from qjson_tasks.errors import ToolError
from qjson_tasks.host import storage
from qjson_tasks.host.buildah import Buildah
from qjson_tasks.host.storage import STORAGE_PREFIX, Storage, temporary_storage
from tests.unit.fake_registry import RegistryFake


def test_another_storage_is_addressed_with_buildahs_global_flags(tmp_path: Path) -> None:
    runner = RegistryFake(tmp_path)
    other = Buildah(runner).with_storage(Storage(Path("/s/root"), Path("/s/run"), "vfs"))
    other.image_id("localhost/x:1")
    assert runner.calls[-1][:7] == [
        "buildah", "--root", "/s/root", "--runroot", "/s/run", "--storage-driver", "vfs",
    ]  # fmt: skip
    assert other.storage is not None
    assert other.storage.transport("localhost/x:1") == (
        "containers-storage:[vfs@/s/root+/s/run]localhost/x:1"
    )


def test_the_default_storage_is_never_emptied(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="refusing to empty buildah's default storage"):
        Buildah(RegistryFake(tmp_path)).empty_storage_quietly()


@pytest.mark.parametrize("error", [RuntimeError("a failed check"), KeyboardInterrupt()])
def test_the_storage_is_emptied_unmounted_and_removed_on_the_way_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    runner = RegistryFake(tmp_path / "mnt")
    left_mounted: list[str] = []
    monkeypatch.setattr(storage, "mounts_under", lambda directory: left_mounted)
    with pytest.raises(type(error)), temporary_storage(Buildah(runner), "run00001") as other:
        assert other.storage is not None
        directory = other.storage.root.parent
        assert directory.name.startswith(f"{STORAGE_PREFIX}run00001-")
        other.storage.root.mkdir()
        left_mounted.append(str(other.storage.root / "overlay"))
        raise error
    removed = [call[7:] for call in runner.calls if call[1:2] == ["--root"]]
    assert removed == [["rm", "--all"], ["rmi", "--all", "--force"]]
    assert ["umount", str(directory / "root" / "overlay")] in runner.calls
    assert list((tmp_path / "tmp").iterdir()) == []


def test_mount_points_are_read_from_mountinfo_deepest_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [
        f"36 35 0:1 / {tmp_path}/root rw - tmpfs none rw",
        f"37 36 0:2 / {tmp_path}/root/overlay/a\\040b/merged rw - overlay overlay rw",
        "38 35 0:3 / /elsewhere rw - tmpfs none rw",
    ]
    info = tmp_path / "mountinfo"
    info.write_text("\n".join(lines) + "\n")
    real_path = Path

    def fake_path(text: str) -> Path:
        return info if text == "/proc/self/mountinfo" else real_path(text)

    monkeypatch.setattr(storage, "Path", fake_path)
    assert storage.mounts_under(tmp_path) == [
        f"{tmp_path}/root/overlay/a b/merged",
        f"{tmp_path}/root",
    ]


class EnvRecorder:
    """Records each command with the TMPDIR it was given (None: the caller's own)."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], str | None]] = []

    def run(self, argv, *, input=None, env=None, stream=False, cwd=None) -> str:  # type: ignore[no-untyped-def]
        self.calls.append((list(argv), (env or {}).get("TMPDIR")))
        return "overlay\n" if "info" in argv else ""


def test_commands_on_a_temporary_storage_keep_their_temporary_files_inside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    runner = EnvRecorder()
    with temporary_storage(Buildah(runner), "c04cc4c9") as other:
        assert other.storage is not None and other.storage.tmpdir is not None
        directory = other.storage.tmpdir.parent
        other.tag("a", "b")
    assert directory.name.startswith(f"{STORAGE_PREFIX}c04cc4c9-")
    assert (["buildah", "info", "--format", "{{.store.GraphDriverName}}"], None) in runner.calls
    tag = next(call for call in runner.calls if "tag" in call[0])
    assert tag[1] == str(directory / "tmp")
    assert not directory.exists()


def test_a_push_keeps_its_temporary_files_in_the_run_scratch_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    runner = EnvRecorder()
    with storage.scratch_dir("c04cc4c9") as scratch:
        Buildah(runner).push("image-id", "docker://127.0.0.1:5000/q/r:1", tmpdir=scratch)
        assert scratch.parent == tmp_path and scratch.name.startswith(f"{STORAGE_PREFIX}c04cc4c9-")
    assert runner.calls[-1][1] == str(scratch)
    assert not scratch.exists()


def test_the_scratch_directory_goes_on_errors_and_ctrl_c(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    for error in (RuntimeError("push failed"), KeyboardInterrupt()):
        with pytest.raises(type(error)), storage.scratch_dir("c04cc4c9") as scratch:
            (scratch / "714515717").write_bytes(b"a blob copy")
            raise error
        assert not scratch.exists()


def test_runner_environment_makes_the_storage_another_processs_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qjson_tasks.host.storage import runner_environment

    storage = Storage(tmp_path / "root", tmp_path / "runroot", "overlay")
    monkeypatch.delenv("_CONTAINERS_ROOTLESS_UID", raising=False)
    env = runner_environment(storage, tmp_path)
    conf = (tmp_path / "storage.conf").read_text()
    assert env["CONTAINERS_STORAGE_CONF"] == str(tmp_path / "storage.conf")
    assert f'graphroot = "{tmp_path}/root"' in conf
    assert f'rootless_storage_path = "{tmp_path}/root"' in conf  # what rootless buildah reads
    assert 'driver = "overlay"' in conf
    monkeypatch.setenv("_CONTAINERS_ROOTLESS_UID", "1001")  # inside `buildah unshare`
    rootless = runner_environment(storage, tmp_path)
    assert rootless["XDG_RUNTIME_DIR"] == str(tmp_path / "xdg-runtime")
    assert (tmp_path / "xdg-runtime").stat().st_mode & 0o777 == 0o700
