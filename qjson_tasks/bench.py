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
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from qjson_tasks.buildah import Buildah
from qjson_tasks.config import Target, load_target
from qjson_tasks.containerfile import render
from qjson_tasks.errors import ConfigError, ToolError
from qjson_tasks.pipeline import image_index
from qjson_tasks.plan import BuildPlan

Log = Callable[[str], None]
BENCH_REPOSITORY = "localhost/qjson-tasks-bench"
README_BEGIN = "<!-- bench:begin -->"
README_END = "<!-- bench:end -->"
# The rock change: one line of Rust, different each time so every repetition really changes.
CHANGE_LINE = "\npub const QJT_BENCH_CHANGE: u32 = {n};\n"
WARM_RUNS = 5  # warm samples of each tool per repetition


@dataclass
class Samples:
    seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def summary(self) -> dict[str, float]:
        return {
            "median": round(self.median, 2),
            "min": round(min(self.seconds), 2),
            "max": round(max(self.seconds), 2),
        }

    def cell(self) -> str:
        s = self.summary()
        return f"{s['median']:.2f} s ({s['min']:.2f} to {s['max']:.2f})"


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
    if config.rock.source_kind != "directory":
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


def timed(argv: Sequence[str], cwd: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise ToolError(f"bench step failed: {' '.join(argv)}", output=tail)
    return elapsed


def compile_bytecode(project_dir: Path) -> None:
    """Python's bytecode for the project, as a first run writes it (or pip, on install).

    Without it, a process started with PYTHONDONTWRITEBYTECODE (set on some CI machines)
    compiles every module of ours again on each run, and the warm numbers measure that.
    """
    sources = [str(project_dir / "qjson_tasks"), str(project_dir / "tasks.py")]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *sources], check=True)


def qjson_tasks_build(setup: BenchSetup, project_dir: Path) -> list[str]:
    """`invoke build-runtime` as run.sh runs it: the environment's `invoke` script."""
    script = Path(sys.executable).parent / "invoke"
    invoke = [str(script)] if script.is_file() else [sys.executable, "-m", "invoke"]
    return [
        *invoke, "--search-root", str(project_dir),
        "build-runtime", "--config", str(setup.config_path),
    ]  # fmt: skip


def buildah_build(setup: BenchSetup, tag: str, *extra: str) -> list[str]:
    return [
        "buildah", "build", "--layers", "--pull=never", "--isolation", "chroot", "--quiet",
        "-f", str(setup.containerfile), "-t", tag, *extra, str(setup.workdir),
    ]  # fmt: skip


def added_bytes(buildah: Buildah, image: str, base: str) -> int:
    """Uncompressed bytes of the layers an image has on top of its base."""

    def layers(ref: str) -> list[tuple[str, int]]:
        info = buildah.inspect_image(ref) or {}
        manifest = json.loads(info.get("Manifest") or "{}")
        return [(layer["digest"], int(layer["size"])) for layer in manifest.get("layers", [])]

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

    def repetition(self, n: int, original: str) -> None:
        setup = self.setup
        setup.rock_lib.write_text(original, encoding="utf-8")
        target = load_target(setup.config_path)
        build = qjson_tasks_build(setup, self.project_dir)

        forget_units(self.current_plan(target), self.buildah, self.cargo_caches())
        self.record("cold qjson-tasks", timed(build, self.project_dir))
        self.cold_image_ids.append(self.buildah.image_id(target.config.output.reference) or "")
        self.record(
            "cold buildah build",
            timed(buildah_build(setup, setup.buildah_tag, "--no-cache"), setup.workdir),
        )
        # Warm runs are short, so one sample each is mostly noise: take several, alternating.
        for _ in range(WARM_RUNS):
            self.record("warm qjson-tasks", timed(build, self.project_dir))
            self.record(
                "warm buildah build", timed(buildah_build(setup, setup.buildah_tag), setup.workdir)
            )
        setup.rock_lib.write_text(original + CHANGE_LINE.format(n=n), encoding="utf-8")
        self.record("rock change qjson-tasks", timed(build, self.project_dir))
        changed = self.current_plan(load_target(setup.config_path))
        self.changed_units += [changed.rock_tree.image, changed.runtime.image]
        self.record(
            "rock change buildah build",
            timed(buildah_build(setup, setup.buildah_tag), setup.workdir),
        )
        self.record("verify", self.verify_seconds(target))


def ratios(samples: dict[str, Samples]) -> dict[str, float]:
    def ratio(a: str, b: str) -> float:
        return round(samples[a].median / samples[b].median, 3)

    return {
        "warm: qjson-tasks / buildah build": ratio("warm qjson-tasks", "warm buildah build"),
        "rock change / cold (qjson-tasks)": ratio("rock change qjson-tasks", "cold qjson-tasks"),
        "rock change: qjson-tasks / buildah build": ratio(
            "rock change qjson-tasks", "rock change buildah build"
        ),
        "cold: qjson-tasks / buildah build": ratio("cold qjson-tasks", "cold buildah build"),
    }


TARGETS = {
    "warm: qjson-tasks / buildah build": ("<=", 0.2),
    "rock change / cold (qjson-tasks)": ("<", 0.5),
}


def evaluate(results: dict[str, Any]) -> dict[str, bool]:
    met = {}
    for name, (op, bound) in TARGETS.items():
        value = results["ratios"][name]
        met[name] = value <= bound if op == "<=" else value < bound
    sizes = results["sizes"]
    met["added bytes within 64 KiB of the shipped files"] = (
        sizes["runtime_added_bytes"] - sizes["shipped_bytes"] <= 64 * 1024
    )
    return met


def markdown(results: dict[str, Any]) -> str:
    timings = results["timings"]
    rows = [
        "| scenario | qjson-tasks | buildah build --layers | ratio |",
        "|---|---|---|---|",
    ]
    for scenario in ("cold", "warm", "rock change"):
        ours = Samples(timings[f"{scenario} qjson-tasks"]["seconds"])
        theirs = Samples(timings[f"{scenario} buildah build"]["seconds"])
        rows.append(
            f"| {scenario} | {ours.cell()} | {theirs.cell()} | {ours.median / theirs.median:.2f} |"
        )
    sizes = results["sizes"]
    verify = Samples(timings["verify"]["seconds"])
    met = results["targets_met"]
    lines = [
        f"Offline target, {results['repeat']} repetitions ({WARM_RUNS} warm runs of each in"
        f" every one), median (min to max); {results['machine']}; {results['date']}.",
        "",
        *rows,
        "",
        "| size added over the base image | bytes |",
        "|---|---|",
        f"| shipped files (the floor) | {sizes['shipped_bytes']} |",
        f"| qjson-tasks runtime image | {sizes['runtime_added_bytes']} |",
        f"| `buildah build` runtime stage | {sizes['buildah_build_added_bytes']} |",
        f"| single stage (keeps the builder) | {sizes['single_stage_added_bytes']} |",
        "",
        f"Verification: {verify.cell()}. Rock change over cold build (qjson-tasks):"
        f" {results['ratios']['rock change / cold (qjson-tasks)']:.2f}."
        f" Cold builds after removing every unit gave the same image ID each time:"
        f" {'yes' if results['reproducible'] else 'no'}.",
        "",
        "Targets: "
        + "; ".join(f"{name}: {'met' if ok else 'NOT met'}" for name, ok in met.items()),
    ]
    return "\n".join(lines) + "\n"


def update_readme(readme: Path, table: str) -> bool:
    """Replace the text between the bench markers; False when the README has none."""
    text = readme.read_text(encoding="utf-8")
    if README_BEGIN not in text or README_END not in text:
        return False
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_BEGIN}\n{table}{README_END}{tail}", encoding="utf-8")
    return True


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
        image_id = str(image.get("id", "")).removeprefix("sha256:")
        if image_id not in before and not image.get("names"):
            buildah.rmi_quietly(image_id)


def all_image_ids(buildah: Buildah) -> set[str]:
    return {str(i.get("id", "")).removeprefix("sha256:") for i in buildah.images(intermediate=True)}


def machine(buildah: Buildah) -> str:
    version = buildah.runner.run(["buildah", "--version"]).split(" (")[0].strip()
    return f"{platform.machine()}, {os.cpu_count()} cores, {version}"
