from pathlib import Path, PurePosixPath

import pytest

from qjson_tasks.verify.rootfs import MAX_SYMLINKS, image_path, resolve_in_root


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A merged-/usr image: /lib -> usr/lib, with a library behind symlinks."""
    root = tmp_path / "root"
    libdir = root / "usr" / "lib" / "x86_64-linux-gnu"
    libdir.mkdir(parents=True)
    (libdir / "libc-real.so").write_text("libc")
    (root / "lib").symlink_to("usr/lib")
    # Absolute and through /lib: on the host this would point outside the root.
    (libdir / "libc.so.6").symlink_to("/lib/x86_64-linux-gnu/libc-real.so")
    (libdir / "libc.so").symlink_to("libc.so.6")
    (root / "etc").mkdir()
    (root / "etc" / "os-release").write_text("ID=test\n")
    return root


def test_plain_file(root: Path) -> None:
    assert resolve_in_root(root, "/etc/os-release") == root / "etc" / "os-release"


def test_root_itself(root: Path) -> None:
    assert resolve_in_root(root, "/") == root


def test_absolute_symlink_is_relative_to_root(root: Path) -> None:
    expected = root / "usr" / "lib" / "x86_64-linux-gnu" / "libc-real.so"
    assert resolve_in_root(root, "/lib/x86_64-linux-gnu/libc.so.6") == expected
    assert resolve_in_root(root, PurePosixPath("/usr/lib/x86_64-linux-gnu/libc.so")) == expected


def test_relative_symlink_to_directory(root: Path) -> None:
    assert resolve_in_root(root, "/lib") == root / "usr" / "lib"


def test_missing_and_dangling(root: Path) -> None:
    (root / "dangling").symlink_to("/nowhere/at/all")
    assert resolve_in_root(root, "/etc/missing") is None
    assert resolve_in_root(root, "/dangling") is None


def test_file_used_as_directory(root: Path) -> None:
    assert resolve_in_root(root, "/etc/os-release/x") is None


def test_dotdot_cannot_escape_root(root: Path, tmp_path: Path) -> None:
    (tmp_path / "outside").write_text("host file")
    assert resolve_in_root(root, "/../../outside") is None
    assert resolve_in_root(root, "/etc/../../etc/os-release") == root / "etc" / "os-release"


def test_symlink_with_dotdot_stays_in_root(root: Path, tmp_path: Path) -> None:
    (tmp_path / "outside").write_text("host file")
    (root / "etc" / "escape").symlink_to("../../../../outside")
    (root / "etc" / "up").symlink_to("../../../etc/os-release")
    assert resolve_in_root(root, "/etc/escape") is None
    assert resolve_in_root(root, "/etc/up") == root / "etc" / "os-release"


def test_loops(root: Path) -> None:
    (root / "a").symlink_to("b")
    (root / "b").symlink_to("/a")
    (root / "self").symlink_to("self")
    assert resolve_in_root(root, "/a") is None
    assert resolve_in_root(root, "/self/x") is None


def test_long_chain_within_limit(root: Path) -> None:
    for index in range(MAX_SYMLINKS - 1):
        (root / f"link{index}").symlink_to(f"link{index + 1}")
    (root / f"link{MAX_SYMLINKS - 1}").symlink_to("/etc/os-release")
    assert resolve_in_root(root, "/link0") == root / "etc" / "os-release"
    (root / "one-more").symlink_to("/link0")
    assert resolve_in_root(root, "/one-more") is None


def test_relative_path_rejected(root: Path) -> None:
    with pytest.raises(ValueError, match="absolute"):
        resolve_in_root(root, "etc/os-release")


def test_image_path(root: Path) -> None:
    host = resolve_in_root(root, "/lib/x86_64-linux-gnu/libc.so.6")
    assert host is not None
    assert image_path(root, host) == PurePosixPath("/usr/lib/x86_64-linux-gnu/libc-real.so")
    assert image_path(root, root) == PurePosixPath("/")
    with pytest.raises(ValueError):
        image_path(root, root.parent / "elsewhere")
