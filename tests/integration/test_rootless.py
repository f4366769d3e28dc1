"""The same build as a non-root user with subuid/subgid: rootless storage, `buildah unshare`.

Runs as root only to set the stage: it makes the user, gives it a venv and a copy of the
project it can read, and hands it the base image (debootstrap needs real root, so the base is
made once as root and moved with `buildah push`/`pull` through an oci-archive).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from qjson_tasks.pipeline import BuildResult
from tests.conftest import PROJECT_DIR
from tests.integration.conftest import SUFFIX

pytestmark = pytest.mark.rootless

USER = "qjt-rootless"
HOME = Path("/home") / USER
VENV = HOME / "qjt-venv"
BASE = "localhost/qjson-tasks/bookworm-luajit:latest"
IMAGE = "localhost/qjson-tasks/offline-runtime"
TAG = f"rootless-{SUFFIX}"
COPY_IGNORE = (".venv", ".git", "target", "__pycache__", ".pytest_cache", ".ruff_cache")


def as_user(command: str, cwd: Path = HOME, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {"HOME": str(HOME), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    return subprocess.run(
        ["runuser", "-u", USER, "--", "sh", "-c", command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=check,
    )


def ensure_user() -> None:
    if subprocess.run(["id", USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--create-home", USER], check=True)
    for path in ("/etc/subuid", "/etc/subgid"):
        if f"{USER}:" not in Path(path).read_text():
            subprocess.run(
                ["usermod", "--add-subuids", "200000-265535", "--add-subgids", "200000-265535",
                 USER],
                check=True,
            )  # fmt: skip


def ensure_venv() -> None:
    requirements = (PROJECT_DIR / "requirements.txt").read_text()
    stamp = VENV / "requirements.txt"
    if stamp.exists() and stamp.read_text() == requirements:
        return
    # The user can't reach a venv under /root; it gets its own from the system Python.
    as_user(f"rm -rf {VENV} && /usr/bin/python3 -m venv {VENV}")
    shutil.copy(PROJECT_DIR / "requirements.txt", "/tmp/qjt-rootless-requirements.txt")
    as_user(f"{VENV}/bin/pip install -q -r /tmp/qjt-rootless-requirements.txt")
    as_user(f"cp /tmp/qjt-rootless-requirements.txt {stamp}")


def hand_over_base_image() -> None:
    if as_user(f"buildah inspect --type image {BASE}", check=False).returncode == 0:
        return
    with tempfile.TemporaryDirectory(prefix="qjt-base-") as tmp:
        os.chmod(tmp, 0o755)
        archive = Path(tmp) / "base.tar"
        subprocess.run(
            ["buildah", "push", "--quiet", BASE, f"oci-archive:{archive}:{BASE}"], check=True
        )
        os.chmod(archive, 0o644)
        as_user(f"buildah pull --quiet oci-archive:{archive}")


@pytest.fixture(scope="module")
def project_copy(built: BuildResult) -> Iterator[Path]:
    """A copy of the project the user can read (the checkout may live under /root)."""
    ensure_user()
    ensure_venv()
    hand_over_base_image()
    tmp = Path(tempfile.mkdtemp(prefix="qjt-rootless-"))
    copy = tmp / "project"
    shutil.copytree(PROJECT_DIR, copy, ignore=shutil.ignore_patterns(*COPY_IGNORE))
    subprocess.run(["chmod", "-R", "a+rX", str(tmp)], check=True)
    yield copy
    as_user(f"buildah rmi {IMAGE}:{TAG}", check=False)
    shutil.rmtree(tmp)


@pytest.fixture(scope="module")
def rootless_build(project_copy: Path) -> subprocess.CompletedProcess[str]:
    return as_user(
        f"{VENV}/bin/invoke build-runtime --tag {TAG} --keep-on-failure",
        cwd=project_copy,
        check=False,
    )


def test_rootless_build_ends_with_a_verified_image(
    rootless_build: subprocess.CompletedProcess[str],
) -> None:
    assert rootless_build.returncode == 0, rootless_build.stderr[-3000:]
    assert f"built {IMAGE}:{TAG}" in rootless_build.stdout
    assert "verified" in rootless_build.stdout
    assert "smoke        PASS" in rootless_build.stderr


def test_rootless_verify_passes_as_the_user(
    rootless_build: subprocess.CompletedProcess[str], project_copy: Path
) -> None:
    verify = as_user(
        f"{VENV}/bin/invoke verify --image {IMAGE}:{TAG}", cwd=project_copy, check=False
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "FAIL" not in verify.stdout


def test_rootless_run_leaves_no_containers_or_mounts(
    rootless_build: subprocess.CompletedProcess[str],
) -> None:
    assert as_user("buildah containers --quiet").stdout.strip() == ""
    assert as_user("buildah unshare cat /proc/self/mountinfo").stdout.count("/vfs/") == 0
