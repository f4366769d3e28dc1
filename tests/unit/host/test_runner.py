"""The process runner: what a failed command's error shows, and a missing tool."""

from __future__ import annotations

import pytest

from qjson_tasks.errors import ToolError, ToolMissingError
from qjson_tasks.host.runner import INSTALL_HINTS, ShRunner, format_command, tool_missing

TOKEN = "s3cr3t-value"


def test_env_values_are_hidden_in_a_shown_command() -> None:
    argv = ["buildah", "run", "--env", f"QJT_TOKEN={TOKEN}", "--env", "A=b=c", "ctr", "--", "x"]
    assert format_command(argv) == (
        "buildah run --env 'QJT_TOKEN=<hidden>' --env 'A=<hidden>' ctr -- x"
    )


def test_other_arguments_with_equals_signs_are_shown() -> None:
    assert format_command(["buildah", "config", "--label", "a=b", "ctr"]) == (
        "buildah config --label a=b ctr"
    )


def test_a_failed_command_shows_its_argv_without_env_values() -> None:
    with pytest.raises(ToolError) as caught:
        ShRunner().run(["sh", "-c", "echo last words >&2; exit 3", "--env", f"T={TOKEN}"])
    message = str(caught.value)
    assert message.startswith("command failed (exit 3): sh -c ")
    assert "T=<hidden>" in message and "last words" in message
    assert TOKEN not in message


def test_a_missing_tool_is_its_own_error_saying_what_to_install() -> None:
    with pytest.raises(ToolMissingError, match=r"^'qjt-no-such-tool' was not found on PATH; "):
        ShRunner().run(["qjt-no-such-tool", "--version"])
    message = str(tool_missing("buildah"))
    assert message == f"'buildah' was not found on PATH; {INSTALL_HINTS['buildah']}"
    assert "apt-get install -y buildah" in message
