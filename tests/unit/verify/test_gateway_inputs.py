"""What the gateway check checks is an input of the runtime unit: a changed check or nginx
snippet re-verifies (a new runtime hash), builds nothing else, and targets without the check
keep their hashes."""

from __future__ import annotations

from pathlib import Path

from qjson_tasks.app.verify import verify_digest
from qjson_tasks.build.plan import ImageFacts, PlanInputs, make_plan
from qjson_tasks.config.load import find_target, load_target
from qjson_tasks.config.model import Target
from qjson_tasks.rocks.source import rock_facts, server_digest
from tests.conftest import PROJECT_DIR

CONFIG = PROJECT_DIR / "config"
BASE = ImageFacts("localhost/qjson-tasks/bookworm-gateway:latest", "b" * 64, 0)


def hashes(target: Target) -> dict[str, str]:
    inputs = PlanInputs(
        BASE, BASE, rock_facts(target), server_digest(target), verify_digest(target)
    )
    return {unit.kind: unit.hash for unit in make_plan(target, inputs, run_id="r1").units}


def with_gateway(target: Target, **changes: object) -> Target:
    gateway = target.config.verify.gateway
    assert gateway is not None
    verify = target.config.verify.model_copy(update={"gateway": gateway.model_copy(update=changes)})
    return Target(target.name, target.path, target.config.model_copy(update={"verify": verify}))


def copied_gateway_target(tmp_path: Path) -> Path:
    """config/gateway.toml and its snippet in a directory of their own."""
    (tmp_path / "gateway").mkdir()
    text = (CONFIG / "gateway" / "qjson.conf").read_text()
    (tmp_path / "gateway" / "qjson.conf").write_text(text)
    config = (CONFIG / "gateway.toml").read_text()
    path = tmp_path / "gateway.toml"
    path.write_text(
        config.replace(
            'source = "../rocks/qjson-demo"', f'source = "{PROJECT_DIR}/rocks/qjson-demo"'
        )
    )
    return path


def test_a_changed_check_re_verifies_only_the_runtime() -> None:
    target = find_target("gateway", CONFIG)
    before = hashes(target)
    for changes in ({"expect": "other"}, {"nginx": "/usr/bin/nginx"}, {"path": "/x"}):
        after = hashes(with_gateway(target, **changes))
        assert after["runtime"] != before["runtime"], changes
        assert {k: after[k] for k in ("builder", "rock-tree")} == {
            k: before[k] for k in ("builder", "rock-tree")
        }


def test_a_changed_snippet_changes_the_verify_digest(tmp_path: Path) -> None:
    path = copied_gateway_target(tmp_path)
    before = load_target(path)
    digest, runtime = verify_digest(before), hashes(before)["runtime"]
    snippet = tmp_path / "gateway" / "qjson.conf"
    snippet.write_text(snippet.read_text().replace("/qjson", "/qjson2"))
    after = load_target(path)
    assert verify_digest(after) != digest
    assert hashes(after)["runtime"] != runtime


def test_targets_without_the_check_have_no_gateway_input() -> None:
    target = find_target("offline", CONFIG)
    inputs = PlanInputs(BASE, BASE, rock_facts(target), server_digest(target), "d")
    plan = make_plan(target, inputs, run_id="r1")
    assert "gateway" not in plan.runtime.inputs["verify"]  # type: ignore[operator]
