"""Bad input through the real CLI layer: one `ERROR ...` line, exit 1, nothing created.

Each case runs the tasks through invoke's own Program (flag parsing, the `cli` decorator,
Exit -> stderr and exit code) in this process, with a fake `buildah` first on PATH that only
records its arguments. So a case proves not only the message but that no buildah command ran
that could make a container or image.
"""

from __future__ import annotations

import os
import signal
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from invoke import Collection, Program

import tasks
from qjson_tasks.app.tools import CONFIG_DIR
from qjson_tasks.app.verify import write_json_report
from qjson_tasks.config.load import list_targets
from qjson_tasks.errors import ConfigError
from qjson_tasks.host import rootless
from qjson_tasks.host.runner import INSTALL_HINTS
from qjson_tasks.verify.report import VerifyReport
from tests.unit.configs import ABSOLUTE, DELETE, IMAGE_FORM, OPERATORS, mutated, write

FAKE_BUILDAH = """#!/bin/sh
printf '%s\\n' "$*" >> "$QJT_FAKE_BUILDAH_LOG"
echo "fake buildah: not expected to run" >&2
exit 125
"""
# Subcommands that make, change or remove containers and images.
CREATING = {"from", "commit", "tag", "pull", "push", "run", "copy", "mount", "config", "rmi", "rm"}
KNOWN = ", ".join(p.stem for p in list_targets(CONFIG_DIR))
ROCKSPEC = "qjson-demo-0.1.0-1.rockspec"


@dataclass
class World:
    """What a case can refer to: a scratch directory and the fake buildah's call log."""

    tmp: Path
    log: Path
    files: dict[str, Path] = field(default_factory=dict)

    def config(self, name: str, text: str) -> str:
        path = write(self.tmp / "cfg" / f"{name}.toml", text)
        self.files[name] = path
        return str(path)

    def rock_dir(self, *rockspecs: str) -> str:
        directory = self.tmp / f"rock{len(self.files)}"
        directory.mkdir()
        for relative in rockspecs:
            write(directory / relative, "-- rockspec\n")
        self.files[directory.name] = directory
        return str(directory)


@dataclass(frozen=True)
class Case:
    id: str
    argv: Callable[[World], list[str]]
    expected: Callable[[World], list[str]]
    path: str = "fake"  # "fake": the fake buildah first on PATH; "none": no buildah at all
    rootless: str | None = None  # "no-subuid" / "no-subgid": run as a non-root user lacking them


def config_case(case_id: str, text: str, *expected: str) -> Case:
    """`build-runtime --config FILE` on a broken file: the error names the file first."""
    return Case(
        case_id,
        lambda w: ["build-runtime", "--config", w.config(case_id, text)],
        lambda w: [f"{w.files[case_id]}: ", *expected],
    )


def rock_case(case_id: str, rockspecs: tuple[str, ...], *expected: str) -> Case:
    def argv(w: World) -> list[str]:
        source = w.rock_dir(*rockspecs)
        return ["build-runtime", "--config", w.config(case_id, mutated(("rock.source", source)))]

    return Case(case_id, argv, lambda w: [f"{w.files[case_id]}: rock.source: ", *expected])


INSTALL_BUILDAH = INSTALL_HINTS["buildah"]

CASES = [
    Case(
        "unknown-target",
        lambda w: ["build-runtime", "--target", "nope"],
        lambda w: [f"unknown target 'nope' (known targets in {CONFIG_DIR}: {KNOWN})"],
    ),
    Case(
        "unknown-target-path-like",
        lambda w: ["show", "--target", "../config/offline"],
        lambda w: ["unknown target '../config/offline'", KNOWN],
    ),
    Case(
        "target-and-config",
        lambda w: ["show", "--target", "offline", "--config", "x.toml"],
        lambda w: ["give either --target or --config, not both"],
    ),
    Case(
        "missing-config-file",
        lambda w: ["build-runtime", "--config", str(w.tmp / "absent.toml")],
        lambda w: [f"{w.tmp / 'absent.toml'}: no such config file"],
    ),
    Case(
        "config-is-a-directory",
        lambda w: ["show", "--config", str(w.tmp)],
        lambda w: [f"{w.tmp}: cannot read: Is a directory"],
    ),
    config_case(
        "toml-syntax",
        '[runtime]\nbase_image = "debian"\nluajit = \n',
        "invalid TOML",
        "line 3",
        "column 10",
    ),
    config_case(
        "unknown-key",
        mutated(("runtime.luajt", "/usr/bin/luajit")),
        "runtime.luajt: unknown key (allowed: base_image, bootstrap, lua_version, luajit,",
    ),
    config_case(
        "missing-required-field",
        mutated(("rock.name", DELETE)),
        "rock.name: missing required field",
    ),
    config_case("missing-section", mutated(("output", DELETE)), "output: missing required field"),
    config_case(
        "relative-luajit",
        mutated(("runtime.luajit", "bin/luajit")),
        "runtime.luajit: 'bin/luajit' ",
        ABSOLUTE,
    ),
    config_case(
        "relative-prefix", mutated(("runtime.prefix", "usr/local")), "runtime.prefix: ", ABSOLUTE
    ),
    config_case(
        "image-reference",
        mutated(("runtime.base_image", "docker.io/Apache/APISIX:3.16.0")),
        "runtime.base_image: 'docker.io/Apache/APISIX:3.16.0' is not an image reference",
        IMAGE_FORM,
    ),
    config_case(
        "output-image-with-tag",
        mutated(("output.image", "localhost/qjson:1.0")),
        "output.image: 'localhost/qjson:1.0' must be an image name without tag or digest",
    ),
    Case(
        "image-flag",
        lambda w: ["build-runtime", "--base-image", "Not An Image"],
        lambda w: ["--base-image: 'Not An Image' is not an image reference", IMAGE_FORM],
    ),
    Case(
        "verify-image-flag",
        lambda w: ["verify", "--image", "Bad Ref"],
        lambda w: ["--image: 'Bad Ref' is not an image reference", IMAGE_FORM],
    ),
    config_case(
        "version-operator",
        mutated(("rock.version", ">>1.0")),
        "rock.version: '>>1.0' is not a version requirement",
        OPERATORS,
    ),
    config_case(
        "version-two-words",
        mutated(("rock.version", "1.0 beta")),
        "rock.version: '1.0 beta' is not a version requirement",
        OPERATORS,
    ),
    rock_case(
        "no-rockspec",
        ("README.md", f"elsewhere/{ROCKSPEC}"),
        "no rockspec in '",
        "(looked at its root and rockspec/)",
    ),
    rock_case(
        "several-rockspecs",
        (ROCKSPEC, f"rockspec/{ROCKSPEC}"),
        "several rockspecs match in '",
        f"({ROCKSPEC}, rockspec/{ROCKSPEC}): pin rock.version",
    ),
    Case(
        "rock-source-not-a-directory",
        lambda w: ["build-runtime", "--rock-source", str(w.tmp / "nowhere")],
        lambda w: [f"--rock-source: '{w.tmp / 'nowhere'}' is not a directory: use 'default',"],
    ),
    config_case(
        "tree-is-root",
        mutated(("staging.tree", "/")),
        "staging.tree: must not be '/': use a directory of its own",
    ),
    config_case(
        "tree-overlaps-prefix",
        mutated(("staging.tree", "/usr/local/qjson")),
        "staging.tree: '/usr/local/qjson' overlaps runtime.prefix '/usr/local': use a separate",
    ),
    config_case(
        "prefix-inside-tree",
        mutated(("staging.tree", "/opt"), ("runtime.prefix", "/opt/app")),
        "staging.tree: '/opt' overlaps runtime.prefix '/opt/app'",
    ),
    Case(
        "tag-flag",
        lambda w: ["build-runtime", "--tag", "no spaces"],
        lambda w: ["--tag: 'no spaces' is not a tag: letters, digits, '_', '.', '-' (max 128)"],
    ),
    Case(
        "buildah-missing-build",
        lambda w: ["build-runtime"],
        lambda w: [f"'buildah' was not found on PATH; {INSTALL_BUILDAH}"],
        path="none",
    ),
    Case(
        "buildah-missing-verify",
        lambda w: ["verify"],
        lambda w: [f"'buildah' was not found on PATH; {INSTALL_BUILDAH}"],
        path="none",
    ),
    Case(
        "buildah-missing-rootless",
        lambda w: ["build-runtime"],
        lambda w: [f"'buildah' was not found on PATH; {INSTALL_BUILDAH}"],
        path="none",
        rootless="no-subuid",
    ),
    Case(
        "rootless-without-subuid",
        lambda w: ["build-runtime"],
        lambda w: [
            f"user 'ci' has no entry in {w.tmp / 'subuid'};",
            "as root run: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ci",
        ],
        rootless="no-subuid",
    ),
    Case(
        "rootless-uid-without-name",
        lambda w: ["build-runtime"],
        lambda w: [
            f"user '1001' has no entry in {w.tmp / 'subuid'};",
            "add the line '1001:100000:65536' to /etc/subuid and /etc/subgid",
        ],
        rootless="no-name",
    ),
    Case(
        "rootless-without-subgid",
        lambda w: ["verify"],
        lambda w: [f"user 'ci' has no entry in {w.tmp / 'subgid'};", "usermod --add-subuids"],
        rootless="no-subgid",
    ),
]


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "buildah"
    fake.write_text(FAKE_BUILDAH)
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    log = tmp_path / "buildah.log"
    monkeypatch.setenv("QJT_FAKE_BUILDAH_LOG", str(log))
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin")
    monkeypatch.delenv(rootless.USERNS_MARKER, raising=False)
    work = tmp_path / "work"
    work.mkdir()
    previous = signal.getsignal(signal.SIGTERM)  # the cli decorator installs its own
    yield World(work, log)
    signal.signal(signal.SIGTERM, previous)


def as_user_without(monkeypatch: pytest.MonkeyPatch, world: World, missing: str) -> None:
    """Run as uid 1001 ('ci', or nameless) whose /etc/subuid or /etc/subgid has no line."""
    subuid, subgid = world.tmp / "subuid", world.tmp / "subgid"
    subuid.write_text("ci:100000:65536\n" if missing == "no-subgid" else "other:100000:65536\n")
    subgid.write_text("ci:100000:65536\n" if missing == "no-subuid" else "other:100000:65536\n")
    monkeypatch.setattr(rootless, "SUBID_FILES", (subuid, subgid))
    monkeypatch.setattr(os, "geteuid", lambda: 1001)
    if missing == "no-name":  # a uid with no passwd entry, as some CI containers run

        def getpwuid(uid: int) -> object:
            raise KeyError(f"getpwuid(): uid not found: {uid}")

    else:

        def getpwuid(uid: int) -> object:
            return type("pw", (), {"pw_name": "ci"})

    monkeypatch.setattr(rootless.pwd, "getpwuid", getpwuid)

    def no_exec(*args: object) -> None:
        raise AssertionError(f"re-executed despite missing subordinate ids: {args}")

    monkeypatch.setattr(os, "execvp", no_exec)


def run_cli(argv: list[str]) -> int:
    program = Program(namespace=Collection.from_module(tasks), name="invoke", binary="invoke")
    try:
        program.run(["invoke", *argv])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_error_line_and_creates_nothing(
    case: Case,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = case.argv(world)
    if case.path == "none":
        monkeypatch.setenv("PATH", str(world.tmp / "empty-bin"))
    if case.rootless:
        as_user_without(monkeypatch, world, case.rootless)

    code = run_cli(argv)

    out, err = capsys.readouterr()
    assert code == 1, (code, out, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected exactly one line on stderr, got:\n{err}"
    assert lines[0].startswith("ERROR "), lines[0]
    for fragment in case.expected(world):
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    calls = world.log.read_text().splitlines() if world.log.exists() else []
    ran = {call.split()[0] for call in calls if call}
    assert not ran & CREATING, f"buildah was asked to change something: {calls}"


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 20


def test_the_fake_buildah_would_notice_a_creating_call(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    # The control for the table: a valid build does reach buildah through the fake.
    assert run_cli(["build-runtime", "--target", "offline"]) == 1
    assert world.log.read_text().splitlines()[0].startswith(("images", "inspect"))
    assert "fake buildah: not expected to run" in capsys.readouterr().err


def test_an_unwritable_json_report_path_is_one_error(tmp_path: Path) -> None:
    report = VerifyReport(image="localhost/x:1", image_id="0" * 64, target="t")
    with pytest.raises(ConfigError, match=r"^--json: cannot write .*/no/dir/r.json: No such file"):
        write_json_report(report, str(tmp_path / "no" / "dir" / "r.json"))
