"""The bench's arithmetic and report: ratios, targets, Markdown and the README section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qjson_tasks.app import bench, bench_report
from qjson_tasks.app.targets import resolve_target
from qjson_tasks.config.load import load_target
from tests.conftest import PROJECT_DIR


def results(
    warm_ours: float = 0.4, warm_theirs: float = 4.0, ci: list[float] | None = None
) -> dict[str, Any]:
    seconds = {
        "cold qjson-tasks": [40.0, 42.0, 41.0],
        "cold buildah build": [50.0, 52.0, 51.0],
        "warm qjson-tasks": [warm_ours] * 3,
        "warm buildah build": [warm_theirs] * 3,
        "rock change qjson-tasks": [9.0, 10.0, 11.0],
        "rock change buildah build": [20.0, 21.0, 22.0],
        "verify": [3.0, 3.1, 2.9],
        **({bench_report.CI_SCENARIO: ci} if ci else {}),
    }
    samples = {name: bench_report.Samples(list(values)) for name, values in seconds.items()}
    data: dict[str, Any] = {
        "repeat": 3,
        "machine": "x86_64, 2 cores, buildah version 1.28.2",
        "date": "2026-11-21",
        "timings": {name: {**s.summary(), "seconds": s.seconds} for name, s in samples.items()},
        "ratios": bench_report.ratios(samples),
        "sizes": {
            "shipped_bytes": 346876,
            "runtime_added_bytes": 360960,
            "buildah_build_added_bytes": 360960,
            "single_stage_added_bytes": 700_000_000,
        },
        "reproducible": True,
    }
    data["targets_met"] = bench_report.evaluate(data)
    return data


def test_ratios_are_medians_divided() -> None:
    ratios = results()["ratios"]
    assert ratios["warm: qjson-tasks / buildah build"] == 0.1
    assert ratios["rock change / cold (qjson-tasks)"] == round(10 / 41, 3)
    assert ratios["cold: qjson-tasks / buildah build"] == round(41 / 51, 3)


def test_targets_are_judged_from_the_same_run() -> None:
    assert all(results()["targets_met"].values())
    slow = results(warm_ours=1.0, warm_theirs=4.0)["targets_met"]
    assert slow["warm: qjson-tasks / buildah build"] is False


def test_the_markdown_has_every_scenario_and_size() -> None:
    text = bench_report.markdown(results())
    for needle in ("| cold |", "| warm |", "| rock change |", "346876", "single stage", "met"):
        assert needle in text
    assert "0.40 s (0.40 to 0.40)" in text


def test_the_readme_section_between_the_markers_is_replaced(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        f"intro\n{bench_report.README_BEGIN}\nold\n{bench_report.README_END}\noutro\n"
    )
    assert bench_report.update_readme(readme, "new table\n")
    assert readme.read_text() == (
        f"intro\n{bench_report.README_BEGIN}\nnew table\n{bench_report.README_END}\noutro\n"
    )
    plain = tmp_path / "OTHER.md"
    plain.write_text("no markers\n")
    assert not bench_report.update_readme(plain, "x")
    assert plain.read_text() == "no markers\n"


def test_the_bench_builds_its_own_copy_of_the_rock_under_its_own_name(tmp_path: Path) -> None:
    setup = bench.prepare(resolve_target("offline"), tmp_path, PROJECT_DIR)
    copy = load_target(setup.config_path).config
    assert copy.rock.source == str(tmp_path / "rock")
    assert setup.rock_lib == tmp_path / "rock" / "src" / "lib.rs" and setup.rock_lib.is_file()
    assert copy.output.reference.startswith(f"{bench.BENCH_REPOSITORY}/")
    # The Containerfile's build context is the scratch directory holding the copy.
    assert "COPY rock/ /qjson-src/qjson-demo/" in setup.containerfile.read_text()


def test_the_ci_runner_scenario_is_judged_against_the_cold_build_when_it_ran() -> None:
    assert bench_report.CI_RATIO not in results()["targets_met"]  # no docker-registry: skipped
    assert "CI runner" not in bench_report.markdown(results())
    timed = results(ci=[4.0, 4.1, 3.9])
    assert timed["ratios"][bench_report.CI_RATIO] == round(4.0 / 41, 3)
    assert timed["targets_met"][bench_report.CI_RATIO]
    assert "4.00 s (3.90 to 4.10) to a verified image, 0.10 of the cold build" in (
        bench_report.markdown(timed)
    )
    assert not results(ci=[7.0])["targets_met"][bench_report.CI_RATIO]  # 0.17 > 0.15


def test_another_platforms_builds_are_reported_next_to_the_hosts() -> None:
    data = results()
    assert "under emulation" not in bench_report.markdown(data)
    for kind, seconds in (("cold", 120.0), ("rock change", 15.5)):
        name = bench_report.platform_scenario(kind, "linux/arm64")
        data["timings"][name] = {"seconds": [seconds]}
    text = bench_report.markdown(data)
    assert (
        "linux/arm64 under emulation, one sample: cold 120.00 s (120.00 to 120.00) against"
        " 41.00 s here; rock change 15.50 s (15.50 to 15.50) against 10.00 s here."
    ) in text
    assert bench_report.evaluate(data) == results()["targets_met"]  # no target of its own
