"""Plant one fault per image in the good offline image: exactly the matching check fails.

A verification that never fails proves nothing. Each fault below is made in a copy of the
good image (the session's `derive` fixture) and the whole verification runs on it; the test
asserts the exact set of failing checks, so a fault that trips a second check, or a check
that stops noticing its fault, both show up. Where a fault cannot honestly be isolated to a
single check, the expected set has more than one name and the fault's `why` says why.

Every derived image is built and verified at most once per module (see `verified`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pytest

from qjson_tasks.app.tools import Tools
from qjson_tasks.app.verify import run_verify, write_json_report
from qjson_tasks.build.pipeline import BuildResult
from qjson_tasks.config.model import Target
from qjson_tasks.host.buildah import Buildah
from qjson_tasks.verify.checks import CHECKS
from qjson_tasks.verify.elf import read_elf
from qjson_tasks.verify.report import VerifyReport
from qjson_tasks.verify.smoke import default_smoke_script

NOT = "was added over the base but is not in the SBOM"
GONE = "is in the SBOM but the image did not add it"

LUA_SHARE = "usr/local/share/lua/5.1"
LUA_LIB = "usr/local/lib/lua/5.1"
ROCK_DIR = "usr/local/lib/luarocks/rocks-5.1/qjson-demo/0.1.0-1"
# The offline target's base is Debian bookworm (config/offline.toml): glibc 2.36.
IMAGE_GLIBC = "2.36"
PROBE = "qjson_probe.so"


# --- helper libraries built with the host's gcc ----------------------------------------------


class Probes:
    """Small shared libraries that load fine on the host but not in the image.

    They go into the image next to the real qjson.so, which keeps loading, so the smoke test
    is unaffected and only native-libs can notice them.
    """

    NEWER_GLIBC_MAP = "GLIBC_2.99 { global: qjson_probe_new; local: *; };\n"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    def _gcc(self, out: Path, source: str, *args: str) -> Path:
        if shutil.which("gcc") is None:
            pytest.skip("needs the host's gcc to build the probe libraries")
        out.parent.mkdir(parents=True, exist_ok=True)
        src = out.with_name(out.name + ".c")
        src.write_text(source)
        cmd = ["gcc", "-shared", "-fPIC", "-o", str(out), str(src), *args]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        return out

    @cached_property
    def needs_missing_lib(self) -> Path:
        """DT_NEEDED libnothere.so; the stub it was linked against is never shipped."""
        stub = self._gcc(
            self.workdir / "stub" / "libnothere.so", "int nothere(void) { return 1; }\n"
        )
        return self._gcc(
            self.workdir / "missing" / PROBE,
            "int nothere(void);\nint probe(void) { return nothere(); }\n",
            f"-L{stub.parent}",
            "-lnothere",
        )

    @cached_property
    def needs_newer_glibc(self) -> Path:
        """Requires version GLIBC_2.99 from libc.so.6 (in .gnu.version_r), via a stub libc."""
        fake = self.workdir / "fakelibc"
        fake.mkdir(parents=True, exist_ok=True)
        (fake / "libc.map").write_text(self.NEWER_GLIBC_MAP)
        libc = self._gcc(
            fake / "libc.so.6",
            "int qjson_probe_new(void) { return 0; }\n",
            "-nostdlib",
            "-Wl,-soname,libc.so.6",
            f"-Wl,--version-script={fake / 'libc.map'}",
        )
        return self._gcc(
            self.workdir / "newglibc" / PROBE,
            "int qjson_probe_new(void);\nint probe(void) { return qjson_probe_new(); }\n",
            "-nostdlib",
            str(libc),
        )


@dataclass
class Kit:
    """What a fault's mutate function gets besides the mounted root and the container."""

    buildah: Buildah
    probes: Probes


Mutate = Callable[[Path, str, Kit], None]


@dataclass(frozen=True)
class Fault:
    name: str
    mutate: Mutate
    fails: frozenset[str]
    # (check, text): the check's detail and its findings must both contain the text.
    names: tuple[tuple[str, str], ...]
    why: str = ""  # why more than one check fails, when it does


# --- the mutations -------------------------------------------------------------------------


def write_file(root: Path, path: str, text: str, mode: int = 0o644) -> Path:
    host = root / path.lstrip("/")
    host.parent.mkdir(parents=True, exist_ok=True)
    host.write_text(text)
    host.chmod(mode)
    return host


def fake_cargo(root: Path, ctr: str, kit: Kit) -> None:
    write_file(root, "/usr/local/bin/cargo", "#!/bin/sh\nexit 0\n", 0o755)


def rustup_home(root: Path, ctr: str, kit: Kit) -> None:
    (root / "root" / ".rustup").mkdir(mode=0o755)


def rustlib_dir(root: Path, ctr: str, kit: Kit) -> None:
    (root / "usr/local/lib/rustlib").mkdir(mode=0o755)


def cargo_home_env(root: Path, ctr: str, kit: Kit) -> None:
    kit.buildah.config(ctr, env={"CARGO_HOME": "/opt/cargo"})


def remove_table_lua(root: Path, ctr: str, kit: Kit) -> None:
    (root / LUA_SHARE / "qjson" / "table.lua").unlink()


def remove_rockspec(root: Path, ctr: str, kit: Kit) -> None:
    (root / ROCK_DIR / "qjson-demo-0.1.0-1.rockspec").unlink()


def tamper_qjson_lua(root: Path, ctr: str, kit: Kit) -> None:
    with (root / LUA_SHARE / "qjson.lua").open("a") as stream:
        stream.write("-- tampered after install\n")


def ship_probe(root: Path, library: Path) -> None:
    """Install `library` as lib/qjson_probe.so and list it in the rock's rock_manifest."""
    target = root / LUA_LIB / PROBE
    shutil.copyfile(library, target)
    target.chmod(0o755)
    md5 = hashlib.md5(library.read_bytes(), usedforsecurity=False).hexdigest()
    manifest = root / ROCK_DIR / "rock_manifest"
    text = manifest.read_text()
    entry = re.compile(r"(\n\s*lib = \{\n)")
    assert entry.search(text), f"no lib table in the rock_manifest:\n{text}"
    manifest.write_text(entry.sub(rf'\1      ["{PROBE}"] = "{md5}",\n', text, count=1))


def probe_missing_lib(root: Path, ctr: str, kit: Kit) -> None:
    ship_probe(root, kit.probes.needs_missing_lib)


def probe_newer_glibc(root: Path, ctr: str, kit: Kit) -> None:
    ship_probe(root, kit.probes.needs_newer_glibc)


def unreadable_qjson_so(root: Path, ctr: str, kit: Kit) -> None:
    (root / LUA_LIB / "qjson.so").chmod(0o600)


def world_writable_lua(root: Path, ctr: str, kit: Kit) -> None:
    (root / LUA_SHARE / "qjson.lua").chmod(0o666)


def setuid_qjson_so(root: Path, ctr: str, kit: Kit) -> None:
    (root / LUA_LIB / "qjson.so").chmod(0o4755)


def app_owned_lua(root: Path, ctr: str, kit: Kit) -> None:
    os.chown(root / LUA_SHARE / "qjson.lua", 636, 1000)  # the image's `app` user


def build_dir(root: Path, ctr: str, kit: Kit) -> None:
    (root / LUA_LIB / "target").mkdir(mode=0o755)


def object_file(root: Path, ctr: str, kit: Kit) -> None:
    write_file(root, f"/{LUA_LIB}/qjson.o", "\x7fELF not really\n")


def netrc(root: Path, ctr: str, kit: Kit) -> None:
    write_file(root, "/usr/local/share/.netrc", "machine example.org login u password p\n", 0o600)


def cargo_credentials(root: Path, ctr: str, kit: Kit) -> None:
    write_file(root, "/root/.cargo/credentials.toml", '[registry]\ntoken = "x"\n', 0o600)


def user_root(root: Path, ctr: str, kit: Kit) -> None:
    kit.buildah.config(ctr, user="root")


def change_tree_manifest(root: Path, ctr: str, kit: Kit) -> None:
    """A file changed after the SBOM was written that no other check reads byte for byte:
    the tree's luarocks manifest, still valid Lua with the same rocks."""
    with (root / "usr/local/lib/luarocks/rocks-5.1/manifest").open("a") as stream:
        stream.write("-- changed after the SBOM was written\n")


def leftover_build_rock(root: Path, ctr: str, kit: Kit) -> None:
    """A rock only a build needed, left in the tree (as luarocks leaves build_dependencies):
    its module, rock_manifest and rockspec, and its entries in the tree's manifest."""
    rocks = root / "usr/local/lib/luarocks/rocks-5.1"
    module = "return {}\n"
    write_file(root, "/usr/local/share/lua/5.1/qjt_buildtool.lua", module)
    md5 = hashlib.md5(module.encode()).hexdigest()
    write_file(
        root,
        "/usr/local/lib/luarocks/rocks-5.1/qjt-buildtool/1.0-1/rock_manifest",
        f'rock_manifest = {{ lua = {{ ["qjt_buildtool.lua"] = "{md5}" }} }}\n',
    )
    write_file(
        root,
        "/usr/local/lib/luarocks/rocks-5.1/qjt-buildtool/1.0-1/qjt-buildtool-1.0-1.rockspec",
        'package = "qjt-buildtool"\nversion = "1.0-1"\n',
    )
    manifest = rocks / "manifest"
    text = manifest.read_text()
    entry = '   ["qjt-buildtool"] = { ["1.0-1"] = { { arch = "installed" } } },\n'
    text = text.replace("repository = {\n", "repository = {\n" + entry, 1)
    text = text.replace(
        "dependencies = {\n", 'dependencies = {\n   ["qjt-buildtool"] = { ["1.0-1"] = {} },\n', 1
    )
    manifest.write_text(text)


FAULTS = [
    Fault(
        "changed-after-sbom",
        change_tree_manifest,
        frozenset({"sbom"}),
        (("sbom", "/usr/local/lib/luarocks/rocks-5.1/manifest has sha256 "),),
    ),
    Fault(
        "leftover-build-only-rock",
        leftover_build_rock,
        frozenset({"rocks", "sbom"}),
        (
            ("rocks", "qjt-buildtool 1.0-1 is installed but no rock needs it at runtime"),
            ("sbom", f"/usr/local/lib/luarocks/rocks-5.1/qjt-buildtool/1.0-1/rock_manifest {NOT}"),
        ),
        why="the leftover rock's files are files the image's SBOM never listed",
    ),
    Fault(
        "cargo-executable",
        fake_cargo,
        frozenset({"no-rust", "sbom"}),
        (
            ("no-rust", "Rust executable /usr/local/bin/cargo"),
            ("sbom", f"/usr/local/bin/cargo {NOT}"),
        ),
        why="a planted executable is a file the SBOM doesn't list",
    ),
    Fault(
        "rustup-home",
        rustup_home,
        frozenset({"no-rust"}),
        (("no-rust", "Rust home directory /root/.rustup"),),
    ),
    Fault(
        "rustlib-dir",
        rustlib_dir,
        frozenset({"no-rust"}),
        (("no-rust", "Rust standard library /usr/local/lib/rustlib"),),
    ),
    Fault(
        "cargo-home-env",
        cargo_home_env,
        frozenset({"no-rust", "contract"}),
        (
            ("no-rust", "env CARGO_HOME=/opt/cargo"),
            ("contract", 'Env is ["PATH='),
            ("contract", '"CARGO_HOME=/opt/cargo"]'),
        ),
        why="the image's Env is part of the contract with the base, so any env change fails it",
    ),
    Fault(
        "missing-table-lua",
        remove_table_lua,
        frozenset({"artifacts", "smoke", "sbom"}),
        (
            ("artifacts", "missing /usr/local/share/lua/5.1/qjson/table.lua"),
            ("smoke", "qjson.lua:141: module 'qjson.table' not found"),
            ("sbom", f"/{LUA_SHARE}/qjson/table.lua {GONE}"),
        ),
        why=(
            "qjson.lua requires qjson.table at load time, so require('qjson') fails without"
            " it; and the SBOM lists the removed file"
        ),
    ),
    Fault(
        "missing-rockspec",
        remove_rockspec,
        frozenset({"artifacts", "sbom"}),
        # Tokens only: see test_artifact_findings_read_as_messages for the wording.
        (
            ("artifacts", f"/{ROCK_DIR}/qjson-demo-0.1.0-1.rockspec"),
            ("artifacts", "missing"),
            ("sbom", f"/{ROCK_DIR}/qjson-demo-0.1.0-1.rockspec {GONE}"),
        ),
        why="the SBOM lists every file the image added, the removed rockspec too",
    ),
    Fault(
        "tampered-qjson-lua",
        tamper_qjson_lua,
        frozenset({"artifacts", "sbom"}),
        (
            ("artifacts", "/usr/local/share/lua/5.1/qjson.lua"),
            ("artifacts", "md5 mismatch"),
            ("artifacts", "7b8e74299a18b1c0c0ed6df6cec7f26c"),  # the md5 in the rock_manifest
            ("sbom", f"/{LUA_SHARE}/qjson.lua has sha256 "),
        ),
        why="the SBOM records every added file's sha256, so a changed file differs from it too",
    ),
    Fault(
        "needs-missing-lib",
        probe_missing_lib,
        frozenset({"native-libs", "sbom"}),
        (
            (
                "native-libs",
                f"/{LUA_LIB}/{PROBE}: needs libnothere.so, which is missing from the image",
            ),
            ("sbom", f"/{LUA_LIB}/{PROBE} {NOT}"),
        ),
        why="a planted library is a file the SBOM doesn't list",
    ),
    Fault(
        "needs-newer-glibc",
        probe_newer_glibc,
        frozenset({"native-libs", "sbom"}),
        (
            (
                "native-libs",
                f"/{LUA_LIB}/{PROBE}: needs GLIBC_2.99 but the image has glibc {IMAGE_GLIBC}",
            ),
            ("sbom", f"/{LUA_LIB}/{PROBE} {NOT}"),
        ),
        why="a planted library is a file the SBOM doesn't list",
    ),
    Fault(
        "unreadable-qjson-so",
        unreadable_qjson_so,
        frozenset({"smoke"}),
        (
            ("smoke", '/usr/bin/luajit: qjson smoke: require("qjson") failed'),
            # qjson.lib tried the unreadable file (its last error is about a later candidate).
            ("smoke", "failed to load native library qjson; tried"),
            ("smoke", "/usr/local/lib/lua/5.1/qjson.so,"),
        ),
    ),
    Fault(
        "world-writable-lua",
        world_writable_lua,
        frozenset({"hygiene"}),
        (("hygiene", "/usr/local/share/lua/5.1/qjson.lua is world-writable (-rw-rw-rw-)"),),
    ),
    Fault(
        "setuid-qjson-so",
        setuid_qjson_so,
        frozenset({"hygiene"}),
        (("hygiene", f"/{LUA_LIB}/qjson.so is setuid/setgid (-rwsr-xr-x)"),),
    ),
    Fault(
        "app-owned-lua",
        app_owned_lua,
        frozenset({"hygiene"}),
        (("hygiene", "/usr/local/share/lua/5.1/qjson.lua owned by uid 636, not root"),),
    ),
    Fault(
        "build-dir",
        build_dir,
        frozenset({"hygiene"}),
        (("hygiene", f"build directory /{LUA_LIB}/target"),),
    ),
    Fault(
        "object-file",
        object_file,
        frozenset({"hygiene", "sbom"}),
        (
            ("hygiene", f"build leftover /{LUA_LIB}/qjson.o"),
            ("sbom", f"/{LUA_LIB}/qjson.o {NOT}"),
        ),
        why="a planted file is a file the SBOM doesn't list",
    ),
    Fault(
        "netrc",
        netrc,
        frozenset({"hygiene", "sbom"}),
        (
            ("hygiene", "credential file /usr/local/share/.netrc"),
            ("sbom", f"/usr/local/share/.netrc {NOT}"),
        ),
        why="a planted file is a file the SBOM doesn't list",
    ),
    Fault(
        "cargo-credentials",
        cargo_credentials,
        frozenset({"no-rust", "hygiene", "sbom"}),
        (
            ("no-rust", "Rust home directory /root/.cargo"),
            ("hygiene", "credential file /root/.cargo/credentials.toml"),
            ("sbom", f"/root/.cargo/credentials.toml {NOT}"),
        ),
        why=(
            "cargo's credentials live in ~/.cargo, which is itself a Rust home directory; and"
            " the planted file is not in the SBOM"
        ),
    ),
    Fault(
        "user-root",
        user_root,
        frozenset({"contract"}),
        (
            ("contract", "User is 'root', the target expects 'app'"),
            ("contract", 'User is "root", base has "app"'),
        ),
    ),
]


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kit(buildah: Buildah, tmp_path_factory: pytest.TempPathFactory) -> Kit:
    return Kit(buildah, Probes(tmp_path_factory.mktemp("probes")))


@pytest.fixture(scope="module")
def verified(
    derive: Callable[..., str],
    kit: Kit,
    offline_target: Target,
    tools: Tools,
) -> Callable[[Fault], tuple[str, VerifyReport]]:
    """Derive a fault's image and verify it, once per fault: (image ref, report)."""
    cache: dict[str, tuple[str, VerifyReport]] = {}

    def get(fault: Fault) -> tuple[str, VerifyReport]:
        if fault.name not in cache:
            ref = derive(f"fault-{fault.name}", lambda root, ctr: fault.mutate(root, ctr, kit))
            cache[fault.name] = (ref, run_verify(offline_target, tools, image=ref))
        return cache[fault.name]

    return get


@pytest.fixture(scope="module")
def good_report(built: BuildResult, offline_target: Target, tools: Tools) -> VerifyReport:
    return run_verify(offline_target, tools, image=built.image_ref)


def fault_named(name: str) -> Fault:
    return next(fault for fault in FAULTS if fault.name == name)


def outcome(report: VerifyReport) -> dict[str, bool]:
    return {check.name: check.passed for check in report.checks}


# --- tests ---------------------------------------------------------------------------------


def test_good_image_passes_every_check(good_report: VerifyReport, built: BuildResult) -> None:
    assert tuple(check.name for check in good_report.checks) == CHECKS
    assert good_report.passed, good_report.table()
    assert all(check.findings == () for check in good_report.checks)
    details = {check.name: check.detail for check in good_report.checks}
    assert details["native-libs"] == f"1 libraries resolve against the image's glibc {IMAGE_GLIBC}"
    assert details["smoke"] == "/usr/bin/luajit as app: qjson smoke ok: model=gpt-4o n=42"
    assert "qjson-demo 0.1.0-1" in details["artifacts"]
    assert good_report.image == built.image_ref
    assert good_report.image_id == built.image_id


@pytest.mark.parametrize("fault", FAULTS, ids=[fault.name for fault in FAULTS])
def test_fault_fails_exactly_its_check(
    fault: Fault, verified: Callable[[Fault], tuple[str, VerifyReport]]
) -> None:
    ref, report = verified(fault)
    assert report.image == ref
    assert tuple(check.name for check in report.checks) == CHECKS
    expected = {name: name not in fault.fails for name in CHECKS}
    assert outcome(report) == expected, report.table()
    assert not report.passed
    checks = {check.name: check for check in report.checks}
    for name, text in fault.names:
        check = checks[name]
        assert text in check.detail, f"{name} detail: {check.detail}"
        assert any(text in finding for finding in check.findings), check.findings
    for name in CHECKS:
        if name not in fault.fails:
            assert checks[name].findings == (), f"{name}: {checks[name].findings}"
    # The table a user reads lists each failing check and its findings.
    table = report.table()
    for name in fault.fails:
        assert re.search(rf"^{re.escape(name)}\s+FAIL\s", table, re.MULTILINE), table
        assert f"  {name}: " in table


# The readable FileProblem.message lines the rock_manifest check is meant to report.
ARTIFACT_MESSAGES = {
    "missing-rockspec": (
        f"/{ROCK_DIR}/qjson-demo-0.1.0-1.rockspec (qjson-demo-0.1.0-1.rockspec): missing"
    ),
    "tampered-qjson-lua": (
        "/usr/local/share/lua/5.1/qjson.lua (lua/qjson.lua): md5 mismatch: rock_manifest says"
        " 7b8e74299a18b1c0c0ed6df6cec7f26c, the file has "
    ),
}


@pytest.mark.parametrize("name", sorted(ARTIFACT_MESSAGES))
def test_artifact_findings_read_as_messages(
    name: str, verified: Callable[[Fault], tuple[str, VerifyReport]]
) -> None:
    fault = fault_named(name)
    _, report = verified(fault)
    [artifacts] = [check for check in report.checks if check.name == "artifacts"]
    assert [f[: len(ARTIFACT_MESSAGES[name])] for f in artifacts.findings] == [
        ARTIFACT_MESSAGES[name]
    ]
    assert "FileProblem(" not in artifacts.detail


def smoke_of(report: VerifyReport) -> tuple[str, tuple[str, ...]]:
    [smoke] = [check for check in report.checks if check.name == "smoke"]
    return smoke.detail, smoke.findings


@pytest.mark.parametrize("name", ["unreadable-qjson-so", "missing-table-lua"])
def test_smoke_detail_is_the_lua_error_line(
    name: str, verified: Callable[[Fault], tuple[str, VerifyReport]]
) -> None:
    fault = fault_named(name)
    detail, findings = smoke_of(verified(fault)[1])
    errors = [line for line in findings if line.startswith("/usr/bin/luajit: qjson smoke: ")]
    assert errors, findings
    assert detail == f"/usr/bin/luajit as app failed: {errors[0].strip()}"


def test_smoke_findings_are_the_output_not_the_script(
    verified: Callable[[Fault], tuple[str, VerifyReport]],
) -> None:
    fault = fault_named("unreadable-qjson-so")
    _, findings = smoke_of(verified(fault)[1])
    script = {line.strip() for line in default_smoke_script().splitlines() if line.strip()}
    assert [line for line in findings if line.strip() in script] == []


def test_native_lib_findings_name_the_library_once(
    verified: Callable[[Fault], tuple[str, VerifyReport]],
) -> None:
    fault = fault_named("needs-missing-lib")
    [native] = [c for c in verified(fault)[1].checks if c.name == "native-libs"]
    assert native.findings == (
        f"/{LUA_LIB}/{PROBE}: needs libnothere.so, which is missing from the image",
    )


def test_multi_check_faults_say_why() -> None:
    for fault in FAULTS:
        assert (len(fault.fails) > 1) == bool(fault.why), fault.name


def test_probes_really_need_what_the_image_lacks(kit: Kit) -> None:
    # The controls for the native-libs faults: the planted libraries carry the faults
    # (read from the ELF files on the host, independent of the image).
    missing = read_elf(kit.probes.needs_missing_lib)
    newer = read_elf(kit.probes.needs_newer_glibc)
    assert missing is not None and "libnothere.so" in missing.needed
    assert newer is not None and newer.needed == ("libc.so.6",)
    assert newer.max_glibc_needed == "GLIBC_2.99"


def test_json_report_of_the_good_image(
    good_report: VerifyReport, built: BuildResult, tmp_path: Path
) -> None:
    path = tmp_path / "good.json"
    write_json_report(good_report, str(path))
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data == json.loads(json.dumps(good_report.to_json()))
    assert set(data) == {"image", "image_id", "target", "passed", "checks", "provenance"}
    assert data["image"] == built.image_ref
    assert data["image_id"] == built.image_id and re.fullmatch(r"[0-9a-f]{64}", data["image_id"])
    assert data["target"] == "offline"
    assert data["passed"] is True
    assert [c["name"] for c in data["checks"]] == list(CHECKS)
    for check in data["checks"]:
        assert set(check) == {"name", "passed", "detail", "findings"}
        assert check["passed"] is True and check["findings"] == [] and check["detail"]


def test_json_report_of_a_faulty_image(
    verified: Callable[[Fault], tuple[str, VerifyReport]],
    buildah: Buildah,
    tmp_path: Path,
) -> None:
    fault = fault_named("world-writable-lua")
    ref, report = verified(fault)
    path = tmp_path / "faulty.json"
    write_json_report(report, str(path))
    raw = path.read_text(encoding="utf-8")
    assert raw.endswith("}\n")
    data = json.loads(raw)
    assert data["image"] == ref
    assert data["image_id"] == buildah.image_id(ref)
    assert data["passed"] is False
    by_name = {c["name"]: c for c in data["checks"]}
    assert [name for name, c in by_name.items() if not c["passed"]] == ["hygiene"]
    hygiene = by_name["hygiene"]
    assert hygiene["findings"] == [
        "/usr/local/share/lua/5.1/qjson.lua is world-writable (-rw-rw-rw-)"
    ]
    assert hygiene["detail"] == hygiene["findings"][0]
