"""SIGKILL, as a CI timeout or the OOM killer sends it: the next run sweeps what was left.

Real `invoke build-runtime` processes, each in its own process group, killed with SIGKILL
inside a step (its `==> step` line seen and the step's buildah process running). The output
tag already points at the session's good image and must stay there; no unit the killed step
was making may exist. The next run must remove exactly what carries the dead run's id, say so
in one line, succeed, and leave none of it behind. Each target is a cheap variant of the
offline one: a unique name changes only the runtime unit; a one-line Rust change adds the
rock tree; a builder made from the offline builder unit with `sleep` as its setup adds the
builder unit without a real package install.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import tomli_w

from qjson_tasks.app.tools import Tools
from qjson_tasks.app.units import current_plan
from qjson_tasks.build.names import UNIT_REPOSITORY
from qjson_tasks.build.pipeline import BuildResult
from qjson_tasks.build.sweep import find_leftovers, remove_leftovers
from qjson_tasks.config.load import load_target
from qjson_tasks.config.model import Target
from qjson_tasks.errors import ToolError
from qjson_tasks.host import runs
from qjson_tasks.host.buildah import Buildah
from qjson_tasks.host.storage import STORAGE_PREFIX, storage_place
from qjson_tasks.verify.smoke import default_smoke_script
from tests.integration.conftest import DEMO_ROCK, changed_demo_rock, offline_config_data
from tests.integration.processes import Invocation, group_members, invoke

# The verification's smoke test takes a few seconds, or waits until the test releases it.
SLOW_SMOKE = 'os.execute("sleep 3")\n'
RELEASE = "/tmp/qjt-release"
HELD_SMOKE = f"""for _ = 1, 1200 do
    local released = io.open("{RELEASE}")
    if released then released:close() break end
    os.execute("sleep 0.1")
end
"""
BROKEN_IMAGE = re.compile(r'locating item named "manifest" for image with ID "([0-9a-f]{64})"')


@dataclass(frozen=True)
class Crash:
    target: Target
    name: str
    own_units: tuple[str, ...]  # the unit kinds only this target has

    @property
    def config(self) -> str:
        return str(self.target.path)

    @property
    def output(self) -> str:
        return self.target.config.output.reference


@dataclass
class Lab:
    tmp: Path
    good: BuildResult
    buildah: Buildah
    crashes: list[Crash] = field(default_factory=list)
    started: list[Invocation] = field(default_factory=list)
    killed: list[str] = field(default_factory=list)

    def target(self, prefix: str, smoke: str = "", rust: bool = False, setup: float = 0) -> Crash:
        """A variant of the offline target, writing to a tag on the good image."""
        name = f"{prefix}{uuid.uuid4().hex[:6]}"
        rock = changed_demo_rock(self.tmp / name, name) if rust else DEMO_ROCK
        data = offline_config_data(rock, name)
        own = ("rock-tree", "runtime") if rust else ("runtime",)
        if setup:
            builder = self.good.units["builder"].removeprefix("builder-")
            data["builder"].update(
                image=f"{UNIT_REPOSITORY}/builder:{builder}",
                package_manager="none",
                packages=[],
                setup=[f"sleep {setup}  # {name}"],
            )
            own = ("builder", "rock-tree", "runtime")
        if smoke:
            script = self.tmp / f"{name}.lua"
            script.write_text(smoke + default_smoke_script())
            data["verify"] = {"smoke_script": str(script)}
        path = self.tmp / f"{name}.toml"
        path.write_text(tomli_w.dumps(data))
        crash = Crash(load_target(path), name, own)
        self.buildah.tag(self.good.image_id, crash.output)
        self.crashes.append(crash)
        return crash

    def invoke(self, *args: str) -> Invocation:
        self.started.append(invoke(*args))
        return self.started[-1]

    def build(self, crash: Crash) -> Invocation:
        return self.invoke("build-runtime", "--config", crash.config)

    def kill(self, run: Invocation, group: bool = True) -> str:
        run_id = run.run_id()
        self.killed.append(run_id)
        run.kill(group)
        return run_id

    def left_by(self, run_id: str) -> tuple[set[str], set[str]]:
        """(containers, images) whose names carry run_id."""
        containers = {
            c.name
            for c in self.buildah.containers()
            if c.name.startswith("qjt-") and c.name.endswith(f"-{run_id}")
        }
        images = {
            name
            for image in self.buildah.images()
            for name in image.names
            if "/unverified:" in name and name.endswith(f"-{run_id}")
        }
        return containers, images

    def unit_image(self, crash: Crash, kind: str) -> str:
        plan = current_plan(crash.target, Tools(self.buildah.runner, self.buildah))
        return next(unit.image for unit in plan.units if unit.kind == kind)

    def cleanup(self) -> None:
        for run in self.started:
            if run.process.poll() is None:  # a test failed while it ran: it is killed too
                self.killed.append(run.held_run_id() or "")
            run.stop()
        with runs.dead_runs() as dead:  # what a test that failed left for no run to sweep
            for run in dead:
                if run.run_id in self.killed:
                    found = find_leftovers(self.buildah, [run.run_id])[0]
                    mounted = self.buildah.mounted_containers()
                    if remove_leftovers(self.buildah, found, mounted) == found:
                        run.forget()
        for crash in self.crashes:
            for kind in crash.own_units:
                unit = self.unit_image(crash, kind)
                if self.buildah.image_id(unit):
                    self.buildah.rmi_quietly(unit)
        repair_image_listing(self.buildah)


def repair_image_listing(buildah: Buildah) -> None:
    """buildah 1.28 records a committed image before its manifest: a commit killed in
    between leaves an image that breaks every `buildah images` on the machine."""
    try:
        buildah.images()
    except ToolError as exc:
        broken = BROKEN_IMAGE.search(str(exc))
        if broken is None:
            raise
        buildah.rmi_quietly(broken.group(1))
        pytest.fail(f"a killed commit left an image without a manifest ({broken.group(1)})")


@pytest.fixture
def lab(tmp_path: Path, built: BuildResult, buildah: Buildah) -> Iterator[Lab]:
    made = Lab(tmp_path, built, buildah)
    yield made
    made.cleanup()


def swept(run_id: str, containers: set[str], images: set[str], directories: int = 0) -> str:
    """The line the next run must print for these leftovers."""
    counts = [
        f"{len(names)} {noun}{'' if len(names) == 1 else 's'}"
        for names, noun in ((containers, "container"), (images, "image"))
        if names
    ]
    if directories:
        counts.append(f"{directories} temporary director{'y' if directories == 1 else 'ies'}")
    return f"removed {' and '.join(counts)} left by an interrupted run ({run_id})"


def assert_swept(lab: Lab, crash: Crash, run_id: str, output: str, line: str) -> None:
    """The line said once, nothing of the run or the target left, the run file gone."""
    assert output.splitlines().count(line) == 1, output
    assert lab.left_by(run_id) == (set(), set())
    names = {c.name for c in lab.buildah.containers()}
    assert not {n for n in names if n.startswith(f"qjt-{crash.name}-")}, names
    images = {n for i in lab.buildah.images() for n in i.names}
    assert not {n for n in images if n.startswith(f"{UNIT_REPOSITORY}/unverified:{crash.name}-")}
    assert not (runs.run_dir() / f"{run_id}.run").exists()


# (step, target variant, the process killed, the unit left unfinished, scratch directories
# of the run's left: the rock install's, where the rocks it installs are staged)
KILL_POINTS = [
    ("builder setup", {"setup": 2}, ("buildah", "run", "-setup-"), "builder", 0),
    ("rock install", {"rust": True}, ("buildah", "run", "-builder-", "luarocks"), "rock-tree", 1),
    ("commit", {}, ("buildah", "commit", "-runtime-"), "runtime", 0),
    ("verify", {"smoke": SLOW_SMOKE}, ("buildah", "run", "qjt-verify-"), "runtime", 0),
]


@pytest.mark.parametrize(
    ("step", "variant", "process", "unit", "directories"),
    KILL_POINTS,
    ids=["builder setup", "rock install", "runtime commit", "verify"],
)
def test_the_next_build_sweeps_what_a_killed_build_left(
    lab: Lab,
    step: str,
    variant: dict[str, object],
    process: tuple[str, ...],
    unit: str,
    directories: int,
) -> None:
    crash = lab.target("crash", **variant)  # type: ignore[arg-type]
    run = lab.build(crash)
    run.wait_for_line(f"==> {step}")
    run.wait_for_process(*process)
    run_id = lab.kill(run)

    containers, images = lab.left_by(run_id)
    assert containers, f"the kill during {step} left no container to sweep"
    scratch = list(storage_place().glob(f"{STORAGE_PREFIX}{run_id}-*"))
    assert len(scratch) == directories, scratch
    assert lab.buildah.image_id(crash.output) == lab.good.image_id
    assert lab.buildah.image_id(lab.unit_image(crash, unit)) is None, "an unfinished unit"

    again = lab.build(crash)
    again.wait_for_line("==> verify")
    assert lab.buildah.image_id(crash.output) == lab.good.image_id, "tagged before verified"
    output = again.finish()
    assert f"built {crash.output} (" in output and "), verified\n" in output
    assert_swept(lab, crash, run_id, output, swept(run_id, containers, images, directories))
    assert not list(storage_place().glob(f"{STORAGE_PREFIX}{run_id}-*"))
    assert lab.buildah.image_id(crash.output) not in (None, lab.good.image_id)


def test_a_killed_verification_leaves_its_containers_and_image_to_sweep(lab: Lab) -> None:
    crash = lab.target("crashverify", smoke=SLOW_SMOKE)
    run = lab.build(crash)
    run.wait_for_line("==> verify")
    run.wait_for_process("buildah", "run", "qjt-verify-")
    run_id = lab.kill(run)
    # What the issue saw left: both verification containers and the per-run image.
    containers = {f"qjt-verify-{run_id}", f"qjt-verify-base-{run_id}"}
    images = {f"{UNIT_REPOSITORY}/unverified:{crash.name}-{run_id}"}
    assert lab.left_by(run_id) == (containers, images)

    output = lab.invoke("clean").finish()
    assert_swept(lab, crash, run_id, output, swept(run_id, containers, images))


def test_of_two_runs_one_killed_the_survivor_is_untouched(lab: Lab) -> None:
    survivor = lab.target("crashsurvivor", smoke=HELD_SMOKE)
    victim = lab.target("crashvictim", smoke=SLOW_SMOKE)
    alive, dying = lab.build(survivor), lab.build(victim)
    alive_id = alive.run_id()
    dying.wait_for_line("==> verify")
    dying.wait_for_process("buildah", "run", "qjt-verify-")
    dead_id = lab.kill(dying)
    dead_left = lab.left_by(dead_id)
    alive.wait_for_process("buildah", "run", f"qjt-verify-{alive_id}")
    alive_left = lab.left_by(alive_id)
    assert alive_left == (
        {f"qjt-verify-{alive_id}", f"qjt-verify-base-{alive_id}"},
        {f"{UNIT_REPOSITORY}/unverified:{survivor.name}-{alive_id}"},
    )

    output = lab.build(victim).finish()  # while the survivor is in its verification
    assert_swept(lab, victim, dead_id, output, swept(dead_id, *dead_left))
    assert alive_id not in output
    assert lab.left_by(alive_id) == alive_left

    release = lab.tmp / "release"
    release.write_text("")
    lab.buildah.copy(f"qjt-verify-{alive_id}", str(release), RELEASE)
    assert "), verified\n" in alive.finish()
    assert lab.left_by(alive_id) == (set(), set())


def test_children_of_a_killed_python_keep_their_run_alive_until_they_end(lab: Lab) -> None:
    crash = lab.target("crashorphan", setup=10)
    run = lab.build(crash)
    run.wait_for_line("==> builder setup")
    run.wait_for_process("buildah", "run", "-setup-")
    run_id = lab.kill(run, group=False)  # `buildah run` of the setup goes on
    setup = f"qjt-{crash.name}-setup-{run_id}"
    probe = ("verify", "--config", crash.config, "--image", lab.good.image_ref)

    output = lab.invoke(*probe).finish()
    assert group_members(run.pid), "the setup ended before the sweep could see it running"
    assert run_id not in output
    assert lab.left_by(run_id) == ({setup}, set())

    run.wait_for_group_to_end()
    output = lab.invoke(*probe).finish()
    assert swept(run_id, {setup}, set()) in output.splitlines()
    assert lab.left_by(run_id) == (set(), set())
