"""Unit hashes: stable across runs and processes, moved by every input, by nothing else."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from qjson_tasks.build.plan import BuildPlan, ImageFacts, PlanInputs, RockFacts, make_plan
from qjson_tasks.build.steps import cargo_home
from qjson_tasks.config.load import find_target
from qjson_tasks.config.lockfile import Lock, LockedRock
from qjson_tasks.config.model import Target
from qjson_tasks.rocks.source import find_local_rock, rock_facts, server_digest, source_digest
from tests.conftest import PROJECT_DIR

BASE = ImageFacts("localhost/qjson-tasks/bookworm-luajit:latest", "b" * 64, 0)
DEMO_ROCK = PROJECT_DIR / "rocks" / "qjson-demo"


def offline() -> Target:
    return find_target("offline", PROJECT_DIR / "config")


def plan_for(target: Target | None = None, **changes: Any) -> BuildPlan:
    target = target or offline()
    inputs = PlanInputs(
        BASE, BASE, rock_facts(target), server_digest(target), verify_digest="smoke-digest"
    )
    for key, value in changes.items():
        inputs = PlanInputs(**{**inputs.__dict__, key: value})
    return make_plan(target, inputs, run_id="r1")


def demo_facts(digest: str) -> tuple[RockFacts, ...]:
    return (RockFacts(find_local_rock(offline()), digest),)


def server_facts() -> tuple[RockFacts, ...]:
    return (RockFacts(),)


def hashes(plan: BuildPlan) -> dict[str, str]:
    return {unit.kind: unit.hash for unit in plan.units}


def with_config(target: Target, section: str, **values: Any) -> Target:
    """The target with fields of one section changed ("rock": its first rock)."""
    config = target.config
    if section == "rock":
        rock = config.rock.model_copy(update=values)
        return Target(target.name, target.path, config.model_copy(update={"rocks": (rock,)}))
    part = getattr(config, section).model_copy(update=values)
    return Target(target.name, target.path, config.model_copy(update={section: part}))


def test_hashes_are_stable_within_a_process() -> None:
    assert hashes(plan_for()) == hashes(plan_for())


def test_hashes_are_stable_across_processes() -> None:
    code = (
        "from tests.unit.build.test_plan import plan_for, hashes; import json;"
        " print(json.dumps(hashes(plan_for())))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_DIR, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == json.dumps(hashes(plan_for()))


# (what changed, plan) -> which units must get a new hash; the others must keep theirs.
CHANGES: list[tuple[str, Any, set[str]]] = [
    ("builder image id", lambda: plan_for(builder=ImageFacts(BASE.ref, "c" * 64)), {"all"}),
    (
        "builder packages",
        lambda: plan_for(with_config(offline(), "builder", packages=("cargo",))),
        {"all"},
    ),
    ("rock source", lambda: plan_for(rocks=demo_facts("f" * 64)), {"rock-tree", "runtime"}),
    (
        "builder env",
        lambda: plan_for(with_config(offline(), "builder", env={"RUSTFLAGS": "-O"})),
        {"rock-tree", "runtime"},
    ),
    (
        "rock requirement",
        lambda: plan_for(with_config(offline(), "rock", version=">=0.1")),
        {"rock-tree", "runtime"},
    ),
    (
        "staging tree",
        lambda: plan_for(with_config(offline(), "staging", tree="/other-tree")),
        {"rock-tree", "runtime"},
    ),
    ("base image id", lambda: plan_for(base=ImageFacts(BASE.ref, "d" * 64)), {"runtime"}),
    ("base image time", lambda: plan_for(base=ImageFacts(BASE.ref, "b" * 64, 99)), {"runtime"}),
    ("smoke script", lambda: plan_for(verify_digest="other"), {"runtime"}),
    (
        "prefix",
        lambda: plan_for(with_config(offline(), "runtime", prefix="/opt/lua")),
        {"runtime"},
    ),
    (
        "runtime user",
        lambda: plan_for(with_config(offline(), "runtime", user="nobody")),
        {"runtime"},
    ),
    (
        "source_date_epoch",
        lambda: plan_for(with_config(offline(), "output", source_date_epoch=1700000000)),
        {"runtime"},
    ),
]


@pytest.mark.parametrize(("what", "make", "moved"), CHANGES, ids=[c[0] for c in CHANGES])
def test_a_changed_input_moves_exactly_the_units_that_depend_on_it(
    what: str, make: Any, moved: set[str]
) -> None:
    before, after = hashes(plan_for()), hashes(make())
    expected = {"builder", "rock-tree", "runtime"} if moved == {"all"} else moved
    changed = {kind for kind in before if before[kind] != after[kind]}
    assert changed == expected, what


UNRELATED: list[tuple[str, Any]] = [
    ("description", lambda: with_config_top(description="something else")),
    ("output image", lambda: with_config(offline(), "output", image="localhost/else")),
    ("output tag", lambda: with_config(offline(), "output", tag="v2")),
]


def with_config_top(**values: Any) -> Target:
    target = offline()
    return Target(target.name, target.path, target.config.model_copy(update=values))


@pytest.mark.parametrize(("what", "make"), UNRELATED, ids=[u[0] for u in UNRELATED])
def test_an_unrelated_field_moves_no_hash(what: str, make: Any) -> None:
    assert hashes(plan_for(make())) == hashes(plan_for()), what


def test_the_working_directory_and_the_rock_location_move_no_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "elsewhere" / "qjson-demo"
    shutil.copytree(DEMO_ROCK, copy, ignore=shutil.ignore_patterns("target"))
    target = with_config(offline(), "rock", source=str(copy))
    monkeypatch.chdir(tmp_path)
    moved = plan_for(target)
    assert hashes(moved) == hashes(plan_for())


def test_the_source_digest_follows_content_not_timestamps_or_build_outputs(
    tmp_path: Path,
) -> None:
    copy = tmp_path / "rock"
    shutil.copytree(DEMO_ROCK, copy, ignore=shutil.ignore_patterns("target"))
    original = source_digest(copy)
    os.utime(copy / "Cargo.toml", (1, 1))
    (copy / "target").mkdir(exist_ok=True)
    (copy / "target" / "junk").write_text("build output")
    (copy / ".git").mkdir()
    assert source_digest(copy) == original

    lib = copy / "src" / "lib.rs"
    lib.write_text(lib.read_text() + "\n// one more line\n")
    assert source_digest(copy) != original
    lib.write_text(lib.read_text().removesuffix("\n// one more line\n"))
    assert source_digest(copy) == original
    lib.chmod(0o755)
    assert source_digest(copy) != original


def test_the_plan_document_is_toml_with_units_inputs_and_dependencies() -> None:
    plan = plan_for()
    document = tomllib.loads(tomli_w.dumps(plan.document({plan.builder.image})))
    units = document["units"]
    assert list(units) == ["builder", "rock-tree", "runtime"]
    assert units["builder"]["status"] == "built"
    assert units["runtime"]["status"] == "to build"
    assert units["rock-tree"]["depends"] == [plan.builder.name]
    assert units["runtime"]["depends"] == [plan.rock_tree.name]
    assert units["runtime"]["name"] == f"runtime-{plan.runtime.hash}"
    rocks = units["rock-tree"]["inputs"]["rocks"]
    assert rocks[0]["rockspec"] == "rockspec/qjson-demo-0.1.0-1.rockspec"
    assert "note" not in document


def test_credentials_are_neither_printed_nor_hashed() -> None:
    secret = "s3cr3t-value"
    target = with_config(offline(), "builder", env={"ROCKS_TOKEN": secret, "RUSTFLAGS": "-O"})
    plan = plan_for(target)
    text = tomli_w.dumps(plan.document(set()))
    assert secret not in text
    assert "RUSTFLAGS" in text and 'ROCKS_TOKEN = "<hidden>"' in text
    # A token reaches a server, not the built files: rotating it rebuilds nothing, and no
    # hash in a label or a printed plan lets a weak one be guessed offline.
    other = plan_for(with_config(offline(), "builder", env={"ROCKS_TOKEN": "x", "RUSTFLAGS": "-O"}))
    assert hashes(other) == hashes(plan)


def test_a_range_from_a_server_is_not_cached() -> None:
    target = with_config(offline(), "rock", source="default", version=">=0.1")
    plan = plan_for(target, rocks=server_facts())
    assert not plan.cacheable
    assert "built every time" in str(plan.document(set())["note"])
    exact = with_config(offline(), "rock", source="default", version="==0.1.0")
    assert plan_for(exact, rocks=server_facts()).cacheable
    # A lock pins the range's version and bytes.
    assert plan_for(target, rocks=server_facts(), lock=lock_of(SERVER_ROCK)).cacheable


def test_a_plan_without_local_images_says_its_hashes_are_provisional() -> None:
    plan = plan_for(base=None, builder=None)
    assert not plan.resolved
    assert "provisional" in str(plan.document(set())["note"])


SERVER_ROCK = LockedRock(
    name="qjson-demo",
    version="0.1.2-1",
    kind="server",
    source="https://rocks.example.org",
    artifact="qjson-demo-0.1.2-1.src.rock",
    url="https://rocks.example.org/qjson-demo-0.1.2-1.src.rock",
    rockspec_sha256="a" * 64,
    source_sha256="b" * 64,
)


def lock_of(*rocks: LockedRock) -> Lock:
    return Lock(target="offline", rocks=rocks)


def test_a_lock_change_moves_the_rock_tree_and_runtime_only() -> None:
    target = with_config(offline(), "rock", source="default", version=">=0.1")
    locked = plan_for(target, rocks=server_facts(), lock=lock_of(SERVER_ROCK))
    changed_source = SERVER_ROCK.model_copy(update={"source_sha256": "c" * 64})
    moved = plan_for(target, rocks=server_facts(), lock=lock_of(changed_source))
    changed = {kind for kind in hashes(locked) if hashes(locked)[kind] != hashes(moved)[kind]}
    assert changed == {"rock-tree", "runtime"}
    # Where the lock says a rock lives is not part of what it is.
    elsewhere = SERVER_ROCK.model_copy(update={"url": "https://mirror.example.org/x.src.rock"})
    same = plan_for(target, rocks=server_facts(), lock=lock_of(elsewhere))
    assert hashes(same) == hashes(locked)


def test_a_locked_build_installs_the_locked_version_from_the_vendored_rocks_only() -> None:
    target = with_config(offline(), "rock", source="default", version=">=0.1")
    plan = plan_for(target, rocks=server_facts(), lock=lock_of(SERVER_ROCK))
    (step,) = plan.rocks
    assert step.argv[-3:] == ("--tree=/qjson-rock", "qjson-demo", "0.1.2-1")
    assert "--only-server=/qjson-vendor" in step.argv
    assert plan.make_manifest == ("luarocks-admin", "make-manifest", "/qjson-vendor")
    unlocked = plan_for(target, rocks=server_facts())
    assert unlocked.make_manifest == () and unlocked.rocks[0].argv[-1] == "qjson-demo"


def multi() -> Target:
    return find_target("multi", PROJECT_DIR / "config")


def test_every_rock_of_a_target_gets_its_own_install_step_into_one_tree() -> None:
    plan = plan_for(multi())
    demo, cdemo = plan.rocks
    assert demo.argv[-3:] == ("make", "--tree=/qjson-rock", "rockspec/qjson-demo-0.1.0-1.rockspec")
    assert demo.workdir == "/qjson-src/qjson-demo" and demo.mounts
    assert cdemo.argv[-1] == "/qjson-src/cdemo-1.0-1.src.rock" and cdemo.copy is not None
    assert cdemo.workdir is None and not cdemo.mounts
    # The local server the C rock's build dependency comes from is copied in, by content.
    assert plan.servers == ((str(PROJECT_DIR / "rocks" / "server"), "/qjson-servers/deps"),)
    assert all("--only-server=/qjson-servers/deps" in step.argv for step in plan.rocks)
    assert plan.rock_tree.inputs["server"] == source_digest(PROJECT_DIR / "rocks" / "server")


def test_a_second_rock_moves_the_rock_tree_not_the_builder() -> None:
    one, two = plan_for(), plan_for(multi())
    assert one.builder.hash == two.builder.hash
    assert one.rock_tree.hash != two.rock_tree.hash


@pytest.mark.parametrize(
    ("image_env", "rock_env", "home"),
    [
        ({}, {}, "/root/.cargo"),
        ({"HOME": "/home/build"}, {}, "/home/build/.cargo"),
        ({"CARGO_HOME": "/usr/local/cargo", "HOME": "/home/build"}, {}, "/usr/local/cargo"),
        ({"CARGO_HOME": "/usr/local/cargo"}, {"CARGO_HOME": "/cargo/"}, "/cargo"),
        ({"CARGO_HOME": "/usr/local/cargo"}, {"HOME": "/elsewhere"}, "/usr/local/cargo"),
        ({"PATH": "/bin"}, {"HOME": "/elsewhere"}, "/elsewhere/.cargo"),
        ({"CARGO_HOME": ""}, {}, "/root/.cargo"),
    ],
)
def test_cargo_home_is_where_cargo_puts_its_downloads_in_a_rock_build(
    image_env: dict[str, str], rock_env: dict[str, str], home: str
) -> None:
    assert cargo_home(image_env, rock_env) == home
