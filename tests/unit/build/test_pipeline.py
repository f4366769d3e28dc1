"""The pipeline's commands and its cleanup, with a recording fake runner (no buildah)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from qjson_tasks.build import pipeline
from qjson_tasks.build.names import UNIT_REPOSITORY
from qjson_tasks.build.pipeline import BuildOptions
from qjson_tasks.build.session import Session
from qjson_tasks.config.load import find_target
from qjson_tasks.config.model import Target
from qjson_tasks.errors import StepError
from qjson_tasks.host import labelmemo
from qjson_tasks.host.buildah import Buildah
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


# As luarocks 3.8 writes it after `luarocks make` of the demo rock.
TREE_MANIFEST = """commands = {}
dependencies = {
   ["qjson-demo"] = {
      ["0.1.0-1"] = {}
   }
}
modules = {}
repository = {
   ["qjson-demo"] = {
      ["0.1.0-1"] = {
         {
            arch = "installed",
            commands = {},
            dependencies = {},
            modules = {}
         }
      }
   }
}
"""


@pytest.fixture
def mount_root(tmp_path: Path) -> Path:
    rock = tmp_path / "qjson-rock/lib/luarocks/rocks-5.1/qjson-demo/0.1.0-1"
    rock.mkdir(parents=True)
    (rock / "rock_manifest").write_text("rock_manifest = {}\n")
    (rock.parent.parent / "manifest").write_text(TREE_MANIFEST)
    (tmp_path / "qjson-rock/lib/lua/5.1").mkdir(parents=True)
    (tmp_path / "qjson-rock/lib/lua/5.1/qjson.so").write_bytes(b"\x7fELF" + b"\0" * 60)
    return tmp_path


def make_runner(mount_root: Path, **kwargs: object) -> FakeRunner:
    return FakeRunner(mount_root, images={BASE: "base-id"}, **kwargs)  # type: ignore[arg-type]


def run_build(
    target: Target,
    runner: FakeRunner,
    passed: bool = True,
    run_id: str = "r1",
    **options: Any,
) -> pipeline.BuildResult:
    """pipeline.build with a verifier that passes (or not); options go to build as is."""
    session = Session(target, Buildah(runner), runner, lambda message: None, run_id)
    verifier = lambda image_id: Outcome(passed)  # noqa: E731
    return pipeline.build(session, BuildOptions(verifier=verifier, **options))


def test_a_good_build_runs_the_steps_in_order(target: Target, mount_root: Path) -> None:
    runner = make_runner(mount_root)
    result = run_build(target, runner)

    assert result.image_ref == OUTPUT
    assert result.rock_version == "0.1.0-1"
    shipped = 64 + len("rock_manifest = {}\n") + len(TREE_MANIFEST)
    assert (result.files_added, result.bytes_added) == (3, shipped)
    assert result.built == ("builder", "rock-tree", "runtime")
    subs = [s for s in runner.subcommands() if s not in ("inspect", "images")]
    assert subs == [
        "from", "run", "run", "run",  # builder unit: apt-get update/install/clean,
        "config", "commit", "rm",  # labelled with its unit name
        "from", "copy", "run", "mount",  # builder container: local rock copied, luarocks make
        "from", "copy", "config", "commit",  # rock-tree unit: a scratch image with the tree
        "rm", "umount", "rm",
        "from", "copy",  # runtime: base + tree from the unit
        "from", "mount", "umount", "rm",  # its SBOM, from the rock-tree unit's files
        "config", "commit", "rm",
        "tag", "rmi",  # output and unit tags on; the temporary name off
    ]  # fmt: skip
    assert not any("/unverified:" in name for name in runner.images)
    assert runner.left_behind() == (set(), set())


def test_the_runtime_carries_the_sha256_of_its_stored_sbom(
    target: Target, mount_root: Path, sbom_dir: Path
) -> None:
    runner = make_runner(mount_root)
    result = run_build(target, runner)
    sha256 = runner.image_labels[runner.images[OUTPUT]]["org.qjson-tasks.sbom.sha256"]
    stored = sbom_dir / f"{sha256}.cdx.json"
    assert result.sbom == str(stored)
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha256
    files = [
        c["name"] for c in json.loads(stored.read_bytes())["components"] if c["type"] == "file"
    ]
    assert files == [
        "/usr/local/lib/lua/5.1/qjson.so",
        "/usr/local/lib/luarocks/rocks-5.1/manifest",
        "/usr/local/lib/luarocks/rocks-5.1/qjson-demo/0.1.0-1/rock_manifest",
    ]
    provenance = json.loads((sbom_dir / f"{result.image_id}.intoto.json").read_bytes())
    assert provenance["subject"][0]["digest"] == {"sha256": result.image_id}
    assert provenance["predicate"]["runDetails"]["byproducts"][0]["digest"] == {"sha256": sha256}
    # Made again from the same unit (another run): the same document, so the same labels.
    for name in [n for n in runner.images if "/runtime:" in n]:
        del runner.images[name]
    again = run_build(target, runner, run_id="r2")
    assert again.sbom == result.sbom
    assert runner.image_labels[again.image_id] == runner.image_labels[result.image_id]


def test_every_unit_is_kept_as_an_image_named_by_its_hash(target: Target, mount_root: Path) -> None:
    runner = make_runner(mount_root)
    result = run_build(target, runner)
    for kind, name in result.units.items():
        unit_hash = name.removeprefix(f"{kind}-")
        assert runner.images[f"{UNIT_REPOSITORY}/{kind}:{unit_hash}"]
    runtime = f"{UNIT_REPOSITORY}/runtime:{result.units['runtime'].removeprefix('runtime-')}"
    assert runner.images[runtime] == runner.images[OUTPUT] == result.image_id


def test_the_runtime_commit_is_reproducible(target: Target, mount_root: Path) -> None:
    runner = make_runner(mount_root)
    run_build(target, runner)
    commits = [c for c in runner.calls if is_call("buildah", "commit")(c)]
    runtime_commit = commits[-1]
    # The base image's creation time (0 here), never the clock; no per-host identity label.
    assert runtime_commit[2:6] == ["--quiet", "--identity-label=false", "--timestamp", "0"]
    labels = runner.image_labels[runner.images[OUTPUT]]
    assert labels["org.qjson-tasks.unit.rock-tree"] in " ".join(runner.images)
    # Nothing of the run, and not the runtime's own hash (it covers verification inputs).
    assert "org.qjson-tasks.unit.runtime" not in labels
    assert not any("r1" in value for value in labels.values())


def test_a_second_build_with_the_same_inputs_builds_nothing(
    target: Target, mount_root: Path
) -> None:
    runner = make_runner(mount_root)
    first = run_build(target, runner)
    runner.calls.clear()
    again = run_build(target, runner)
    assert again.built == ()
    assert again.image_id == first.image_id
    assert again.rock_version == "0.1.0-1"
    assert set(runner.subcommands()) <= {"inspect", "images"}


def test_a_build_where_nothing_changed_asks_buildah_one_thing(
    target: Target, mount_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The image listing; the summary's labels come from the memo the first build wrote."""
    monkeypatch.setattr(labelmemo, "memo_dir", lambda: tmp_path / "labels")
    runner = make_runner(mount_root, sha256_ids=True)
    first = run_build(target, runner)
    assert labelmemo.recall(first.image_id) is not None
    runner.calls.clear()

    again = run_build(target, runner)
    assert again.built == ()
    assert runner.subcommands() == ["images"]
    assert (again.rock_version, again.files_added) == (first.rock_version, first.files_added)


def test_every_rock_install_keeps_cargo_downloads_in_the_builder_images_cargo_home(
    target: Target, mount_root: Path
) -> None:
    runner = make_runner(mount_root, image_env=["PATH=/usr/bin", "CARGO_HOME=/usr/local/cargo"])
    result = run_build(target, runner)
    runs = [c for c in runner.calls if is_call("buildah", "run")(c)]
    installs = [c for c in runs if c[c.index("--") + 1] == "luarocks"]
    assert len(installs) == 1
    builder_hash = result.units["builder"].removeprefix("builder-")
    for part in ("registry", "git"):
        mount = (
            f"type=cache,target=/usr/local/cargo/{part},"
            f"id=qjson-tasks-{builder_hash}-cargo-{part},sharing=locked"
        )
        assert all(mount in call for call in installs)


def test_rebuild_builds_every_unit_again(target: Target, mount_root: Path) -> None:
    runner = make_runner(mount_root)
    run_build(target, runner)
    again = run_build(target, runner, run_id="r2", rebuild=True)
    assert again.built == ("builder", "rock-tree", "runtime")
    # The images the rebuilt units replaced are gone, not left behind unnamed.
    assert runner.unnamed == []


def test_a_changed_smoke_script_reverifies_without_rebuilding_the_rock(
    target: Target, mount_root: Path
) -> None:
    runner = make_runner(mount_root)
    run_build(target, runner)
    runner.calls.clear()
    again = run_build(target, runner, run_id="r2", verify_digest="another smoke script")
    assert again.built == ("runtime",)
    assert not any(runs("luarocks")(c) for c in runner.calls)


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
    result = run_build(target, runner)
    copies = [c for c in runner.calls if c[:2] == ["buildah", "copy"]]
    into_unit, into_runtime = copies[-2:]
    assert into_unit[-3:] == ["qjt-offline-tree-r1", str(mount_root / "qjson-rock"), "/qjson-rock"]
    tree_unit = (
        f"{UNIT_REPOSITORY}/rock-tree:{result.units['rock-tree'].removeprefix('rock-tree-')}"
    )
    assert into_runtime[2:] == [
        "--quiet", "--chown", "0:0", "--from", tree_unit,
        "qjt-offline-runtime-r1", "/qjson-rock", "/usr/local",
    ]  # fmt: skip


def test_an_existing_builder_unit_is_reused(target: Target, mount_root: Path) -> None:
    runner = make_runner(mount_root)
    run_build(target, runner)
    for name in [n for n in runner.images if "/rock-tree:" in n or "/runtime:" in n]:
        del runner.images[name]
    runner.calls.clear()
    result = run_build(target, runner)
    assert result.built == ("rock-tree", "runtime")
    assert not any("apt-get" in c for c in runner.calls)


STEP_FAULTS: list[tuple[str, Callable[[Argv], bool]]] = [
    ("builder setup", is_call("buildah", "from", "qjt-offline-setup-r1")),
    ("builder setup", is_call("buildah", "run", "apt-get", "install")),
    ("builder setup", is_call("buildah", "commit", "qjt-offline-setup-r1")),
    ("builder container", is_call("buildah", "from", "qjt-offline-builder-r1")),
    ("rock install", is_call("buildah", "copy", "/qjson-src/qjson-demo")),
    ("rock install", runs("luarocks")),
    ("mount builder", is_call("buildah", "mount")),
    ("rock tree", is_call("buildah", "from", "qjt-offline-tree-r1")),
    ("rock tree", is_call("buildah", "copy", "qjt-offline-tree-r1")),
    ("rock tree", is_call("buildah", "commit", "qjt-offline-tree-r1")),
    ("runtime container", is_call("buildah", "from", "qjt-offline-runtime-r1")),
    ("copy tree", is_call("buildah", "copy", "/usr/local")),
    ("sbom", is_call("buildah", "from", "qjt-offline-sbom-r1")),
    ("sbom", is_call("buildah", "mount", "qjt-offline-sbom-r1")),
    ("label", is_call("buildah", "config", "qjt-offline-runtime-r1")),
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
        session = Session(target, Buildah(runner, keep=True), runner, lambda m: None, "r1")
        pipeline.build(session, BuildOptions(verifier=None))
    assert "--keep-on-failure" not in str(caught.value)
    assert runner.live_containers == {"qjt-offline-builder-r1"}
    assert "buildah rm qjt-offline-builder-r1" in capsys.readouterr().err


def test_an_installed_version_outside_the_requirement_is_an_error(
    target: Target, mount_root: Path
) -> None:
    manifest = mount_root / "qjson-rock/lib/luarocks/rocks-5.1/manifest"
    manifest.write_text(TREE_MANIFEST.replace("0.1.0-1", "0.2.0-1"))
    runner = make_runner(mount_root)
    with pytest.raises(
        StepError, match=r"qjson-demo 0.2.0-1 was installed but the target requires '==0.1.0'"
    ):
        run_build(target, runner)
