"""publish: what is pushed and how (exact argv), what is refused, and that the temporary
storage of the remote check goes in every case. A recording fake stands for buildah, the
registry, skopeo and gpg; the checks themselves (verify_image) are replaced by a canned
report, since their own tests live in tests/unit/verify."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from qjson_tasks.app.publish import (
    push_request,
    registry_access_for,
    registry_flags,
    run_publish,
    run_remote_verify,
)
from qjson_tasks.app.tools import Tools
from qjson_tasks.app.units import current_plan
from qjson_tasks.build.names import UNIT_REPOSITORY
from qjson_tasks.config.load import find_target
from qjson_tasks.config.model import Target
from qjson_tasks.errors import ConfigError, PublishRefused, RegistryError
from qjson_tasks.host.buildah import Buildah
from qjson_tasks.host.registry import RemoteAccess
from qjson_tasks.verify import remote
from qjson_tasks.verify.report import CheckResult, VerifyReport
from tests.unit.fake_registry import DIGEST, RegistryFake

BASE = "localhost/qjson-tasks/bookworm-luajit:latest"
OUTPUT = "localhost/qjson-tasks/offline-runtime:latest"
IMAGE_ID = "a" * 64
KEY = "8FBC17597226DB673B44EAA6A961960E4FFB9065"
TO = "127.0.0.1:5000/qjt/offline"


@pytest.fixture
def target(project_dir: Path) -> Target:
    return find_target("offline", project_dir / "config")


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where temporary storages go (TMPDIR); empty again after every test."""
    place = tmp_path / "tmp"
    place.mkdir()
    monkeypatch.setenv("TMPDIR", str(place))
    return place


@dataclass
class Canned:
    """Stands for verify_image: a report that passes unless told otherwise."""

    passed: bool = True
    seen: list[Buildah] = field(default_factory=list)  # the facades it was given

    def __call__(self, image: str, target: Target, buildah: Buildah, run_id: str) -> VerifyReport:
        self.seen.append(buildah)
        check = CheckResult("smoke", self.passed, "ok" if self.passed else "planted")
        return VerifyReport(image, IMAGE_ID, target.name, (check,))


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> Canned:
    canned = Canned()
    monkeypatch.setattr(remote, "verify_image", canned)
    return canned


def tools_for(tmp_path: Path, target: Target, mark: str | None = "current") -> RegistryFake:
    """The output image, marked verified with the current plan's runtime unit name (or a
    stale one, or none)."""
    runner = RegistryFake(tmp_path, images={BASE: "b" * 64, OUTPUT: IMAGE_ID}, secret_keys={KEY})
    if mark == "current":
        unit = current_plan(target, make(runner)).runtime.image
        runner.images[unit] = IMAGE_ID
    elif mark == "stale":
        runner.images[f"{UNIT_REPOSITORY}/runtime:0123456789abcdef"] = IMAGE_ID
    return runner


def make(runner: RegistryFake) -> Tools:
    return Tools(runner, Buildah(runner), run_id="unit0001")


def calls(runner: RegistryFake, word: str) -> list[list[str]]:
    return [c for c in runner.calls if c[0] == "buildah" and word in c]


def test_the_image_is_pushed_by_id_and_pulled_back_by_digest_elsewhere(
    tmp_path: Path, target: Target, scratch: Path, checks: Canned
) -> None:
    runner = tools_for(tmp_path, target)
    authfile = tmp_path / "auth.json"
    authfile.write_text("{}")
    access = dict(tls_verify=False, authfile=str(authfile), digest_file=str(tmp_path / "d"))
    request = push_request(target, TO, True, **access)  # type: ignore[arg-type]
    result = run_publish(target, make(runner), request)

    (push,) = calls(runner, "push")[:1]
    assert push[:4] == ["buildah", "push", "--quiet", "--tls-verify=false"]
    assert push[4:6] == ["--authfile", str(authfile)] and push[6] == "--digestfile"
    assert push[-2:] == [IMAGE_ID, f"docker://{TO}:latest"]
    pull, by_tag = calls(runner, "pull")
    root = pull[pull.index("--root") + 1]
    assert pull[:7] == [
        "buildah",
        "--root",
        root,
        "--runroot",
        pull[4],
        "--storage-driver",
        "overlay",
    ]
    assert pull[7:] == [
        "pull", "--quiet", "--policy", "always", "--tls-verify=false",
        "--authfile", str(authfile), f"docker://{TO}@{DIGEST}",
    ]  # fmt: skip
    assert root.startswith(str(scratch))
    assert by_tag[1:7] == pull[1:7] and by_tag[-1] == f"docker://{TO}:latest"  # same storage
    base_copy = calls(runner, "push")[1]
    assert base_copy[-1] == f"containers-storage:[overlay@{root}+{pull[4]}]{BASE}"
    assert checks.seen[0].storage is not None and str(checks.seen[0].storage.root) == root
    assert ["buildah", *pull[1:7], "rmi", "--all", "--force"] in runner.calls
    assert list(scratch.iterdir()) == []  # the temporary storage is gone
    assert (tmp_path / "d").read_text() == DIGEST + "\n"
    assert result.pushed.digest == DIGEST


def test_signing_and_the_policy_reach_push_and_pull(
    tmp_path: Path, target: Target, scratch: Path, checks: Canned
) -> None:
    runner = tools_for(tmp_path, target)
    (tmp_path / "registries.d").mkdir()
    (tmp_path / "policy.json").write_text("{}")
    flags = {
        "registries_d": str(tmp_path / "registries.d"),
        "policy": str(tmp_path / "policy.json"),
    }
    request = push_request(target, TO, True, sign_by=KEY, **flags)  # type: ignore[arg-type]
    report = run_publish(target, make(runner), request).report
    push, pull = calls(runner, "push")[0], calls(runner, "pull")[0]
    assert push[1:3] == ["--registries-conf-dir", flags["registries_d"]]
    assert push[push.index("--sign-by") + 1] == KEY
    assert "--tls-verify=false" not in push  # verified: buildah's own default, no flag
    assert pull[pull.index("--signature-policy") + 1] == flags["policy"]
    assert pull[pull.index("--registries-conf-dir") + 1] == flags["registries_d"]
    assert [check.name for check in report.checks] == ["registry", "signature", "smoke"]


@pytest.mark.parametrize(
    ("mark", "expected"),
    [
        (None, "was not verified by qjson-tasks (built with --no-verify"),
        ("stale", "was verified for other inputs than the current config of target offline"),
        ("gone", "is not a local image: build it with `invoke build-runtime --target offline`"),
    ],
)
def test_an_image_not_verified_with_the_current_config_is_not_pushed(
    tmp_path: Path, target: Target, scratch: Path, mark: str | None, expected: str
) -> None:
    runner = tools_for(tmp_path, target, mark)
    if mark == "gone":
        del runner.images[OUTPUT]
    with pytest.raises(PublishRefused) as caught:
        run_publish(target, make(runner), push_request(target, TO, True))
    assert expected in str(caught.value)
    assert calls(runner, "push") == [] and runner.registry == {}


def test_a_missing_signing_key_is_refused_before_the_push(
    tmp_path: Path, target: Target, scratch: Path
) -> None:
    runner = tools_for(tmp_path, target)
    request = push_request(target, TO, True, sign_by="0" * 40)
    with pytest.raises(PublishRefused, match=r"no secret key 0{40} in .*; nothing was pushed"):
        run_publish(target, make(runner), request)
    assert calls(runner, "push") == []


def test_a_failed_remote_check_writes_no_digest_and_removes_the_storage(
    tmp_path: Path, target: Target, scratch: Path, checks: Canned
) -> None:
    checks.passed = False
    runner = tools_for(tmp_path, target)
    request = push_request(target, TO, True, digest_file=str(tmp_path / "d"))
    with pytest.raises(RegistryError, match="failed the remote check \\(smoke\\); don't deploy"):
        run_publish(target, make(runner), request)
    assert not (tmp_path / "d").exists()
    assert list(scratch.iterdir()) == []


def test_a_tag_another_push_moved_meanwhile_fails_the_remote_check(
    tmp_path: Path, target: Target, scratch: Path, checks: Canned
) -> None:
    runner = tools_for(tmp_path, target)
    runner.moved_tag_to = "c" * 64
    request = push_request(target, TO, True, digest_file=str(tmp_path / "d"))
    with pytest.raises(RegistryError, match=f"{TO}:latest serves image cccccccccccc now"):
        run_publish(target, make(runner), request)
    assert checks.seen == [] and not (tmp_path / "d").exists()
    assert list(scratch.iterdir()) == []


def test_ctrl_c_during_the_pull_back_removes_the_storage(
    tmp_path: Path, target: Target, scratch: Path
) -> None:
    runner = tools_for(tmp_path, target)

    def interrupt(argv: list[str]) -> str | None:
        if "pull" in argv:
            raise KeyboardInterrupt
        return None

    runner.refuse = interrupt
    request = push_request(target, TO, True, digest_file=str(tmp_path / "d"))
    with pytest.raises(KeyboardInterrupt):
        run_publish(target, make(runner), request)
    assert list(scratch.iterdir()) == [] and not (tmp_path / "d").exists()


def test_a_refused_push_is_one_line_and_shows_no_credentials(
    tmp_path: Path, target: Target, scratch: Path
) -> None:
    runner = tools_for(tmp_path, target)
    runner.refuse = lambda argv: (
        "Error: pushing image: checking whether a blob exists in 127.0.0.1:5000/qjt/offline:"
        " unauthorized: authentication required"
        if "push" in argv
        else None
    )
    with pytest.raises(RegistryError) as caught:
        run_publish(target, make(runner), push_request(target, TO, True))
    message = str(caught.value)
    assert message == (
        f"pushing {OUTPUT} to {TO}:latest failed: registry 127.0.0.1:5000 refused the credentials"
        " from buildah's default auth file (unauthorized: authentication required): log in with"
        " `buildah login 127.0.0.1:5000` or pass --authfile; nothing was pushed"
    )
    assert "\n" not in message


def test_push_flags_are_checked_before_anything_runs(target: Target, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--push publishes verified images only"):
        push_request(target, TO, False)
    with pytest.raises(ConfigError, match=r"^the registry flags are for a push: --push REG"):
        push_request(target, None, True, sign_by=KEY)
    with pytest.raises(ConfigError, match=r"^publish needs --to REGISTRY/REPOSITORY\[:TAG\]$"):
        push_request(target, None, True, flag="--to")
    with pytest.raises(ConfigError, match=r"--authfile: .* is not a file"):
        push_request(target, TO, True, authfile=str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError, match=r"--to: '127\.0\.0\.1:5000/Qjt' is not a registry"):
        push_request(target, "127.0.0.1:5000/Qjt", True, flag="--to")


def test_tls_and_authfile_flags_serve_a_unit_cache_without_a_push(
    target: Target, tmp_path: Path
) -> None:
    from qjson_tasks.config.load import Overrides, apply_overrides

    cached = apply_overrides(target, Overrides(cache_repo="127.0.0.1:5000/qjt-cache"))
    authfile = tmp_path / "auth.json"
    authfile.write_text("{}")
    request, access = registry_flags(cached, None, True, False, str(authfile))
    assert request is None
    assert access == RemoteAccess(tls_verify=False, authfile=str(authfile))
    request, access = registry_flags(cached, TO, True, False)  # with a push: the same access
    assert request is not None and access == request.access
    with pytest.raises(ConfigError, match=r"^the registry flags are for a push"):
        registry_flags(target, None, True, False)  # no cache and no push
    with pytest.raises(ConfigError, match=r"^the registry flags are for a push"):
        registry_flags(cached, None, True, sign_by=KEY)  # signing is a push's


def test_registry_flags_of_verify_are_for_docker_images_only(tmp_path: Path) -> None:
    assert registry_access_for(None) is None
    with pytest.raises(ConfigError, match=r"^--no-tls-verify, --policy: for a docker:// image"):
        registry_access_for("localhost/x:1", tls_verify=False, policy="p.json")
    (tmp_path / "p.json").write_text("{}")
    access = registry_access_for("docker://127.0.0.1:5000/x:1", policy=str(tmp_path / "p.json"))
    assert access is not None and access.policy == str(tmp_path / "p.json")


def test_verify_of_a_tag_pulls_the_tag_and_names_the_digest(
    tmp_path: Path, target: Target, scratch: Path, checks: Canned
) -> None:
    runner = tools_for(tmp_path, target)
    runner.registry[f"docker://{TO}:v1"] = IMAGE_ID
    access = RemoteAccess(tls_verify=False)
    report = run_remote_verify(target, make(runner), f"docker://{TO}:v1", access)
    (pull,) = calls(runner, "pull")
    assert pull[-1] == f"docker://{TO}:v1"
    assert report.image == f"{TO}@{DIGEST}"
    assert [check.name for check in report.checks] == ["registry", "smoke"]
    assert list(scratch.iterdir()) == []
