"""The gateway target and its check, with a real nginx, lua-nginx-module and luajit2.

The target is built once per session (`gateway_built`). Each fault is planted in a copy of
its good image (or, for the handler, in a copy of its nginx snippet) and the whole
verification runs on it: exactly the expected checks fail, and where more than one does,
the fault's `why` says why. Two verifications at once each get their own port, also when
both are handed the same one.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from qjson_tasks.app.tools import Tools
from qjson_tasks.app.verify import run_verify
from qjson_tasks.build.pipeline import BuildResult
from qjson_tasks.config.model import Target
from qjson_tasks.host import loopback
from qjson_tasks.host.buildah import Buildah
from qjson_tasks.verify.checks import CHECKS as VERIFY_CHECKS
from qjson_tasks.verify.nginx_conf import RUN_DIR
from qjson_tasks.verify.report import VerifyReport
from tests.conftest import PROJECT_DIR
from tests.integration.conftest import OURS, SUFFIX, derive_image

CHECKS = (*VERIFY_CHECKS, "gateway")
NGINX = "/usr/sbin/nginx"
QJSON_SO = "/usr/local/lib/lua/5.1/qjson.so"
ANSWER = "model=gpt-4o n=42 user=ada"
PASSED = f"{NGINX} as app: POST /qjson answered 200 '{ANSWER}'"


def multiarch_lua_dir(root: Path) -> str:
    """/usr/lib/<triplet>/lua/5.1: on a bare LuaJIT's default cpath, not on nginx's."""
    [libc] = root.glob("usr/lib/*-linux-gnu/libc.so.6")
    return f"/usr/lib/{libc.parent.name}/lua/5.1"


def so_off_nginx_cpath(root: Path, ctr: str) -> None:
    target = root / multiarch_lua_dir(root).lstrip("/")
    target.mkdir(parents=True, exist_ok=True)
    (root / QJSON_SO.lstrip("/")).rename(target / "qjson.so")


def unreadable_qjson_so(root: Path, ctr: str) -> None:
    (root / QJSON_SO.lstrip("/")).chmod(0o600)


def lua_module_not_loaded(root: Path, ctr: str) -> None:
    (root / "etc/nginx/modules-enabled/50-mod-http-lua.conf").unlink()


@dataclass(frozen=True)
class Fault:
    name: str
    mutate: Callable[[Path, str], None]
    fails: frozenset[str]
    # (check, text): the text is in the check's detail (detail=True) or in a finding.
    names: tuple[tuple[str, str, bool], ...]
    why: str = ""


FAULTS = [
    Fault(
        "so-off-nginx-cpath",
        so_off_nginx_cpath,
        frozenset({"gateway", "artifacts", "native-libs", "sbom"}),
        (
            ("gateway", f"{QJSON_SO}, where the rock installed it, is missing", True),
            ("gateway", "answered 500", True),
            ("gateway", "failed to load native library qjson; tried qjson, libqjson,", False),
            ("artifacts", f"{QJSON_SO} (lib/qjson.so): missing", False),
            ("native-libs", f"{QJSON_SO}: not found in the image", False),
            ("sbom", f"{QJSON_SO} is in the SBOM but the image did not add it", False),
        ),
        why="artifacts and native-libs read the rock_manifest, which puts qjson.so where it is"
        " no longer; smoke passes, because a bare LuaJIT's default cpath still has the"
        " multiarch directory, and nginx's cpath has not: what only the gateway check sees;"
        " the SBOM lists qjson.so where the build put it",
    ),
    Fault(
        "unreadable-qjson-so",
        unreadable_qjson_so,
        frozenset({"gateway", "smoke"}),
        (
            (
                "gateway",
                f"{QJSON_SO} is not readable by app, the user nginx's workers run as",
                True,
            ),
            # What the worker's error says: only the last candidate, "No such file".
            ("gateway", "cannot open shared object file: No such file or directory", False),
            ("smoke", "failed to load native library qjson", False),
        ),
        why="the smoke test runs LuaJIT as the same user as nginx's workers",
    ),
    Fault(
        "lua-module-not-loaded",
        lua_module_not_loaded,
        frozenset({"gateway"}),
        (
            ("gateway", "nginx did not start (exit 1): [emerg] unknown directive", True),
            ("gateway", "error.log: ", False),
            ("gateway", 'unknown directive "lua_package_path"', False),
        ),
    ),
]


@pytest.fixture(scope="module")
def verified(
    gateway_built: BuildResult, gateway_target: Target, tools: Tools
) -> Callable[[Fault], VerifyReport]:
    cache: dict[str, VerifyReport] = {}

    def get(fault: Fault) -> VerifyReport:
        if fault.name not in cache:
            ref = derive_image(
                tools.buildah, gateway_built.image_ref, f"gw-{fault.name}", fault.mutate
            )
            cache[fault.name] = run_verify(gateway_target, tools, image=ref)
        return cache[fault.name]

    return get


def assert_fails_exactly(report: VerifyReport, fault: Fault) -> None:
    assert tuple(check.name for check in report.checks) == CHECKS
    outcome = {check.name: check.passed for check in report.checks}
    assert outcome == {name: name not in fault.fails for name in CHECKS}, report.table()
    checks = {check.name: check for check in report.checks}
    for name, text, in_detail in fault.names:
        check = checks[name]
        if in_detail:
            assert text in check.detail, f"{name} detail: {check.detail}"
        else:
            assert any(text in finding for finding in check.findings), check.findings


def test_gateway_target_builds_and_nginx_answers_through_qjson(
    gateway_built: BuildResult, gateway_target: Target, tools: Tools, buildah: Buildah
) -> None:
    # The build verified it, unless its units existed already and it had nothing to do.
    assert gateway_built.verification is None or gateway_built.verification.passed
    report = run_verify(gateway_target, tools, image=gateway_built.image_ref)
    assert report.passed, report.table()
    assert tuple(check.name for check in report.checks) == CHECKS
    [gateway] = [check for check in report.checks if check.name == "gateway"]
    assert gateway.detail == PASSED
    # The check never changes the image: nothing of its run directory is in it.
    name = f"{OURS}gw-look-{SUFFIX}"
    with buildah.container(gateway_built.image_ref, name) as ctr, buildah.mounted(ctr) as root:
        assert not (root / RUN_DIR.lstrip("/")).exists()
        assert (root / "usr/bin/luajit").is_file()  # luajit2 kept a luajit binary
    assert buildah.image_id(gateway_built.image_ref) == gateway_built.image_id


@pytest.mark.parametrize("fault", FAULTS, ids=[fault.name for fault in FAULTS])
def test_planted_fault_is_caught_by_the_gateway_check(
    fault: Fault, verified: Callable[[Fault], VerifyReport]
) -> None:
    assert_fails_exactly(verified(fault), fault)


def test_a_handler_that_answers_wrongly(
    gateway_built: BuildResult, gateway_target: Target, tools: Tools, tmp_path: Path
) -> None:
    snippet = (PROJECT_DIR / "config" / "gateway" / "qjson.conf").read_text()
    assert 'doc:get_str("user.name")' in snippet
    (tmp_path / "wrong.conf").write_text(snippet.replace('"user.name"', '"user.nick"'))
    gateway = gateway_target.config.verify.gateway
    assert gateway is not None
    wrong = gateway.model_copy(update={"snippet": str(tmp_path / "wrong.conf")})
    verify = gateway_target.config.verify.model_copy(update={"gateway": wrong})
    config = gateway_target.config.model_copy(update={"verify": verify})
    target = Target(gateway_target.name, gateway_target.path, config)

    report = run_verify(target, tools, image=gateway_built.image_ref)

    fault = Fault(
        "wrong-handler",
        lambda root, ctr: None,
        frozenset({"gateway"}),
        (
            (
                "gateway",
                f"answered 200 'model=gpt-4o n=42 user=nil', expected 200 '{ANSWER}'",
                True,
            ),
        ),
    )
    assert_fails_exactly(report, fault)


def test_faults_that_fail_several_checks_say_why() -> None:
    for fault in FAULTS:
        assert (len(fault.fails) > 1) == bool(fault.why), fault.name


def start_verify(target: Target, image: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "invoke", "--search-root", str(PROJECT_DIR)]
    command += ["verify", "--target", target.name, "--image", image]
    return subprocess.Popen(
        command, cwd=PROJECT_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def test_two_verifies_at_once(gateway_built: BuildResult, gateway_target: Target) -> None:
    runs = [start_verify(gateway_target, gateway_built.image_ref) for _ in range(2)]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output
        assert f"gateway      PASS    {PASSED}" in output


def test_a_taken_port_is_left_alone_and_another_one_used(
    gateway_built: BuildResult,
    gateway_target: Target,
    tools: Tools,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Another process listens on the port the check is handed first (as when a second
    # verify took it meanwhile): nginx can't bind it, and the check must neither talk to
    # that process nor fail, but start nginx again on a new port.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        other.bind((loopback.LOOPBACK, 0))
        other.listen(8)
        taken, real = other.getsockname()[1], loopback.free_port
        handed: list[int] = []

        def free_port() -> int:
            handed.append(taken if not handed else real())
            return handed[-1]

        monkeypatch.setattr(loopback, "free_port", free_port)
        report = run_verify(gateway_target, tools, image=gateway_built.image_ref)

        other.setblocking(False)
        with pytest.raises(BlockingIOError):
            other.accept()  # nobody connected to it
    assert report.passed, report.table()
    assert len(handed) == 2 and handed[1] != taken, handed
