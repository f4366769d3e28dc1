"""The gateway check with a recording fake runner: the argv it builds, the nginx.conf it
writes, how it judges an answer, and that nginx is stopped and the container removed when a
step fails. The fake nginx answers HTTP for real, on 127.0.0.1 and the port the check chose.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pytest

from qjson_tasks.config.model import Gateway
from qjson_tasks.host import loopback, processes
from qjson_tasks.host.buildah import Buildah
from qjson_tasks.verify import gateway as check
from qjson_tasks.verify import nginx_conf
from qjson_tasks.verify.report import CheckResult
from tests.unit.fakes import is_call, runs
from tests.unit.verify.gateway_fakes import ANSWER, LUA_ERROR, GatewayRunner

IMAGE = "localhost/qjson-tasks/gateway-runtime:latest"
CONTAINER = "qjt-verify-gateway-r1"
QJSON_SO = PurePosixPath("/usr/local/lib/lua/5.1/qjson.so")
SNIPPET = 'lua_package_cpath "/usr/local/lib/lua/5.1/?.so";\nserver {\n    listen @LISTEN@;\n}\n'
GATEWAY = Gateway(
    nginx="/usr/sbin/nginx",
    snippet="qjson.conf",
    modules=("/etc/nginx/modules-enabled/*.conf",),
    body='{"model":"gpt-4o","n":42}',
    expect=ANSWER,
    timeout=2,
)
NGINX = ["/usr/sbin/nginx", "-e", "/tmp/qjt-gateway/error.log", "-c", "/tmp/qjt-gateway/nginx.conf"]


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[GatewayRunner]:
    (tmp_path / "root" / "tmp").mkdir(parents=True)
    fake = GatewayRunner(tmp_path / "root")
    yield fake
    for server in fake.servers:  # a failed test must not leave a port open
        if server.server is not None:
            server.end(0)


def gateway_check(
    runner: GatewayRunner, gateway: Gateway = GATEWAY, user: str = "app"
) -> CheckResult:
    buildah = Buildah(runner)
    return check.check_gateway(buildah, IMAGE, "r1", gateway, SNIPPET, user, [QJSON_SO])


def buildah_runs(runner: GatewayRunner) -> list[list[str]]:
    return [call for call in runner.calls if call[:2] == ["buildah", "run"]]


def assert_cleaned_up(runner: GatewayRunner) -> None:
    assert runner.left_behind() == (set(), set())
    assert all(server.ended.is_set() for server in runner.servers)
    assert all(not loopback.is_listening(server.port) for server in runner.servers)


# --- the argv and the nginx.conf -----------------------------------------------------------


def test_a_good_answer_passes(runner: GatewayRunner) -> None:
    result = gateway_check(runner)
    assert result == CheckResult(
        "gateway", True, f"/usr/sbin/nginx as app: POST /qjson answered 200 '{ANSWER}'"
    )
    assert_cleaned_up(runner)


def test_the_argv_it_builds(runner: GatewayRunner) -> None:
    gateway_check(runner)
    assert [
        "buildah",
        "from",
        "--quiet",
        "--pull=never",
        "--name",
        CONTAINER,
        IMAGE,
    ] in runner.calls
    run = ["buildah", "run", "--isolation", "chroot", "--user", "app", CONTAINER, "--"]
    assert buildah_runs(runner) == [[*run, *NGINX], [*run, *NGINX, "-s", "quit"]]
    # The container is mounted for the conf and the logs, then unmounted and removed.
    assert runner.subcommands()[-2:] == ["umount", "rm"]


def test_the_nginx_conf_listens_on_loopback_only(runner: GatewayRunner) -> None:
    gateway_check(runner)
    [server] = runner.servers
    conf = server.conf()
    assert re.findall(r"listen ([^;]+);", conf) == [f"127.0.0.1:{server.port}"]
    assert "@LISTEN@" not in conf
    for line in (
        "include /etc/nginx/modules-enabled/*.conf;",
        "daemon off;",
        "pid /tmp/qjt-gateway/nginx.pid;",
        "error_log /tmp/qjt-gateway/error.log notice;",
        "    client_body_temp_path /tmp/qjt-gateway/client_body;",
        '    lua_package_cpath "/usr/local/lib/lua/5.1/?.so";',
    ):
        assert line in conf.splitlines(), conf
    assert not re.search(r"^user ", conf, re.MULTILINE)  # a non-root master can't switch
    run_dir = runner.mount_root / "tmp" / "qjt-gateway"
    assert run_dir.stat().st_mode & 0o7777 == 0o1777


def test_a_root_master_switches_its_workers_to_worker_user(runner: GatewayRunner) -> None:
    gateway = GATEWAY.model_copy(update={"worker_user": "nobody:nogroup"})
    runner.answer = (500, "<html>500</html>")
    runner.probe = f"unreadable {QJSON_SO}\n"
    result = gateway_check(runner, gateway, user="root")
    assert "user nobody nogroup;" in runner.servers[0].conf().splitlines()
    probe = buildah_runs(runner)[-1]
    assert probe[4:6] == ["--user", "nobody:nogroup"] and probe[7:10] == ["--", "sh", "-c"]
    assert result.detail.startswith(f"{QJSON_SO} is not readable by nobody:nogroup, the user")


def test_the_worker_user_defaults_to_nobody_under_a_root_master() -> None:
    assert check.worker_user(GATEWAY, "root") == "nobody"
    assert check.worker_user(GATEWAY, "app") == "app"
    other = GATEWAY.model_copy(update={"worker_user": "www-data"})
    assert check.worker_user(other, "app") == "app"  # only root can switch
    assert nginx_conf.user_directive("www-data", "app") == ""


# --- judging the answer ----------------------------------------------------------------------


def test_a_wrong_answer_fails_and_shows_the_error_log(runner: GatewayRunner) -> None:
    runner.answer = (500, "<html>\r\n<head><title>500 Internal Server Error</title></head>")
    result = gateway_check(runner)
    assert not result.passed
    assert result.detail == (
        "/usr/sbin/nginx as app: POST /qjson answered 500 '<html>...', expected 200"
        f" '{ANSWER}'; [error] lua entry thread aborted: runtime error: qjson: failed to load"
        " native library qjson; tried qjson, libqjson; last error: No such file or directory"
    )
    assert result.findings == (f"error.log: {LUA_ERROR}",)
    assert_cleaned_up(runner)


def test_a_right_status_with_a_wrong_body_fails(runner: GatewayRunner) -> None:
    runner.answer = (200, "model=gpt-4o n=41\n")
    result = gateway_check(runner)
    assert not result.passed
    assert result.detail == (
        "/usr/sbin/nginx as app: POST /qjson answered 200 'model=gpt-4o n=41', expected 200"
        f" '{ANSWER}'"
    )


def test_an_unreadable_library_is_named_as_the_cause(runner: GatewayRunner) -> None:
    runner.answer = (500, "<html>500</html>")
    runner.probe = f"unreadable {QJSON_SO}\n"
    result = gateway_check(runner)
    cause = (
        f"{QJSON_SO} is not readable by app, the user nginx's workers run as (qjson's loader"
        " then reports the last path it tried, not this one)"
    )
    assert result.detail.startswith(f"{cause}; /usr/sbin/nginx as app: POST /qjson answered 500")
    assert result.findings[0] == cause
    probe = buildah_runs(runner)[-1]
    assert probe == [
        "buildah", "run", "--isolation", "chroot", "--user", "app", CONTAINER, "--",
        "sh", "-c", check._PROBE, "sh", str(QJSON_SO),
    ]  # fmt: skip
    assert_cleaned_up(runner)


def test_a_missing_library_is_named(runner: GatewayRunner) -> None:
    runner.answer = (500, "<html>500</html>")
    runner.probe = f"missing {QJSON_SO}\n"
    result = gateway_check(runner)
    assert result.findings[0] == f"{QJSON_SO}, where the rock installed it, is missing"


def test_a_passing_check_does_not_probe(runner: GatewayRunner) -> None:
    gateway_check(runner)
    assert not any(runs("sh")(call) for call in runner.calls)


def test_nginx_that_does_not_start(runner: GatewayRunner) -> None:
    runner.modes = ["exit"]
    result = gateway_check(runner)
    assert result.detail == (
        "/usr/sbin/nginx as app: nginx did not start (exit 1): [emerg] unknown directive"
        ' "content_by_lua_block"'
    )
    assert result.findings == (
        'stderr: nginx: [emerg] unknown directive "content_by_lua_block"',
        'error.log: [emerg] 7#7: unknown directive "content_by_lua_block" in nginx.conf:9',
    )
    assert not any(is_call("-s", "quit")(call) for call in runner.calls)  # nothing to stop
    assert_cleaned_up(runner)


def test_a_port_taken_meanwhile_is_given_up_for_another(runner: GatewayRunner) -> None:
    runner.modes = ["bind-fail", "serve"]
    result = gateway_check(runner)
    assert result.passed, result
    first, second = runner.servers
    assert first.port != second.port
    assert [call for call in buildah_runs(runner) if call[-2:] != ["-s", "quit"]] == [
        first.argv,
        second.argv,
    ]
    assert_cleaned_up(runner)


def test_a_port_that_stays_taken_fails_after_the_last_attempt(runner: GatewayRunner) -> None:
    runner.modes = ["bind-fail"]
    result = gateway_check(runner)
    assert len(runner.servers) == check.BIND_ATTEMPTS
    assert "nginx did not start (exit 1): [emerg] bind() to 127.0.0.1:" in result.detail


def test_nginx_that_never_writes_its_pid_file_is_stopped(
    runner: GatewayRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(check, "STOP_SECONDS", 0.1)
    runner.modes = ["hang"]
    result = gateway_check(runner, GATEWAY.model_copy(update={"timeout": 0.2}))
    assert "nginx did not start (no pid file after 0.2 s, stopped)" in result.detail
    [server] = runner.servers
    assert server.killed
    assert_cleaned_up(runner)


# --- cleanup when a step fails -------------------------------------------------------------


def test_nginx_that_ignores_quit_is_killed_and_the_check_fails(
    runner: GatewayRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(check, "STOP_SECONDS", 0.1)
    runner.modes = ["stuck"]
    result = gateway_check(runner)
    assert not result.passed
    assert result.detail == (
        "/usr/sbin/nginx as app: answered right, but nginx had not stopped 0.1 s after"
        " `nginx -s quit`"
    )
    assert runner.servers[0].killed
    assert_cleaned_up(runner)


def test_an_nginx_process_left_after_the_stop_is_killed_and_reported(
    runner: GatewayRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As when `buildah run` was killed: its worker, orphaned, keeps running.
    worker = processes.Process(4999911, 1, 510, "S")
    families: list[tuple[int, str]] = []
    killed: list[processes.Process] = []

    def family(pid: int, marker: str) -> list[processes.Process]:
        families.append((pid, marker))
        return [worker]

    monkeypatch.setattr(processes, "family", family)
    monkeypatch.setattr(processes, "running", lambda process: process not in killed)
    monkeypatch.setattr(processes, "kill", killed.append)
    result = gateway_check(runner)
    assert families == [(4000000000, "/tmp/qjt-gateway/nginx.conf")]  # the pid file's master
    assert killed == [worker]
    assert result.detail == (
        "/usr/sbin/nginx as app: answered right, but nginx process 4999911 still ran after the"
        " stop (killed)"
    )


def test_a_failing_quit_still_stops_nginx_and_removes_the_container(
    runner: GatewayRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(check, "STOP_SECONDS", 0.1)
    runner.fail_on = is_call("-s", "quit")
    result = gateway_check(runner)
    assert not result.passed
    assert "`nginx -s quit` failed: command failed (exit 1)" in result.findings[0]
    assert runner.servers[0].killed
    assert_cleaned_up(runner)


def test_ctrl_c_during_the_request_stops_nginx_and_removes_the_container(
    runner: GatewayRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object) -> loopback.Answer:
        raise KeyboardInterrupt

    monkeypatch.setattr(loopback, "post", interrupted)
    with pytest.raises(KeyboardInterrupt):
        gateway_check(runner)
    assert any(is_call("-s", "quit")(call) for call in runner.calls)
    assert_cleaned_up(runner)


def test_a_failing_mount_leaves_no_container(runner: GatewayRunner) -> None:
    runner.fail_on = is_call("buildah", "mount")
    with pytest.raises(Exception, match="command failed"):
        gateway_check(runner)
    assert runner.servers == []
    assert_cleaned_up(runner)


def test_a_run_dir_that_leads_out_of_the_image_is_refused(
    runner: GatewayRunner, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (runner.mount_root / "tmp" / "qjt-gateway").symlink_to(outside)
    result = gateway_check(runner)
    assert result.detail == "/tmp/qjt-gateway in the image is a link out of the image"
    assert list(outside.iterdir()) == [] and runner.servers == []
    assert_cleaned_up(runner)


def test_a_conf_name_that_is_a_link_out_of_the_image_is_replaced_not_followed(
    runner: GatewayRunner, tmp_path: Path
) -> None:
    victim = tmp_path / "host-file"
    victim.write_text("the host's\n")
    run_dir = runner.mount_root / "tmp" / "qjt-gateway"
    run_dir.mkdir()
    (run_dir / "nginx.conf").symlink_to(victim)
    assert gateway_check(runner).passed
    assert victim.read_text() == "the host's\n"
    assert not (run_dir / "nginx.conf").is_symlink()
