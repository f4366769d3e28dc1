"""Issue 17: the offline target for linux/amd64 and linux/arm64, one manifest list.

The arm64 half runs under emulation (qemu-user-static through binfmt_misc; ./run.sh sets it
up as root): its base is made with `debootstrap --arch=arm64`, its builder installs Debian's
arm64 cargo and rustc, the demo rock is compiled for AArch64 and smoke-tested by the arm64
LuaJIT. Both platforms are built once per session (the `two_platforms` fixture); the tests
read that build, build it again, and plant an amd64 qjson.so in a copy of the arm64 image.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from qjson_tasks.app.build import MultiBuildResult, run_platform_builds
from qjson_tasks.app.publish import push_request, run_publish
from qjson_tasks.app.publish_list import ListPublishResult, format_list_result
from qjson_tasks.app.targets import resolve_target
from qjson_tasks.app.tools import Tools
from qjson_tasks.app.units import current_plan
from qjson_tasks.app.verify import run_verify
from qjson_tasks.build.labels import SBOM_LABEL
from qjson_tasks.build.names import container_name
from qjson_tasks.build.platforms import platform_view
from qjson_tasks.config.model import Target
from qjson_tasks.config.platforms import parse_platform
from qjson_tasks.errors import QjsonTasksError
from qjson_tasks.host.buildah import Buildah
from qjson_tasks.host.emulation import emulation_problem
from qjson_tasks.sbom.store import stored_path
from qjson_tasks.verify.checks import CHECKS
from qjson_tasks.verify.elf import read_elf
from tests.fixtures.registry import Registry, missing_tools
from tests.integration.conftest import SUFFIX, derive_image, retarget

AMD64 = parse_platform("linux/amd64")
ARM64 = parse_platform("linux/arm64")
PLATFORMS = (AMD64, ARM64)
QJSON_SO = "usr/local/lib/lua/5.1/qjson.so"
ROCK_MANIFEST = "usr/local/lib/luarocks/rocks-5.1/qjson-demo/0.1.0-1/rock_manifest"
# What each platform's files are (ELF e_machine) and what its LuaJIT says it runs on.
EXPECTED = {AMD64: ("EM_X86_64", "x64"), ARM64: ("EM_AARCH64", "arm64")}


@pytest.fixture(scope="session")
def platforms_target() -> Target:
    target = retarget(resolve_target("offline"), "platforms")
    output = target.config.output.model_copy(update={"platforms": ("linux/amd64", "linux/arm64")})
    return Target(target.name, target.path, target.config.model_copy(update={"output": output}))


@pytest.fixture(scope="session")
def two_platforms(platforms_target: Target, tools: Tools) -> Iterator[MultiBuildResult]:
    """Both platforms built, verified and listed (the arm64 base and builder too, when
    missing: the expensive, emulated part, once per session)."""
    problem = emulation_problem(ARM64)
    if problem:
        pytest.skip(f"arm64 can't run here: {problem}")
    started = time.monotonic()
    result = run_platform_builds(platforms_target, tools, PLATFORMS)
    print(f"two-platform build: {time.monotonic() - started:.0f} s", file=sys.stderr)
    yield result
    # A list goes with `manifest rm`: `rmi` of its name would remove an image it holds.
    tools.buildah.manifest_rm_quietly(result.image_ref)


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_in_image(buildah: Buildah, image: str, path: str) -> bytes:
    name = container_name(f"read-{SUFFIX}", "platforms")
    with buildah.container(image, name) as ctr, buildah.mounted(ctr) as root:
        return (root / path).read_bytes()


def jit_arch(buildah: Buildah, image: str) -> str:
    name = container_name(f"jit-{SUFFIX}", "platforms")
    with buildah.container(image, name) as ctr:
        return buildah.run(ctr, ["luajit", "-e", "print(jit.arch)"], stream=False).strip()


def test_two_platforms_give_a_list_of_two_verified_images(
    two_platforms: MultiBuildResult,
    platforms_target: Target,
    tools: Tools,
    buildah: Buildah,
    tmp_path: Path,
) -> None:
    assert two_platforms.manifest is not None
    listed = buildah.manifest_inspect(two_platforms.image_ref)
    assert listed is not None, f"{two_platforms.image_ref} is not a manifest list"
    assert [entry.platform for entry in listed.entries] == ["linux/amd64", "linux/arm64"]
    for (platform, result), entry in zip(two_platforms.platforms, listed.entries, strict=True):
        info = buildah.inspect_image(result.image_id)
        assert info is not None
        assert (info.os, info.architecture) == (platform.os, platform.architecture)
        assert entry.digest == info.digest
        # Verified by this build, or (its units kept from an earlier session) now.
        view = platform_view(platforms_target, platform).target
        report = result.verification or run_verify(view, tools, result.image_id)
        assert report.passed, report.summary()
        checks = {check.name: check for check in report.checks}  # type: ignore[attr-defined]
        assert tuple(checks) == CHECKS
        machine, arch = EXPECTED[platform]
        assert f"{'AArch64' if platform == ARM64 else 'x86-64'}, 64-bit" in checks["arch"].detail
        assert checks["smoke"].detail.startswith("/usr/bin/luajit as app: qjson smoke ok")
        library = tmp_path / f"{platform.suffix}.so"
        library.write_bytes(read_in_image(buildah, result.image_id, QJSON_SO))
        elf = read_elf(library)
        assert elf is not None and (elf.machine, elf.elf_class) == (machine, 64)
        assert jit_arch(buildah, result.image_id) == arch  # the smoke ran under this LuaJIT


def test_a_second_build_changes_nothing(
    two_platforms: MultiBuildResult, platforms_target: Target, tools: Tools
) -> None:
    assert two_platforms.manifest is not None
    again = run_platform_builds(platforms_target, tools, PLATFORMS)
    for (platform, first), (_, second) in zip(
        two_platforms.platforms, again.platforms, strict=True
    ):
        assert second.built == (), f"{platform}: built {second.built}"
        assert second.image_id == first.image_id
        assert second.units == first.units
    assert again.manifest is not None and not again.manifest.changed
    assert again.manifest.list_id == two_platforms.manifest.list_id


def test_an_amd64_library_in_the_arm64_image_fails_arch_and_smoke_only(
    two_platforms: MultiBuildResult, platforms_target: Target, tools: Tools, buildah: Buildah
) -> None:
    """The classic multi-arch bug, made as an amd64 builder would have made it: the arm64
    image holds the amd64 qjson.so, and its rock_manifest and SBOM record that file, so
    only the architecture and the library's loading can tell."""
    results = dict(two_platforms.platforms)
    amd64_so = read_in_image(buildah, results[AMD64].image_id, QJSON_SO)
    arm64 = results[ARM64].image_id
    labels = buildah.inspect_image(arm64).labels  # type: ignore[union-attr]
    written: list[Path] = []

    def plant(root: Path, ctr: str) -> None:
        library, manifest = root / QJSON_SO, root / ROCK_MANIFEST
        old_so, old_manifest = library.read_bytes(), manifest.read_bytes()
        library.write_bytes(amd64_so)
        old_md5, new_md5 = (md5(data) for data in (old_so, amd64_so))
        assert old_md5.encode() in old_manifest
        manifest.write_bytes(old_manifest.replace(old_md5.encode(), new_md5.encode()))
        # The SBOM lists both files by sha256: written again as the build would have.
        document = stored_path(labels[SBOM_LABEL]).read_bytes()
        for before, after in ((old_so, amd64_so), (old_manifest, manifest.read_bytes())):
            old_sha, new_sha = sha256(before), sha256(after)
            assert old_sha.encode() in document
            document = document.replace(old_sha.encode(), new_sha.encode())
        stored = stored_path(sha256(document))
        stored.write_bytes(document)
        written.append(stored)
        buildah.config(ctr, labels={SBOM_LABEL: sha256(document)})

    try:
        image = derive_image(buildah, arm64, "amd64-so-in-arm64", plant)
        view = platform_view(platforms_target, ARM64)
        report = run_verify(view.target, tools, image)
    finally:
        for path in written:
            path.unlink(missing_ok=True)
    failed = {check.name for check in report.failed()}
    assert failed == {"arch", "smoke"}, report.table()
    arch = next(check for check in report.checks if check.name == "arch")
    assert arch.findings == (
        f"/{QJSON_SO} is x86-64, 64-bit, the image is linux/arm64 (AArch64, 64-bit)",
    )


@pytest.mark.skipif(
    bool(missing_tools()),
    reason=f"needs {', '.join(missing_tools())} (run.sh installs docker-registry, apache2-utils)",
)
def test_publish_pushes_the_list_with_every_image_and_checks_each(
    two_platforms: MultiBuildResult, platforms_target: Target, tools: Tools, tmp_path: Path
) -> None:
    with Registry(tmp_path / "registry") as registry:
        to = f"{registry.host}/qjt/platforms:1"
        digest_file = tmp_path / "digest"
        request = push_request(
            platforms_target, to, True, tls_verify=False, digest_file=str(digest_file)
        )
        result = run_publish(platforms_target, tools, request)
        assert isinstance(result, ListPublishResult)
        raw = subprocess.run(
            ["skopeo", "inspect", "--tls-verify=false", "--no-creds", "--raw", f"docker://{to}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    served = json.loads(raw)
    assert "manifest.list" in served["mediaType"] or "image.index" in served["mediaType"]
    listed = {(m["platform"]["architecture"], m["digest"]) for m in served["manifests"]}
    assert digest_file.read_text() == result.pushed.digest + "\n"
    assert [each.platform for each in result.images] == list(PLATFORMS)
    for each, (platform, built) in zip(result.images, two_platforms.platforms, strict=True):
        assert each.image_id == built.image_id
        assert (platform.architecture, each.pushed.digest) in listed
        names = [check.name for check in each.report.checks]
        assert names == ["registry", *CHECKS], each.report.table()
        assert each.report.passed, each.report.table()
    text = format_list_result(result)
    assert text.startswith(f"published {to} (manifest list ")


def test_one_platform_failing_leaves_the_previous_list(
    two_platforms: MultiBuildResult,
    platforms_target: Target,
    tools: Tools,
    buildah: Buildah,
    tmp_path: Path,
) -> None:
    """A smoke script that fails under the arm64 LuaJIT only: amd64 builds and verifies, the
    arm64 image fails, and the output tag keeps the list it had."""
    ref = two_platforms.image_ref
    before = next(i.image_id for i in buildah.images() if ref in i.names)
    script = tmp_path / "smoke.lua"
    script.write_text('if jit.arch == "arm64" then error("planted: fails on arm64") end\n')
    config = platforms_target.config
    verify = config.verify.model_copy(update={"smoke_script": str(script)})
    failing = Target(
        platforms_target.name,
        platforms_target.path,
        config.model_copy(update={"verify": verify}),
    )
    try:
        with pytest.raises(QjsonTasksError, match="planted: fails on arm64"):
            run_platform_builds(failing, tools, PLATFORMS)
        assert next(i.image_id for i in buildah.images() if ref in i.names) == before
        listed = buildah.manifest_inspect(before)
        assert listed is not None and listed == buildah.manifest_inspect(
            two_platforms.manifest.list_id  # type: ignore[union-attr]
        )
    finally:
        # The per-platform tags back on the session's images; the amd64 unit of the failing
        # script (its runtime) removed.
        run_platform_builds(platforms_target, tools, PLATFORMS)
        amd64 = current_plan(platform_view(failing, AMD64).target, tools).runtime.image
        if buildah.image_id(amd64):
            buildah.rmi_quietly(amd64)
