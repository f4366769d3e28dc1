"""Platforms (issue 17): the config field and flag, per-platform names and views, the argv of
debootstrap, pull, config and the manifest commands, the emulation check, the plan's hashes,
and the manifest list tagged only when it would change."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from qjson_tasks.build.baseimage import debootstrap_command
from qjson_tasks.build.manifest import tag_manifest_list
from qjson_tasks.build.plan import BuildPlan, ImageFacts, PlanInputs, make_plan
from qjson_tasks.build.platforms import local_ref, origin_ref, platform_view, target_platforms
from qjson_tasks.config.load import load_target
from qjson_tasks.config.model import Bootstrap, Target
from qjson_tasks.config.platforms import by_architecture, host_platform, parse_platform
from qjson_tasks.errors import ConfigError, ToolError
from qjson_tasks.host.buildah import Buildah
from qjson_tasks.host.emulation import EmulationMissing, emulation_problem, require_emulation
from qjson_tasks.host.registry import RemoteAccess
from tests.unit.configs import mutated, write
from tests.unit.fakes import FakeRunner

AMD64 = parse_platform("linux/amd64")
ARM64 = parse_platform("linux/arm64")
ON_AMD64 = pytest.mark.skipif(
    host_platform() != AMD64, reason="expects the names an amd64 host gives arm64's images"
)


def target(tmp_path: Path, *changes: tuple[str, object]) -> Target:
    return load_target(write(tmp_path / "cfg" / "t.toml", mutated(*changes)))


def config_error(tmp_path: Path, *changes: tuple[str, object]) -> str:
    with pytest.raises(ConfigError) as info:
        target(tmp_path, *changes)
    return str(info.value)


# --- config and flag -----------------------------------------------------------------------


def test_platforms_are_read_in_their_canonical_spelling(tmp_path: Path) -> None:
    loaded = target(tmp_path, ("output.platforms", ["linux/amd64", "linux/arm64/v8"]))
    assert loaded.config.output.platforms == ("linux/amd64", "linux/arm64")
    assert target_platforms(loaded) == (AMD64, ARM64)


def test_no_platforms_means_the_host_alone(tmp_path: Path) -> None:
    loaded = target(tmp_path)
    assert loaded.config.output.platforms is None
    assert target_platforms(loaded) is None


def test_an_unknown_platform_names_the_file_and_the_entry(tmp_path: Path) -> None:
    message = config_error(tmp_path, ("output.platforms", ["linux/amd64", "linux/arm65"]))
    path = tmp_path / "cfg" / "t.toml"
    assert message == (
        f"{path}: output.platforms[1]: 'linux/arm65' is not a supported platform: use one of"
        " linux/amd64, linux/arm64, linux/arm/v7, linux/386, linux/ppc64le, linux/s390x (os/arch)"
    )


def test_a_platform_listed_twice_or_an_empty_list_is_an_error(tmp_path: Path) -> None:
    twice = config_error(tmp_path, ("output.platforms", ["linux/arm64", "linux/arm64/v8"]))
    assert twice.endswith(
        "output.platforms: 'linux/arm64' is listed twice; list each platform once"
    )
    empty = config_error(tmp_path, ("output.platforms", []))
    assert "output.platforms: the list is empty" in empty


def test_the_flag_overrides_the_config_and_names_itself(tmp_path: Path) -> None:
    loaded = target(tmp_path, ("output.platforms", ["linux/amd64"]))
    assert target_platforms(loaded, "linux/arm64, linux/amd64") == (ARM64, AMD64)
    with pytest.raises(ConfigError, match=r"^--platform: 'windows/amd64' is not a supported"):
        target_platforms(loaded, "linux/amd64,windows/amd64")


def test_platform_facts() -> None:
    assert (ARM64.debian, ARM64.elf_machine, ARM64.elf_class, ARM64.uname) == (
        "arm64",
        "EM_AARCH64",
        64,
        "aarch64",
    )
    assert parse_platform("linux/arm/v7").suffix == "linux-arm-v7"
    assert by_architecture("amd64") == AMD64
    assert host_platform("x86_64") == AMD64
    assert host_platform("aarch64") == ARM64


# --- names and views ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "local"),
    [
        ("localhost/q/base:latest", "localhost/q/base:latest-linux-arm64"),
        ("docker.io/library/debian", "docker.io/library/debian:latest-linux-arm64"),
        ("registry:5000/a/b:1.2", "registry:5000/a/b:1.2-linux-arm64"),
        (
            "docker.io/x/y:1@sha256:" + "ab" * 32,
            "docker.io/x/y:sha256-" + "ab" * 32 + "-linux-arm64",
        ),
    ],
)
def test_another_platforms_images_get_names_of_their_own(ref: str, local: str) -> None:
    assert local_ref(ref, ARM64, AMD64) == local
    assert local_ref(ref, AMD64, AMD64) == ref  # the host's keep the config's names
    # Pulled from where the config says (a digest pin by its digest).
    pulled = origin_ref(local, ARM64)
    assert pulled == (ref.split(":1@")[0] + "@" + ref.split("@")[1] if "@" in ref else pulled)
    if "@" not in ref:
        assert pulled == (ref if ":" in ref.rsplit("/", 1)[-1] else ref + ":latest")


def test_a_view_names_its_base_builder_and_output(tmp_path: Path) -> None:
    loaded = target(tmp_path, ("runtime.base_image", "localhost/q/base:latest"))
    view = platform_view(loaded, ARM64, AMD64)
    config = view.target.config
    assert view.target.platform == ARM64
    assert config.runtime.base_image == "localhost/q/base:latest-linux-arm64"
    assert config.builder.image == "docker.io/library/rust:1-bookworm-linux-arm64"
    assert view.output_ref == "localhost/qjson-tasks/test:latest-linux-arm64"
    host_view = platform_view(loaded, AMD64, AMD64)
    assert host_view.target.config.runtime.base_image == "localhost/q/base:latest"
    assert host_view.output_ref == "localhost/qjson-tasks/test:latest-linux-amd64"


# --- argv -----------------------------------------------------------------------------------


def test_debootstrap_gets_the_platforms_debian_architecture() -> None:
    bootstrap = Bootstrap(packages=("luajit",))
    argv = debootstrap_command(bootstrap, Path("/r"), "http://deb", ARM64)
    assert argv == [
        "debootstrap",
        "--arch=arm64",
        "--variant=minbase",
        "--include=luajit",
        "bookworm",
        "/r",
        "http://deb",
    ]
    assert "--arch=arm64" not in debootstrap_command(bootstrap, Path("/r"), "http://deb")


def test_facade_argv_for_platforms(tmp_path: Path) -> None:
    runner = FakeRunner(tmp_path)
    buildah = Buildah(runner)
    buildah.pull("docker.io/library/debian:bookworm", platform="linux/arm64")
    buildah.config("ctr", os="linux", arch="arm64")
    buildah.manifest_create("localhost/l:tmp")
    buildah.manifest_add("localhost/l:tmp", "abc", os="linux", arch="arm", variant="v7")
    buildah.manifest_push(
        "localhost/l:out", "docker://127.0.0.1:5000/q/l:1", RemoteAccess(tls_verify=False)
    )
    buildah.manifest_rm("localhost/l:tmp")
    assert runner.calls == [
        ["buildah", "pull", "--quiet", "--platform", "linux/arm64",
         "docker.io/library/debian:bookworm"],
        ["buildah", "config", "--os", "linux", "--arch", "arm64", "ctr"],
        ["buildah", "manifest", "create", "localhost/l:tmp"],
        ["buildah", "manifest", "add", "--os", "linux", "--arch", "arm", "--variant", "v7",
         "localhost/l:tmp", "containers-storage:abc"],
        ["buildah", "manifest", "push", "--all", "--format", "oci", "--quiet", "--tls-verify=false",
         "localhost/l:out", "docker://127.0.0.1:5000/q/l:1"],
        ["buildah", "manifest", "rm", "localhost/l:tmp"],
    ]  # fmt: skip


# --- emulation ------------------------------------------------------------------------------


def binfmt(tmp_path: Path, mounted: bool = True, handlers: dict[str, str] | None = None) -> Path:
    directory = tmp_path / "binfmt_misc"
    directory.mkdir(parents=True)
    if mounted:
        (directory / "status").write_text("enabled\n")
    for name, state in (handlers or {}).items():
        (directory / name).write_text(f"{state}\ninterpreter /usr/libexec/qemu-binfmt/x\n")
    return directory


def test_the_hosts_own_platform_needs_no_emulation(tmp_path: Path) -> None:
    assert emulation_problem(AMD64, AMD64, binfmt(tmp_path, mounted=False)) is None


def test_an_enabled_qemu_handler_is_enough(tmp_path: Path) -> None:
    directory = binfmt(tmp_path, handlers={"qemu-aarch64": "enabled"})
    assert emulation_problem(ARM64, AMD64, directory, is_root=False) is None


def test_binfmt_misc_not_mounted_is_one_line_saying_what_to_run(tmp_path: Path) -> None:
    directory = binfmt(tmp_path, mounted=False)
    with pytest.raises(EmulationMissing) as info:
        require_emulation((AMD64, ARM64), host=AMD64, binfmt=directory, is_root=True)
    message = str(info.value)
    assert "\n" not in message
    assert message == (
        f"linux/arm64 needs emulation on this x86_64 machine, but binfmt_misc is not mounted"
        f" ({directory} is empty): as root, run `mount -t binfmt_misc binfmt_misc"
        " /proc/sys/fs/binfmt_misc; apt-get install qemu-user-static binfmt-support`"
        " (./run.sh does both)"
    )


def test_a_missing_handler_without_root_says_to_ask_root(tmp_path: Path) -> None:
    directory = binfmt(tmp_path, handlers={"qemu-arm": "enabled"})
    problem = emulation_problem(ARM64, AMD64, directory, is_root=False)
    assert problem is not None
    assert "the qemu-aarch64 handler is not registered" in problem
    assert "ask root to run `mount -t binfmt_misc" in problem
    disabled = binfmt(tmp_path / "d", handlers={"qemu-aarch64": "disabled"})
    assert str(emulation_problem(ARM64, AMD64, disabled, is_root=True)).endswith(
        "the qemu-aarch64 handler is disabled in"
        f" {disabled}: as root, run `update-binfmts --enable qemu-aarch64`"
    )


# --- the plan -------------------------------------------------------------------------------


def plan_of(loaded: Target, platform: str = "") -> BuildPlan:
    base = ImageFacts(loaded.config.runtime.base_image, "b" * 64, 5)
    builder = ImageFacts(loaded.config.builder.image, "c" * 64, 6)
    return make_plan(loaded, PlanInputs(base, builder, platform=platform), run_id="r1")


def test_a_single_platform_plan_has_no_platform_input(tmp_path: Path) -> None:
    plan = plan_of(target(tmp_path))
    assert all("platform" not in unit.inputs for unit in plan.units)


def test_the_platform_is_an_input_of_every_unit(tmp_path: Path) -> None:
    loaded = target(tmp_path)
    single, arm = plan_of(loaded), plan_of(loaded, "linux/arm64")
    assert all(unit.inputs["platform"] == "linux/arm64" for unit in arm.units)
    assert {u.hash for u in single.units}.isdisjoint({u.hash for u in arm.units})
    assert plan_of(loaded, "linux/amd64").runtime.hash != arm.runtime.hash


# --- the manifest list ----------------------------------------------------------------------


class ListRunner(FakeRunner):
    """The fake store plus manifest lists: name -> entries."""

    lists: dict[str, list[dict[str, object]]]

    def _buildah(self, sub: str, args: list[str]) -> str:
        self.__dict__.setdefault("lists", {})
        if sub == "inspect":
            answer = json.loads(super()._buildah(sub, args))
            answer["FromImageDigest"] = "sha256:" + answer["FromImageID"][:8]
            return json.dumps(answer)
        if sub != "manifest":
            return super()._buildah(sub, args)
        action, rest = args[0], args[1:]
        if action == "create":
            self.lists[rest[-1]] = []
            self.images[rest[-1]] = f"list{len(self.calls)}"
            return self.images[rest[-1]] + "\n"
        if action == "add":
            arch = rest[rest.index("--arch") + 1]
            image = rest[-1].removeprefix("containers-storage:")
            entry = {
                "digest": "sha256:" + image[:8],
                "platform": {"os": "linux", "architecture": arch},
            }
            self.lists[rest[-2]].append(entry)
            return ""
        if action == "inspect":
            name = rest[-1]  # a list's ID: one of its names
            name = next((n for n, i in self.images.items() if i == name and n in self.lists), name)
            if name not in self.lists:
                raise ToolError("manifest is of type application/vnd.oci... (not a list type)")
            return json.dumps({"manifests": self.lists[name]})
        if action == "rm":
            self.images.pop(rest[-1], None)
            return ""
        return ""

    def _name(self, ref: str, image_id: str) -> None:
        for name, value in list(self.images.items()):
            if value == image_id and name in self.lists:
                self.lists[ref] = self.lists[name]
        super()._name(ref, image_id)


def test_the_list_is_made_once_and_left_alone_when_nothing_changed(tmp_path: Path) -> None:
    runner = ListRunner(tmp_path, images={"amd": "a" * 64, "arm": "e" * 64})
    buildah = Buildah(runner)
    images = [(AMD64, "a" * 64), (ARM64, "e" * 64)]
    first = tag_manifest_list(
        buildah, print, "localhost/q/out:latest", images, target="t", run_id="r"
    )
    assert first.changed
    assert [e.platform for e in first.entries] == ["linux/amd64", "linux/arm64"]
    assert runner.images["localhost/q/out:latest"] == first.list_id
    assert "localhost/qjson-tasks/unit/unverified-list:t-r" not in runner.images
    adds = [c for c in runner.calls if c[1:3] == ["manifest", "add"]]
    assert [c[c.index("--arch") + 1] for c in adds] == ["amd64", "arm64"]
    runner.calls.clear()
    again = tag_manifest_list(
        buildah, print, "localhost/q/out:latest", images, target="t", run_id="r"
    )
    assert not again.changed
    assert not [c for c in runner.calls if c[1:3] == ["manifest", "create"]]
    # Asked by ID: by name, buildah would ask a registry about a plain image.
    assert ["buildah", "manifest", "inspect", first.list_id] in runner.calls


def test_a_failed_add_leaves_the_tag_and_removes_the_new_list(tmp_path: Path) -> None:
    runner = ListRunner(
        tmp_path,
        images={"localhost/q/out:latest": "o" * 64, "amd": "a" * 64},
        fail_on=lambda argv: argv[1:3] == ["manifest", "add"],
    )
    with pytest.raises(ToolError):
        tag_manifest_list(
            Buildah(runner), print, "localhost/q/out:latest", [(AMD64, "a" * 64)],
            target="t", run_id="r",
        )  # fmt: skip
    assert runner.images["localhost/q/out:latest"] == "o" * 64
    assert ["buildah", "manifest", "rm", "localhost/qjson-tasks/unit/unverified-list:t-r"] in (
        runner.calls
    )


# --- the arch check -------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs the host's gcc")
def test_the_arch_check_names_a_library_of_another_machine(tmp_path: Path) -> None:
    import os
    import stat
    from pathlib import PurePosixPath

    from qjson_tasks.host.answers import ImageInfo
    from qjson_tasks.verify.checks import check_arch

    root = tmp_path / "root"
    lib = root / "usr/local/lib/lua/5.1/qjson.so"
    lib.parent.mkdir(parents=True)
    source = tmp_path / "q.c"
    source.write_text("int qjson_parse(void) { return 0; }\n")
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(lib), str(source)], check=True)
    (root / "usr/local/share").mkdir(parents=True)
    (root / "usr/local/share/qjson.lua").write_text("return {}\n")
    added = [
        (PurePosixPath("/") / p.relative_to(root).as_posix(), p.lstat())
        for p in sorted(root.rglob("*"))
    ]
    assert any(stat.S_ISREG(info.st_mode) for _, info in added)
    host = host_platform()
    image = ImageInfo("i", "", 0, os="linux", architecture=host.architecture)
    good = check_arch(root, added, image)
    assert good.passed, good.detail
    assert good.detail.startswith("1 ELF files added, all ")
    other = "arm64" if host.architecture != "arm64" else "amd64"
    bad = check_arch(root, added, ImageInfo("i", "", 0, os="linux", architecture=other))
    assert not bad.passed
    wanted = "AArch64, 64-bit" if other == "arm64" else "x86-64, 64-bit"
    assert bad.findings == (
        f"/usr/local/lib/lua/5.1/qjson.so is {'x86-64' if other == 'arm64' else 'AArch64'},"
        f" 64-bit, the image is linux/{other} ({wanted})",
    )
    unknown = check_arch(root, added, ImageInfo("i", "", 0, os="linux", architecture="mips"))
    # Not a failure on a machine this check can't judge (smoke still loads qjson.so there).
    assert unknown.passed and unknown.detail.startswith("not checked: ")
    assert "linux/mips is not one this check knows" in unknown.detail
    assert os.path.exists(lib)


# --- plan and Containerfile -----------------------------------------------------------------


def test_the_containerfile_says_how_to_build_every_platform(tmp_path: Path) -> None:
    from qjson_tasks.build.containerfile import render

    loaded = target(tmp_path, ("output.platforms", ["linux/amd64", "linux/arm64"]))
    text = render(loaded, tmp_path)
    assert (
        "#   buildah build --platform linux/amd64,linux/arm64 --manifest"
        " localhost/qjson-tasks/test:latest -f <this file> ."
    ) in text
    assert "--platform" not in render(target(tmp_path / "single"), tmp_path)


@ON_AMD64
def test_plan_prints_each_platforms_units(tmp_path: Path) -> None:
    import tomllib

    from qjson_tasks.app.tools import Tools
    from qjson_tasks.app.units import plan_toml

    loaded = target(tmp_path, ("output.platforms", ["linux/amd64", "linux/arm64"]))
    runner = FakeRunner(tmp_path)
    document = tomllib.loads(plan_toml(loaded, Tools(runner, Buildah(runner))))
    assert document["manifest_list"] == ["linux/amd64", "linux/arm64"]
    assert document["output"] == "localhost/qjson-tasks/test:latest"
    arm = document["platforms"]["linux/arm64"]
    assert arm["output"] == "localhost/qjson-tasks/test:latest-linux-arm64"
    assert arm["units"]["builder"]["inputs"]["platform"] == "linux/arm64"
    assert arm["units"]["builder"]["inputs"]["image"]["ref"].endswith(":1-bookworm-linux-arm64")
    single = tomllib.loads(plan_toml(target(tmp_path / "one"), Tools(runner, Buildah(runner))))
    assert "platforms" not in single and "platform" not in single["units"]["builder"]["inputs"]


@ON_AMD64
def test_show_names_each_platforms_images(tmp_path: Path) -> None:
    from qjson_tasks.app.targets import show_target

    loaded = target(tmp_path, ("output.platforms", ["linux/amd64", "linux/arm64"]))
    text = show_target(loaded)
    assert 'platforms = [\n    "linux/amd64",\n    "linux/arm64",\n]' in text
    assert (
        "#   linux/arm64: localhost/qjson-tasks/test:latest-linux-arm64 (base"
        " docker.io/library/debian:bookworm-slim-linux-arm64, builder"
        " docker.io/library/rust:1-bookworm-linux-arm64)"
    ) in text
    assert "manifest list" not in show_target(target(tmp_path / "one"))


# --- what a killed multi-platform run leaves ------------------------------------------------


def test_a_dead_runs_temporary_list_goes_with_manifest_rm(tmp_path: Path) -> None:
    from qjson_tasks.build.names import is_run_image, temporary_list
    from qjson_tasks.build.sweep import sweep_dead_runs

    run_dir = tmp_path / "runs"
    run_dir.mkdir()
    (run_dir / "c04cc4c9.run").write_text("4242\n")  # nobody holds its lock
    listed = temporary_list("offline", "c04cc4c9")
    assert is_run_image(listed, "c04cc4c9") and not is_run_image(listed, "1a2b3c4d")
    runner = FakeRunner(tmp_path, images={listed: "l" * 64})
    lines: list[str] = []
    sweep_dead_runs(Buildah(runner), lines.append, run_dir)
    assert ["buildah", "manifest", "rm", listed] in runner.calls
    assert ["buildah", "rmi", listed] not in runner.calls  # rmi would remove an image it holds
    assert lines == ["removed 1 image left by an interrupted run (c04cc4c9)"]


def test_a_pull_for_another_platform_gives_the_shared_name_back_also_when_interrupted(
    tmp_path: Path,
) -> None:
    from qjson_tasks.build.images import pull_for_platform

    source = "docker.io/library/debian:bookworm"
    local = "docker.io/library/debian:bookworm-linux-arm64"
    tags: list[list[str]] = []

    def first_tag(argv: list[str]) -> bool:
        if argv[:2] == ["buildah", "tag"]:
            tags.append(argv)
            return len(tags) == 1  # Ctrl-C while naming the pulled image
        return False

    runner = FakeRunner(
        tmp_path, images={source: "amd64-id"}, pulled_ids={source: "arm64-id"},
        interrupt_on=first_tag,
    )  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        pull_for_platform(Buildah(runner), source, local, "linux/arm64")
    assert runner.images[source] == "amd64-id"  # the host's image keeps its name

    runner = FakeRunner(tmp_path, pulled_ids={source: "arm64-id"})
    assert pull_for_platform(Buildah(runner), source, local, "linux/arm64") == "arm64-id"
    assert runner.images == {local: "arm64-id"}  # no host name left on the arm64 image
