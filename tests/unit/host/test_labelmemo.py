"""The label memo: by image ID only, never in the way when it can't be read or written."""

from __future__ import annotations

from pathlib import Path

import pytest

from qjson_tasks.host import labelmemo

IMAGE_ID = "ab" * 32
LABELS = {"org.qjson-tasks.rock.version": "0.1.0-1", "org.qjson-tasks.tree.bytes": "346876"}


def test_labels_remembered_for_an_id_are_recalled(tmp_path: Path) -> None:
    labelmemo.remember(IMAGE_ID, LABELS, tmp_path)
    assert labelmemo.recall(IMAGE_ID, tmp_path) == LABELS
    assert labelmemo.recall("cd" * 32, tmp_path) is None
    assert [p.name for p in tmp_path.iterdir()] == [f"{IMAGE_ID}.json"]  # no temporary left


@pytest.mark.parametrize("key", ["localhost/qjson-tasks/offline-runtime:latest", "ab" * 6, ""])
def test_only_full_image_ids_are_remembered(tmp_path: Path, key: str) -> None:
    # A name can move to another image; an ID is the digest of the config, labels included.
    labelmemo.remember(key, LABELS, tmp_path)
    assert labelmemo.recall(key, tmp_path) is None
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"a": 1}'])
def test_an_unreadable_entry_counts_as_none(tmp_path: Path, text: str) -> None:
    (tmp_path / f"{IMAGE_ID}.json").write_text(text)
    assert labelmemo.recall(IMAGE_ID, tmp_path) is None


def test_a_memo_that_cannot_be_written_is_no_error(tmp_path: Path) -> None:
    place = tmp_path / "memo"
    place.write_text("a file where the directory should be\n")
    labelmemo.remember(IMAGE_ID, LABELS, place)
    assert labelmemo.recall(IMAGE_ID, place) is None


def test_a_memo_directory_someone_else_could_write_is_not_used(tmp_path: Path) -> None:
    place = tmp_path / "memo"
    place.mkdir()
    place.chmod(0o777)
    labelmemo.remember(IMAGE_ID, LABELS, place)
    assert list(place.iterdir()) == []


def test_entries_of_images_that_are_gone_are_dropped(tmp_path: Path) -> None:
    gone = "cd" * 32
    labelmemo.remember(IMAGE_ID, LABELS, tmp_path)
    labelmemo.remember(gone, LABELS, tmp_path)
    dropped = labelmemo.forget_all_but([IMAGE_ID], tmp_path)
    assert dropped == [tmp_path / f"{gone}.json"]
    assert labelmemo.recall(IMAGE_ID, tmp_path) == LABELS
    assert labelmemo.forget_all_but([], tmp_path / "missing") == []


def test_the_memo_lives_next_to_the_users_lock_directory() -> None:
    assert labelmemo.memo_dir().parent == Path("/var/tmp")
    assert labelmemo.memo_dir().name.startswith("qjson-tasks-labels-")
