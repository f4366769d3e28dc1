"""Two `invoke build-runtime` runs at once, as two CI jobs on one runner would start them.

Each scenario builds rocks that no earlier build cached (a one-line change of the demo rock),
so the runs really overlap in the rock install and the runtime commit. Same target: the
second run waits on the first's lock and then finds every unit built. Different targets: both
build their own units side by side. Either way both succeed, the tags end on verified images
and nothing is left behind.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import tomli_w

from qjson_tasks.build.pipeline import BuildResult
from qjson_tasks.config.load import load_target
from qjson_tasks.host.buildah import Buildah
from tests.conftest import PROJECT_DIR
from tests.integration.conftest import (
    OURS,
    changed_demo_rock,
    forget_rock_units,
    offline_config_data,
)


def write_target(tmp: Path, name: str, change: str) -> Path:
    """A config building a changed copy of the demo rock into a test-only output."""
    rock = tmp / f"rock-{change}" / "rock"
    if not rock.exists():
        changed_demo_rock(rock.parent, change)
    data = offline_config_data(rock, name)
    path = tmp / f"{name}.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def start(config: Path) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "invoke", "--search-root", str(PROJECT_DIR)]
    command += ["build-runtime", "--config", str(config)]
    return subprocess.Popen(
        command, cwd=PROJECT_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def finish(process: subprocess.Popen[str]) -> str:
    output, _ = process.communicate(timeout=900)
    assert process.returncode == 0, output
    return output


def forget(buildah: Buildah, configs: list[Path]) -> None:
    for config in configs:
        forget_rock_units(buildah, load_target(config))


def assert_nothing_left(buildah: Buildah, names: list[str]) -> None:
    left = {
        c.name
        for c in buildah.containers()
        if any(c.name.startswith(f"{OURS}{name}-") for name in names)
    }
    assert not left, left


def test_two_runs_of_the_same_target_both_succeed(
    built: BuildResult, buildah: Buildah, tmp_path: Path
) -> None:
    change = f"same{uuid.uuid4().hex[:6]}"
    config = write_target(tmp_path, "concurrent-same", change)
    try:
        first, second = start(config), start(config)
        outputs = [finish(first), finish(second)]
        built_by = ["built this run: rock-tree, runtime" in out for out in outputs]
        # Exactly one run built the units; the other waited and found them.
        assert sorted(built_by) == [False, True], outputs
        assert any("waiting for another build" in out for out in outputs), outputs
        target = load_target(config)
        image = buildah.image_id(target.config.output.reference)
        assert image and all(image[:12] in out for out in outputs)
    finally:
        forget(buildah, [config])
    assert_nothing_left(buildah, ["concurrent-same"])


def test_two_runs_of_different_targets_both_succeed(
    built: BuildResult, buildah: Buildah, tmp_path: Path
) -> None:
    token = uuid.uuid4().hex[:6]
    configs = [
        write_target(tmp_path, "concurrent-a", f"a{token}"),
        write_target(tmp_path, "concurrent-b", f"b{token}"),
    ]
    try:
        processes = [start(config) for config in configs]
        outputs = [finish(process) for process in processes]
        for out in outputs:
            assert "built this run: rock-tree, runtime" in out, out
        ids = {buildah.image_id(load_target(c).config.output.reference) for c in configs}
        assert len(ids) == 2 and None not in ids
    finally:
        forget(buildah, configs)
    assert_nothing_left(buildah, ["concurrent-a", "concurrent-b"])
