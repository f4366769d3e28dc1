"""A plain non-root user's `invoke` re-executes itself inside `buildah unshare`.

The whole integration suite also runs rootless (tests/rootless_suite.py, from `./run.sh test`),
but already inside `buildah unshare`, where the CLI has nothing to re-execute. This runs from
the root session as the user, outside any user namespace, with a task that must mount: verify
of the base image, which has no rock, so the checks that read the mounted filesystem run and
`artifacts` fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import rootless_suite as suite

pytestmark = pytest.mark.rootless


@pytest.fixture(scope="module")
def project_copy() -> Iterator[Path]:
    yield suite.prepare()
    suite.as_user(["rm", "-rf", str(suite.SUITE_DIR)], check=False)


def test_verify_as_a_plain_user_mounts_inside_buildah_unshare(project_copy: Path) -> None:
    assert "_CONTAINERS_USERNS_CONFIGURED" not in suite.USER_ENV
    result = suite.as_user(
        [f"{suite.VENV}/bin/invoke", "verify", "--image", suite.BASE], cwd=project_copy, check=False
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "no-rust      PASS    scanned" in result.stdout, result.stdout + result.stderr
    assert "artifacts    FAIL" in result.stdout
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(f"ERROR verification of {suite.BASE} failed: ")
    )
    assert suite.as_user(["buildah", "containers", "--quiet"]).stdout.strip() == ""
    assert suite.as_user(["buildah", "unshare", "buildah", "mount"]).stdout.strip() == ""
