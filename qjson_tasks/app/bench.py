"""`invoke bench`: qjson-tasks against `buildah build --layers` of the equivalent Containerfile.

Everything runs in one go on a copy of a target (its own output name, its rock copied into a
scratch directory that is also the Containerfile's build context), so the numbers in one
report come from the same machine state. Each scenario is timed as a user runs it: a fresh
process for qjson-tasks (`invoke build-runtime --config ...`) and for buildah.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from qjson_tasks.app.bench_report import (
    WARM_RUNS,
    Samples,
    evaluate,
    markdown,
    ratios,
    update_readme,
)
from qjson_tasks.app.build import make_base_image
from qjson_tasks.app.tools import PROJECT_DIR, Tools, log
from qjson_tasks.app.units import cargo_caches, current_plan
from qjson_tasks.build.containerfile import render
from qjson_tasks.build.images import image_index, image_labels
from qjson_tasks.build.labels import TREE_BYTES_LABEL
from qjson_tasks.build.plan import BuildPlan
from qjson_tasks.config.load import load_target
from qjson_tasks.config.model import Target
from qjson_tasks.errors import ConfigError, VerificationError
from qjson_tasks.host.buildah import Buildah
from qjson_tasks.host.runner import Runner
from qjson_tasks.verify.image import verify_image

Log = Callable[[str], None]
BENCH_REPOSITORY = "localhost/qjson-tasks-bench"
# The rock change: one line of Rust, different each time so every repetition really changes.
CHANGE_LINE = "\npub const QJT_BENCH_CHANGE: u32 = {n};\n"


@dataclass(frozen=True)
class BenchSetup:
    """The bench's own copy of a target: config file, rock copy, Containerfile, names."""

    workdir: Path
    config_path: Path
    rock_lib: Path
    containerfile: Path
    buildah_tag: str
    single_stage_tag: str


def prepare(target: Target, workdir: Path, project_dir: Path) -> BenchSetup:
    """Copy the target's local rock into workdir and write a config and Containerfile there."""
    config = target.config
    if config.rock.where.kind != "directory":
        raise ConfigError(
            f"{target.path}: rock.source: the bench needs a local rock directory (the offline"
            " target has one)"
        )
    rock_copy = workdir / "rock"
    shutil.copytree(config.rock.source, rock_copy, ignore=shutil.ignore_patterns("target", ".git"))
    libs = sorted(rock_copy.glob("src/lib.rs"))
    if not libs:
        raise ConfigError(f"{target.path}: rock.source: no src/lib.rs to change in the bench")
    data = config.model_dump(mode="json", exclude_none=True)
    data["rocks"][0]["source"] = str(rock_copy)
    data["output"] = {"image": f"{BENCH_REPOSITORY}/{target.name}", "tag": "qjson-tasks"}
    config_path = workdir / f"{target.name}.toml"
    config_path.write_text(tomli_w.dumps(data), encoding="utf-8")
    containerfile = workdir / "Containerfile"
    containerfile.write_text(render(load_target(config_path), workdir), encoding="utf-8")
    return BenchSetup(
        workdir=workdir,
        config_path=config_path,
        rock_lib=libs[0],
        containerfile=containerfile,
        buildah_tag=f"{BENCH_REPOSITORY}/{target.name}:buildah-build",
        single_stage_tag=f"{BENCH_REPOSITORY}/{target.name}:single-stage",
    )


def timed(action: Callable[[], object]) -> float:
    """Seconds an action took (a failing command raises ToolError with its output)."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def compile_bytecode(runner: Runner, project_dir: Path) -> None:
    """Python's bytecode for the project, as a first run writes it (or pip, on install).

    Without it, a process started with PYTHONDONTWRITEBYTECODE (set on some CI machines)
    compiles every module of ours again on each run, and the warm numbers measure that.
    """
    sources = [str(project_dir / "qjson_tasks"), str(project_dir / "tasks.py")]
    runner.run([sys.executable, "-m", "compileall", "-q", *sources])


def qjson_tasks_build(setup: BenchSetup, project_dir: Path) -> list[str]:
    """`invoke build-runtime` as run.sh runs it: the environment's `invoke` script."""
    script = Path(sys.executable).parent / "invoke"
    invoke = [str(script)] if script.is_file() else [sys.executable, "-m", "invoke"]
    return [
        *invoke, "--search-root", str(project_dir),
        "build-runtime", "--config", str(setup.config_path),
    ]  # fmt: skip


def added_bytes(buildah: Buildah, image: str, base: str) -> int:
    """Uncompressed bytes of the layers an image has on top of its base."""

    def layers(ref: str) -> tuple[tuple[str, int], ...]:
        info = buildah.inspect_image(ref)
        return info.layers if info else ()

    below = {digest for digest, _ in layers(base)}
    return sum(size for digest, size in layers(image) if digest not in below)


def forget_units(plan: BuildPlan, buildah: Buildah, cargo_caches: Sequence[Path]) -> None:
    """Make the next qjson-tasks build cold: no unit images, no cargo cache of this builder."""
    for unit in plan.units:
        if buildah.image_id(unit.image):
            buildah.rmi(unit.image)
    for cache in cargo_caches:
        if plan.builder.hash in cache.name:
            shutil.rmtree(cache, ignore_errors=True)


@dataclass
class BenchRun:
    setup: BenchSetup
    runner: Runner
    buildah: Buildah
    project_dir: Path
    current_plan: Callable[[Target], BuildPlan]
    cargo_caches: Callable[[], list[Path]]
    verify_seconds: Callable[[Target], float]
    log: Log
    samples: dict[str, Samples] = field(default_factory=dict)
    cold_image_ids: list[str] = field(default_factory=list)
    changed_units: list[str] = field(default_factory=list)  # of rocks only the bench had

    def record(self, name: str, seconds: float) -> None:
        self.samples.setdefault(name, Samples()).seconds.append(seconds)
        self.log(f"    {name}: {seconds:.2f} s")

    def ours(self, name: str) -> None:
        """Time `invoke build-runtime` of the bench's config, as a fresh process."""
        argv = qjson_tasks_build(self.setup, self.project_dir)
        self.record(name, timed(lambda: self.runner.run(argv, cwd=self.project_dir)))

    def theirs(self, name: str, *extra: str) -> None:
        """Time `buildah build --layers` of the rendered Containerfile."""
        setup = self.setup
        self.record(
            name,
            timed(
                lambda: self.buildah.build(
                    setup.containerfile, setup.buildah_tag, setup.workdir, *extra
                )
            ),
        )

    def repetition(self, n: int, original: str) -> None:
        setup = self.setup
        setup.rock_lib.write_text(original, encoding="utf-8")
        target = load_target(setup.config_path)
        forget_units(self.current_plan(target), self.buildah, self.cargo_caches())
        self.ours("cold qjson-tasks")
        self.cold_image_ids.append(self.buildah.image_id(target.config.output.reference) or "")
        self.theirs("cold buildah build", "--no-cache")
        # Warm runs are short, so one sample each is mostly noise: take several, alternating.
        for _ in range(WARM_RUNS):
            self.ours("warm qjson-tasks")
            self.theirs("warm buildah build")
        setup.rock_lib.write_text(original + CHANGE_LINE.format(n=n), encoding="utf-8")
        self.ours("rock change qjson-tasks")
        changed = self.current_plan(load_target(setup.config_path))
        self.changed_units += [changed.rock_tree.image, changed.runtime.image]
        self.theirs("rock change buildah build")
        self.record("verify", self.verify_seconds(target))


def remove_bench_images(buildah: Buildah, before: set[str], units: Sequence[str]) -> None:
    """The bench's tags, the units of its changed rocks, and the unnamed layer images its
    `buildah build` runs left (so don't run it next to other builds)."""
    for unit in units:
        if buildah.image_id(unit):
            buildah.rmi_quietly(unit)
    for name in image_index(buildah):
        if name.startswith(f"{BENCH_REPOSITORY}/"):
            buildah.rmi_quietly(name)
    for image in buildah.images(intermediate=True):
        if image.image_id not in before and not image.names:
            buildah.rmi_quietly(image.image_id)


def all_image_ids(buildah: Buildah) -> set[str]:
    return {image.image_id for image in buildah.images(intermediate=True)}


def machine(buildah: Buildah) -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, {buildah.version()}"


def measure_sizes(run: BenchRun, target: Target) -> dict[str, int]:
    """What each image adds over the base, against the shipped files and a single stage."""
    setup, buildah = run.setup, run.buildah
    bench_target = load_target(setup.config_path)
    base = target.config.runtime.base_image
    buildah.build(setup.containerfile, setup.single_stage_tag, setup.workdir, "--target", "builder")
    tree_unit = run.current_plan(bench_target).rock_tree.image
    return {
        "shipped_bytes": int(image_labels(buildah, tree_unit).get(TREE_BYTES_LABEL, 0)),
        "runtime_added_bytes": added_bytes(buildah, bench_target.config.output.reference, base),
        "buildah_build_added_bytes": added_bytes(buildah, setup.buildah_tag, base),
        "single_stage_added_bytes": added_bytes(buildah, setup.single_stage_tag, base),
    }


def results_of(run: BenchRun, target: Target, repeat: int, sizes: dict[str, int]) -> dict[str, Any]:
    results: dict[str, Any] = {
        "target": target.name,
        "repeat": repeat,
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(run.buildah),
        "timings": {
            name: {**s.summary(), "seconds": [round(x, 3) for x in s.seconds]}
            for name, s in run.samples.items()
        },
        "ratios": ratios(run.samples),
        "sizes": sizes,
        "reproducible": len(set(run.cold_image_ids)) == 1,
        "cold_image_ids": run.cold_image_ids,
    }
    results["targets_met"] = evaluate(results)
    return results


def write_results(results: dict[str, Any], out_dir: Path) -> str:
    """results.json, results.md and the README's bench section; returns the Markdown."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    table = markdown(results)
    (out_dir / "results.md").write_text(table, encoding="utf-8")
    update_readme(PROJECT_DIR / "README.md", table)
    return table


def run_benchmark(target: Target, tools: Tools, repeat: int, out_dir: Path) -> str:
    """Time qjson-tasks against `buildah build --layers`; write JSON and Markdown results
    (and the README's bench section); returns the Markdown."""
    if repeat < 1:
        raise ConfigError(f"--repeat: {repeat} must be at least 1")
    buildah = tools.buildah
    if target.config.runtime.bootstrap:
        make_base_image(target, tools)
    before = all_image_ids(buildah)

    def verify_seconds(bench_target: Target) -> float:
        start = time.perf_counter()
        reference = bench_target.config.output.reference
        report = verify_image(reference, bench_target, buildah, tools.session_run_id())
        if not report.passed:
            raise VerificationError(f"the bench image failed verification\n{report.summary()}")
        return time.perf_counter() - start

    compile_bytecode(tools.runner, PROJECT_DIR)
    with tempfile.TemporaryDirectory(prefix="qjt-bench-") as tmp:
        setup = prepare(target, Path(tmp), PROJECT_DIR)
        run = BenchRun(
            setup, tools.runner, buildah, PROJECT_DIR, lambda t: current_plan(t, tools),
            cargo_caches, verify_seconds, log,
        )  # fmt: skip
        original = setup.rock_lib.read_text(encoding="utf-8")
        try:
            for n in range(1, repeat + 1):
                log(f"==> repetition {n} of {repeat}")
                run.repetition(n, original)
            from qjson_tasks.app.bench_ci import ci_runner

            for n in range(1, repeat + 1):
                log(f"==> CI runner with a unit cache, {n} of {repeat}")
                ci_runner(run, n, tools.session_run_id())
            sizes = measure_sizes(run, target)
            from qjson_tasks.app.bench_platform import OTHER, other_platform

            log(f"==> {OTHER}")
            other_platform(run, original)
        finally:
            remove_bench_images(buildah, before, run.changed_units)
    table = write_results(results_of(run, target, repeat, sizes), out_dir)
    return table + f"\nwritten to {out_dir}/results.json and {out_dir}/results.md\n"
