"""verify.check_rocks on a fake mounted image: a temp directory holding the tree manifest
luarocks keeps under <prefix>/lib/luarocks/rocks-5.1/manifest."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from qjson_tasks.config.load import find_target
from qjson_tasks.config.model import Target
from qjson_tasks.verify.checks import check_rocks
from qjson_tasks.verify.report import CheckResult
from tests.unit.rockfiles import PROJECT_DIR

PREFIX = PurePosixPath("/usr/local")
MANIFEST = PREFIX / "lib" / "luarocks" / "rocks-5.1" / "manifest"
LEFTOVER = "is installed but no rock needs it at runtime (a build-only dependency?)"


@pytest.fixture
def multi() -> Target:
    """qjson-demo '==0.1.0' and cdemo '~> 1.0', prefix /usr/local."""
    target = find_target("multi", PROJECT_DIR / "config")
    assert PurePosixPath(target.config.runtime.prefix) == PREFIX
    return target


def tree_manifest(rocks: dict[str, tuple[str, list[str]]]) -> str:
    """A tree manifest as luarocks writes it: rock name -> (version, names it depends on)."""
    repository = ",\n".join(
        f'   ["{name}"] = {{ ["{version}"] = {{ {{ arch = "installed" }} }} }}'
        for name, (version, _) in rocks.items()
    )
    dependencies = ",\n".join(
        f'   ["{name}"] = {{ ["{version}"] = {{ '
        + ", ".join(f'{{ name = "{dep}", constraints = {{}} }}' for dep in ["lua", *deps])
        + " } }"
        for name, (version, deps) in rocks.items()
    )
    return (
        f"commands = {{}}\nmodules = {{}}\nrepository = {{\n{repository}\n}}\n"
        f"dependencies = {{\n{dependencies}\n}}\n"
    )


def image_root(tmp_path: Path, rocks: dict[str, tuple[str, list[str]]]) -> Path:
    root = tmp_path / "mnt"
    manifest = root / str(MANIFEST).lstrip("/")
    manifest.parent.mkdir(parents=True)
    manifest.write_text(tree_manifest(rocks), encoding="utf-8")
    return root


def checked(tmp_path: Path, target: Target, rocks: dict[str, tuple[str, list[str]]]) -> CheckResult:
    result = check_rocks(image_root(tmp_path, rocks), PREFIX, target)
    assert result.name == "rocks"
    return result


def test_passes_when_every_rock_is_installed_and_nothing_else(
    tmp_path: Path, multi: Target
) -> None:
    result = checked(tmp_path, multi, {"qjson-demo": ("0.1.0-1", []), "cdemo": ("1.0-1", [])})
    assert result.passed, result
    assert result.findings == ()
    assert result.detail == "2 rocks, all needed at runtime: cdemo 1.0-1, qjson-demo 0.1.0-1"


def test_passes_with_a_runtime_dependency_installed(tmp_path: Path, multi: Target) -> None:
    rocks = {
        "qjson-demo": ("0.1.0-1", []),
        "cdemo": ("1.0-1", ["cjson"]),
        "cjson": ("2.1.0-1", []),
    }
    result = checked(tmp_path, multi, rocks)
    assert result.passed, result
    assert result.detail.startswith("3 rocks, all needed at runtime: cdemo 1.0-1, cjson 2.1.0-1")


def test_fails_naming_a_missing_rock(tmp_path: Path, multi: Target) -> None:
    result = checked(tmp_path, multi, {"qjson-demo": ("0.1.0-1", [])})
    assert not result.passed
    assert result.findings == ("cdemo is not installed",)
    assert result.detail == "cdemo is not installed"


def test_fails_naming_a_version_outside_the_requirement(tmp_path: Path, multi: Target) -> None:
    result = checked(tmp_path, multi, {"qjson-demo": ("0.1.0-1", []), "cdemo": ("1.1-1", [])})
    assert not result.passed
    assert result.findings == ("cdemo 1.1-1 does not satisfy '~> 1.0'",)


def test_fails_on_an_unreadable_version(tmp_path: Path, multi: Target) -> None:
    result = checked(tmp_path, multi, {"qjson-demo": ("scm-1", []), "cdemo": ("1.0-1", [])})
    assert result.findings == ("qjson-demo scm-1 does not satisfy '==0.1.0'",)


def test_fails_naming_a_leftover_build_only_rock(tmp_path: Path, multi: Target) -> None:
    rocks = {
        "qjson-demo": ("0.1.0-1", []),
        "cdemo": ("1.0-1", []),
        "qjt-buildtool": ("1.0-1", []),
    }
    result = checked(tmp_path, multi, rocks)
    assert not result.passed
    assert result.findings == (f"qjt-buildtool 1.0-1 {LEFTOVER}",)


def test_every_fault_is_listed(tmp_path: Path, multi: Target) -> None:
    rocks = {"qjson-demo": ("0.2.0-1", []), "qjt-buildtool": ("1.0-1", [])}
    result = checked(tmp_path, multi, rocks)
    assert result.findings == (
        "qjson-demo 0.2.0-1 does not satisfy '==0.1.0'",
        "cdemo is not installed",
        f"qjt-buildtool 1.0-1 {LEFTOVER}",
    )
    assert result.detail == "; ".join(result.findings)


def test_fails_without_a_tree_manifest(tmp_path: Path, multi: Target) -> None:
    (tmp_path / "mnt" / "usr" / "local").mkdir(parents=True)
    result = check_rocks(tmp_path / "mnt", PREFIX, multi)
    assert (result.passed, result.detail) == (False, f"no luarocks manifest at {MANIFEST}")


def test_fails_on_a_runtime_dependency_that_is_not_installed(tmp_path: Path, multi: Target) -> None:
    rocks = {"qjson-demo": ("0.1.0-1", []), "cdemo": ("1.0-1", ["cjson"])}
    result = checked(tmp_path, multi, rocks)
    assert not result.passed
    assert result.detail == (
        f"{MANIFEST}: cjson (needed by cdemo 1.0-1) is not installed (installed: cdemo, qjson-demo)"
    )


def test_a_manifest_symlinked_inside_the_image_is_read_in_the_image(
    tmp_path: Path, multi: Target
) -> None:
    """An absolute symlink in the image points into the image, not at the host."""
    root = image_root(tmp_path, {"qjson-demo": ("0.1.0-1", []), "cdemo": ("1.0-1", [])})
    real = root / "usr" / "local" / "lib" / "luarocks"
    moved = root / "opt" / "luarocks"
    moved.parent.mkdir(parents=True)
    real.rename(moved)
    real.symlink_to("/opt/luarocks")
    assert check_rocks(root, PREFIX, multi).passed
