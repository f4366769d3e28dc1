"""The bench's numbers: samples, ratios against `buildah build`, targets, the Markdown."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

README_BEGIN = "<!-- bench:begin -->"
README_END = "<!-- bench:end -->"
WARM_RUNS = 5  # warm samples of each tool per repetition
# A fresh runner (only the base image) with a warm registry unit cache (app/bench_ci.py).
CI_SCENARIO = "ci runner with unit cache qjson-tasks"
CI_RATIO = "ci runner with unit cache / cold (qjson-tasks)"
PLATFORM_KINDS = ("cold", "rock change")  # timed for another platform too (app/bench_platform)


def platform_scenario(kind: str, platform: str) -> str:
    """A scenario's name for another platform's builds, e.g. `cold qjson-tasks linux/arm64`."""
    return f"{kind} qjson-tasks {platform}"


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
        **({CI_RATIO: ratio(CI_SCENARIO, "cold qjson-tasks")} if CI_SCENARIO in samples else {}),
    }


TARGETS = {
    "warm: qjson-tasks / buildah build": ("<=", 0.2),
    "rock change / cold (qjson-tasks)": ("<", 0.5),
    CI_RATIO: ("<=", 0.15),
}


def evaluate(results: dict[str, Any]) -> dict[str, bool]:
    met = {}
    for name, (op, bound) in TARGETS.items():
        if name not in results["ratios"]:
            continue  # a scenario this run could not time (see app/bench_ci.py)
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
    target = str(results.get("target", "offline")).capitalize()  # results.json names it
    lines = [
        f"{target} target, {results['repeat']} repetitions ({WARM_RUNS} warm runs of each in"
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
        *_ci_lines(results),
        *_platform_lines(results),
        "",
        "Targets: "
        + "; ".join(f"{name}: {'met' if ok else 'NOT met'}" for name, ok in met.items()),
    ]
    return "\n".join(lines) + "\n"


def _ci_lines(results: dict[str, Any]) -> list[str]:
    if CI_SCENARIO not in results["timings"]:
        return []
    ci = Samples(results["timings"][CI_SCENARIO]["seconds"])
    return [
        "",
        f"CI runner (a second storage holding only the base image; the units in a registry"
        f" cache on 127.0.0.1): {ci.cell()} to a verified image,"
        f" {results['ratios'][CI_RATIO]:.2f} of the cold build.",
    ]


def _platform_lines(results: dict[str, Any]) -> list[str]:
    timings = results["timings"]
    suffix = " qjson-tasks "
    platforms = sorted({n.split(suffix, 1)[1] for n in timings if suffix in n})
    lines = []
    for platform in platforms:
        cells = []
        for kind in PLATFORM_KINDS:
            other = timings.get(platform_scenario(kind, platform))
            host = timings.get(f"{kind} qjson-tasks")
            if other and host:
                theirs, ours = Samples(other["seconds"]), Samples(host["seconds"])
                cells.append(f"{kind} {theirs.cell()} against {ours.median:.2f} s here")
        if cells:
            lines += ["", f"{platform} under emulation, one sample: " + "; ".join(cells) + "."]
    return lines


def update_readme(readme: Path, table: str) -> bool:
    """Replace the text between the bench markers; False when the README has none."""
    text = readme.read_text(encoding="utf-8")
    if README_BEGIN not in text or README_END not in text:
        return False
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_BEGIN}\n{table}{README_END}{tail}", encoding="utf-8")
    return True
