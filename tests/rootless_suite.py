"""Run the integration suite again as a non-root user, inside `buildah unshare`.

    python -m tests.rootless_suite [pytest args]    (as root; `./run.sh test` runs it)

Root only sets the stage: a user with subordinate ids (USER), a venv of its own (the host's
Python under /root is not readable by others), a copy of the project it owns, and the base
images of the offline and gateway targets handed over from root's storage (debootstrap
can't run rootless) with `buildah push IMAGE oci-archive:FILE` and
`buildah pull oci-archive:FILE`. Then the user runs
pytest inside `buildah unshare` with QJT_ROOTLESS_SUITE=1: its own storage, chroot isolation,
mounts inside the user namespace.

The user's storage uses the kernel's overlay driver (rootless overlay needs no
fuse-overlayfs on these kernels), written to its ~/.config/containers/storage.conf:
buildah's rootless default, vfs, copies whole layers on every container and commit, which
made this run three times slower.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from qjson_tasks.config.platforms import parse_platform
from qjson_tasks.host.emulation import emulation_problem
from qjson_tasks.host.rootless import user_tmpdir

PROJECT_DIR = Path(__file__).resolve().parent.parent
USER = "qjt-rootless"
HOME = Path("/home") / USER
VENV = HOME / "qjt-venv"
SUITE_DIR = HOME / "qjt-suite"
BASE = "localhost/qjson-tasks/bookworm-luajit:latest"
# The base images the suite builds on, and the target whose `invoke base-image` makes each.
BASES = {BASE: "offline", "localhost/qjson-tasks/bookworm-gateway:latest": "gateway"}
# Another platform's base (test_platforms.py), made by `invoke base-image --platform` as root,
# only where this machine emulates that platform (the test skips, saying why, elsewhere).
PLATFORM_BASES = {f"{BASE}-linux-arm64": ("offline", "linux/arm64")}
STORAGE_CONF = HOME / ".config" / "containers" / "storage.conf"
STORAGE_DIR = HOME / ".local" / "share" / "containers" / "storage"
# No mount_program: the kernel mounts overlay inside the user namespace itself.
STORAGE = '[storage]\ndriver = "overlay"\n'
COPY_IGNORE = (".venv", ".git", "target", "__pycache__", ".pytest_cache", ".ruff_cache")
USER_ENV = {
    "HOME": str(HOME),
    "USER": USER,
    "LOGNAME": USER,
    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}


def log(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def as_user(
    argv: Sequence[str],
    cwd: Path = HOME,
    check: bool = True,
    capture: bool = True,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run argv as USER with a clean environment (no root's HOME, PATH or venv)."""
    return subprocess.run(
        ["runuser", "-u", USER, "--", "env", "-i", *(f"{k}={v}" for k, v in USER_ENV.items()),
         *argv],
        cwd=cwd, env=USER_ENV, capture_output=capture, text=True, check=check, input=input,
    )  # fmt: skip


def ensure_user() -> None:
    if subprocess.run(["id", USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--create-home", USER], check=True)
    for path in ("/etc/subuid", "/etc/subgid"):
        lines = Path(path).read_text().splitlines()
        if not any(line.startswith(f"{USER}:") for line in lines):
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
    log(f"creating {VENV} for {USER}")
    as_user(["rm", "-rf", str(VENV)])
    as_user(["/usr/bin/python3", "-m", "venv", str(VENV)])
    with tempfile.TemporaryDirectory(prefix="qjt-req-") as tmp:
        os.chmod(tmp, 0o755)
        readable = Path(tmp) / "requirements.txt"
        readable.write_text(requirements)
        readable.chmod(0o644)
        as_user([f"{VENV}/bin/pip", "install", "-q", "-r", str(readable)])
        as_user(["cp", str(readable), str(stamp)])


def ensure_storage() -> None:
    """The user's storage on the overlay driver. A storage made with another driver can't be
    switched in place, so that one (the test user's own, nothing else) is removed first."""
    if STORAGE_CONF.is_file() and STORAGE_CONF.read_text() == STORAGE:
        return
    log(f"{USER}'s container storage: overlay driver ({STORAGE_CONF})")
    # Its files belong to the user's subordinate ids: remove them inside its namespace.
    as_user(["buildah", "unshare", "rm", "-rf", str(STORAGE_DIR)])
    as_user(["mkdir", "-p", str(STORAGE_CONF.parent)])
    as_user(["sh", "-c", f"cat > {STORAGE_CONF}"], input=STORAGE)


def image_id(ref: str, user: bool) -> str | None:
    argv = ["buildah", "inspect", "--type", "image", "--format", "{{.FromImageID}}", ref]
    result = (
        as_user(argv, check=False)
        if user
        else subprocess.run(argv, capture_output=True, text=True, check=False)
    )
    return result.stdout.strip() if result.returncode == 0 else None


def hand_over_base_image(base: str, target: str, platform: str | None = None) -> None:
    """Make the base as root if missing, and give the user the same image (same ID)."""
    mine = image_id(base, user=False)
    if mine is None:
        log(f"making {base} as root (debootstrap)")
        extra = ["--platform", platform] if platform else []
        subprocess.run(
            [sys.executable, "-m", "invoke", "base-image", "--target", target, *extra],
            cwd=PROJECT_DIR,
            check=True,
        )
        mine = image_id(base, user=False)
    theirs = image_id(base, user=True)
    if theirs == mine:
        return
    log(f"handing {base} over to {USER} (oci-archive)")
    with tempfile.TemporaryDirectory(prefix="qjt-base-") as tmp:
        os.chmod(tmp, 0o755)
        archive = Path(tmp) / "base.tar"
        subprocess.run(
            ["buildah", "push", "--quiet", base, f"oci-archive:{archive}:{base}"], check=True
        )
        archive.chmod(0o644)
        as_user(["buildah", "pull", "--quiet", f"oci-archive:{archive}"])
    if theirs:  # the user's previous base, now without a name
        as_user(["buildah", "rmi", theirs], check=False)


def copy_project() -> Path:
    """A fresh copy of the project owned by the user (the checkout may live under /root)."""
    as_user(["rm", "-rf", str(SUITE_DIR)])
    as_user(["mkdir", "-p", str(SUITE_DIR)])
    copy = SUITE_DIR / "project"
    shutil.copytree(PROJECT_DIR, copy, ignore=shutil.ignore_patterns(*COPY_IGNORE))
    subprocess.run(["chown", "-R", f"{USER}:{USER}", str(copy)], check=True)
    return copy


def prepare() -> Path:
    """Everything the user needs; returns the project copy to run in."""
    if os.geteuid() != 0:
        raise SystemExit("tests.rootless_suite sets up a user: run it as root")
    ensure_user()
    ensure_storage()
    ensure_venv()
    for base, target in BASES.items():
        hand_over_base_image(base, target)
    for base, (target, platform) in PLATFORM_BASES.items():
        if emulation_problem(parse_platform(platform)) is None:
            hand_over_base_image(base, target, platform)
    return copy_project()


def main(args: Sequence[str]) -> int:
    copy = prepare()
    # Unit tests don't change with the user: the rootless run is the integration suite.
    paths = [a for a in args if a.startswith("tests")]
    pytest_args = list(args) if paths else ["tests/integration", *args]
    log(f"integration suite as {USER} inside buildah unshare: pytest {' '.join(pytest_args)}")
    # What the CLI's re-exec gives a user's run (see user_tmpdir): not root's buildah cache.
    tmpdir = user_tmpdir(pwd.getpwnam(USER).pw_uid)
    as_user(["mkdir", "-p", "-m", "700", str(tmpdir)])
    started = time.monotonic()
    try:
        result = as_user(
            ["env", "QJT_ROOTLESS_SUITE=1", f"TMPDIR={tmpdir}", "buildah", "unshare", "--",
             f"{VENV}/bin/python", "-m", "pytest", *pytest_args],
            cwd=copy, check=False, capture=False,
        )  # fmt: skip
    finally:
        as_user(["rm", "-rf", str(SUITE_DIR)], check=False)
    log(f"rootless suite: exit {result.returncode} after {time.monotonic() - started:.0f} s")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
