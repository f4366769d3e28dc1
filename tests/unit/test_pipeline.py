"""The pipeline's commands and its cleanup, with a recording fake runner (no buildah)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from qjson_tasks import pipeline
from qjson_tasks.buildah import Buildah
from qjson_tasks.config import Target, find_target
from qjson_tasks.errors import StepError
from tests.unit.fakes import Argv, FakeRunner, is_call, runs

BASE = "localhost/qjson-tasks/bookworm-luajit:latest"
OUTPUT = "localhost/qjson-tasks/offline-runtime:latest"


@dataclass
class Outcome:
    passed: bool

    def summary(self) -> str:
        return "smoke FAIL"


@pytest.fixture
def target(project_dir: Path) -> Target:
    return find_target("offline", project_dir / "config")


@pytest.fixture
def mount_root(tmp_path: Path) -> Path:
    rock = tmp_path / "qjson-rock/lib/luarocks/rocks-5.1/qjson-demo/0.1.0-1"
    rock.mkdir(parents=True)
    (rock / "rock_manifest").write_text("rock_manifest = {}\n")
    (tmp_path / "qjson-rock/lib/lua/5.1").mkdir(parents=True)
    (tmp_path / "qjson-rock/lib/lua/5.1/qjson.so").write_bytes(b"\x7fELF" + b"\0" * 60)
    return tmp_path


def make_runner(mount_root: Path, **kwargs: object) -> FakeRunner:
    return FakeRunner(mount_root, images={BASE: "base-id"}, **kwargs)  # type: ignore[arg-type]


def run_build(target: Target, runner: FakeRunner, passed: bool = True) -> pipeline.BuildResult:
    return pipeline.build(
        target,
        Buildah(runner),
        runner,
        run_id="r1",
        verifier=lambda image_id: Outcome(passed),
        log=lambda message: None,
    )


def test_a_good_build_runs_the_steps_in_order(target: Target, mount_root: Path) -> None:
    runner = make_runner(mount_root)
    result = run_build(target, runner)

    assert result.image_ref == OUTPUT
    assert result.rock_version == "0.1.0-1"
    assert (result.files_added, result.bytes_added) == (2, 64 + len("rock_manifest = {}\n"))
    subs = [s for s in runner.subcommands() if s not in ("inspect", "images")]
    assert subs == [
        "from", "run", "run", "run", "commit", "rm",  # builder unit: apt-get update/install/clean
        "from", "copy", "run",  # builder container: local rock copied, luarocks make
        "from", "mount", "copy", "umount", "config", "commit",  # runtime container
        "rm", "rm", "tag",
    ]  # fmt: skip
    assert runner.left_behind() == (set(), set())


def test_the_builder_steps_run_as_root_with_chroot_isolation(
    target: Target, mount_root: Path
) -> None:
    runner = make_runner(mount_root)
    run_build(target, runner)
    luarocks = next(c for c in runner.calls if runs("luarocks")(c))
    assert luarocks[:4] == ["buildah", "run", "--isolation", "chroot"]
    assert luarocks[luarocks.index("--user") : luarocks.index("--user") + 2] == ["--user", "0:0"]
    assert "--env" in luarocks and "CARGO_PROFILE_RELEASE_STRIP=symbols" in luarocks
    assert luarocks[luarocks.index("--") + 1 :] == [
        "luarocks",
        "--lua-version=5.1",
        "make",
        "--tree=/qjson-rock",
        "rockspec/qjson-demo-0.1.0-1.rockspec",
    ]


def test_only_the_tree_is_copied_into_the_prefix_as_root(target: Target, mount_root: Path) -> None:
    runner = make_runner(mount_root)
    run_build(target, runner)
    copies = [c for c in runner.calls if c[:2] == ["buildah", "copy"]]
    tree_copy = copies[-1]
    assert tree_copy[-2:] == [str(mount_root / "qjson-rock"), "/usr/local"]
    assert tree_copy[3:5] == ["--chown", "0:0"]
    assert tree_copy[-3] == "qjt-offline-runtime-r1"


def test_an_existing_builder_unit_is_reused(target: Target, mount_root: Path) -> None:
    runner = make_runner(mount_root)
    run_build(target, runner)
    again = make_runner(mount_root)
    again.images = dict(runner.images)
    result = run_build(target, again)
    assert result.builder_reused
    assert not any("apt-get" in c for c in again.calls)


STEP_FAULTS: list[tuple[str, Callable[[Argv], bool]]] = [
    ("builder setup", is_call("buildah", "from", "qjt-offline-setup-r1")),
    ("builder setup", is_call("buildah", "run", "apt-get", "install")),
    ("builder setup", is_call("buildah", "commit", "qjt-offline-setup-r1")),
    ("builder container", is_call("buildah", "from", "qjt-offline-builder-r1")),
    ("rock install", is_call("buildah", "copy", "/qjson-src")),
    ("rock install", runs("luarocks")),
    ("runtime container", is_call("buildah", "from", "qjt-offline-runtime-r1")),
    ("mount builder", is_call("buildah", "mount")),
    ("copy tree", is_call("buildah", "copy", "/usr/local")),
    ("label", is_call("buildah", "config")),
    ("commit", is_call("buildah", "commit", "qjt-offline-runtime-r1")),
    ("tag", is_call("buildah", "tag")),
]


@pytest.mark.parametrize(("step", "fault"), STEP_FAULTS, ids=[f[0] for f in STEP_FAULTS])
def test_a_failing_step_names_itself_and_leaves_nothing(
    target: Target, mount_root: Path, step: str, fault: Callable[[Argv], bool]
) -> None:
    runner = make_runner(mount_root, fail_on=fault)
    with pytest.raises(StepError) as caught:
        run_build(target, runner)

    assert caught.value.step == step
    assert "boom" in str(caught.value) and "--keep-on-failure" in str(caught.value)
    assert runner.left_behind() == (set(), set())
    assert OUTPUT not in runner.images
    assert runner.unnamed == []


@pytest.mark.parametrize(
    "fault",
    [runs("luarocks"), is_call("buildah", "copy", "/usr/local")],
    ids=["rock install", "copy tree"],
)
def test_ctrl_c_mid_step_removes_containers_and_mounts(
    target: Target, mount_root: Path, fault: Callable[[Argv], bool]
) -> None:
    runner = make_runner(mount_root, interrupt_on=fault)
    with pytest.raises(KeyboardInterrupt):
        run_build(target, runner)
    assert runner.left_behind() == (set(), set())


def test_a_failed_verification_keeps_the_old_tag_and_drops_the_new_image(
    target: Target, mount_root: Path
) -> None:
    runner = make_runner(mount_root)
    runner.images[OUTPUT] = "previous-good-id"
    with pytest.raises(StepError) as caught:
        run_build(target, runner, passed=False)
    assert caught.value.step == "verify"
    assert "smoke FAIL" in str(caught.value)
    assert runner.images[OUTPUT] == "previous-good-id"
    assert "tag" not in runner.subcommands()
    assert runner.unnamed == []


def test_keep_on_failure_keeps_containers_and_says_how_to_remove_them(
    target: Target, mount_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runner = make_runner(mount_root, fail_on=runs("luarocks"))
    with pytest.raises(StepError) as caught:
        pipeline.build(
            target,
            Buildah(runner, keep=True),
            runner,
            run_id="r1",
            verifier=None,
            log=lambda message: None,
        )
    assert "--keep-on-failure" not in str(caught.value)
    assert runner.live_containers == {"qjt-offline-builder-r1"}
    assert "buildah rm qjt-offline-builder-r1" in capsys.readouterr().err


def test_an_installed_version_outside_the_requirement_is_an_error(
    target: Target, mount_root: Path
) -> None:
    rocks = mount_root / "qjson-rock/lib/luarocks/rocks-5.1/qjson-demo"
    (rocks / "0.1.0-1").rename(rocks / "0.2.0-1")
    runner = make_runner(mount_root)
    with pytest.raises(StepError, match=r"qjson-demo 0.2.0-1 was installed but rock.version"):
        run_build(target, runner)
