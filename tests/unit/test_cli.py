"""The CLI layer: user mistakes are one ERROR line and exit 1, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from qjson_tasks.errors import ToolError
from qjson_tasks.host.rootless import check_subids
from tests.conftest import PROJECT_DIR


def invoke(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=False,
    )


# The table of bad inputs runs in-process: tests/unit/test_bad_input.py. These go through the
# real `python -m invoke` entry point (tasks.py found and loaded from the project directory).
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("show", "--target", "nope"), "ERROR unknown target 'nope' (known targets in"),
        (("build-runtime", "--base-image", "Not An Image"), "ERROR --base-image: 'Not An Image'"),
    ],
)
def test_bad_input_is_one_error_line(args: tuple[str, ...], expected: str) -> None:
    result = invoke(*args)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr


def test_loading_the_tasks_leaves_pydantic_and_the_use_cases_for_later() -> None:
    # What a build does before its first buildah query, and all `invoke --list` needs.
    probe = "import sys, tasks; print(sorted(m for m in sys.modules if m.split('.')[0] in"
    probe += " ('pydantic', 'qjson_tasks')))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_DIR, capture_output=True, text=True, check=True
    ).stdout
    assert "pydantic" not in loaded
    assert "qjson_tasks.app." not in loaded and "qjson_tasks.config.model" not in loaded


def test_targets_lists_every_config() -> None:
    result = invoke("targets")
    assert result.returncode == 0
    assert "offline (default):" in result.stdout and "apisix:" in result.stdout


def test_show_prints_the_resolved_config_as_toml() -> None:
    result = invoke("show", "--target", "offline")
    assert result.returncode == 0
    assert 'tree = "/qjson-rock"' in result.stdout
    assert str(PROJECT_DIR / "rocks" / "qjson-demo") in result.stdout


def test_missing_subordinate_ids_say_what_to_add(tmp_path: Path) -> None:
    subuid, subgid = tmp_path / "subuid", tmp_path / "subgid"
    subuid.write_text("someone:100000:65536\n")
    subgid.write_text("ci:100000:65536\n")
    with pytest.raises(ToolError, match=r"no entry in .*subuid.*usermod --add-subuids"):
        check_subids("ci", 1001, [subuid, subgid])
    subuid.write_text("1001:100000:65536\n")
    check_subids("ci", 1001, [subuid, subgid])


def test_a_uid_without_a_name_is_told_which_lines_to_add(tmp_path: Path) -> None:
    empty = tmp_path / "subuid"
    empty.write_text("")
    with pytest.raises(ToolError, match=r"add the line '4242:100000:65536' to /etc/subuid and"):
        check_subids("4242", 4242, [empty, empty])


def test_the_re_exec_runs_the_same_command_in_buildah_unshare_with_a_tmpdir_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qjson_tasks.host import rootless

    subids = tmp_path / "subids"
    subids.write_text("ci:100000:65536\n")
    monkeypatch.setattr(rootless, "SUBID_FILES", (subids, subids))
    monkeypatch.setattr(rootless, "require", lambda name: None)
    monkeypatch.setattr(rootless.os, "geteuid", lambda: 1001)
    monkeypatch.setattr(rootless.pwd, "getpwuid", lambda uid: type("pw", (), {"pw_name": "ci"}))
    monkeypatch.setattr(rootless, "user_tmpdir", lambda uid: tmp_path / f"tmp-{uid}")
    made: list[Path] = []  # private_dir itself is tested in test_locks.py
    monkeypatch.setattr(rootless, "private_dir", lambda path: made.append(path) or path)
    monkeypatch.setenv("TMPDIR", "")  # unset for the code; monkeypatch restores the real one
    monkeypatch.setattr(sys, "argv", ["/venv/bin/invoke", "build-runtime", "--tag", "x"])
    execs: list[tuple[str, list[str], str]] = []
    monkeypatch.setattr(
        rootless.os, "execvp", lambda f, argv: execs.append((f, argv, os.environ["TMPDIR"]))
    )

    rootless.reexec_in_user_namespace()

    assert execs == [
        (
            "buildah",
            ["buildah", "unshare", "--", sys.executable, "/venv/bin/invoke", "build-runtime",
             "--tag", "x"],
            str(tmp_path / "tmp-1001"),
        )
    ]  # fmt: skip
    assert made == [tmp_path / "tmp-1001"]
