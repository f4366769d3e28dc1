"""The bench's other platform: the same builds for linux/arm64 (under qemu emulation on an
x86-64 machine), timed next to the host's.

One sample each, after the host's repetitions: a cold build (the arm64 base image kept, as
the host's cold build keeps its base, every arm64 unit removed) and a rock change. The
bench's config is copied with an output of its own, so the host image the size table reads
is left alone; the manifest list the build tags is removed with `manifest rm`.
"""

from __future__ import annotations

import time

import tomli_w

from qjson_tasks.app.bench import CHANGE_LINE, BenchRun, forget_units, qjson_tasks_build
from qjson_tasks.app.bench_report import platform_scenario
from qjson_tasks.app.build import make_base_image
from qjson_tasks.app.tools import Tools
from qjson_tasks.build.images import image_index
from qjson_tasks.build.platforms import platform_view
from qjson_tasks.config.load import load_target
from qjson_tasks.config.platforms import host_platform, parse_platform
from qjson_tasks.host.emulation import emulation_problem

OTHER = "linux/arm64"
CHANGE_NUMBER = 9999  # a rock change no host repetition made


def other_platform(run: BenchRun, original: str) -> None:
    platform = parse_platform(OTHER)
    if platform.architecture == host_platform().architecture:
        run.log(f"    skipped: {OTHER} is this machine's own platform")
        return
    if problem := emulation_problem(platform):
        run.log(f"    skipped: {problem}")
        return
    setup = run.setup
    data = load_target(setup.config_path).config.model_dump(mode="json", exclude_none=True)
    data["output"] = {**data["output"], "image": f"{data['output']['image']}-platform"}
    config = setup.config_path.with_name(f"{setup.config_path.stem}-platform.toml")
    config.write_text(tomli_w.dumps(data), encoding="utf-8")
    target = load_target(config)
    make_base_image(target, Tools(run.runner, run.buildah), platform=OTHER)  # not timed
    argv = [*qjson_tasks_build(setup, run.project_dir)[:-1], str(config), "--platform", OTHER]
    view = platform_view(target, platform).target
    try:
        setup.rock_lib.write_text(original, encoding="utf-8")
        forget_units(run.current_plan(view), run.buildah, run.cargo_caches())
        run.record(platform_scenario("cold", OTHER), _timed(run, argv))
        setup.rock_lib.write_text(original + CHANGE_LINE.format(n=CHANGE_NUMBER), "utf-8")
        run.record(platform_scenario("rock change", OTHER), _timed(run, argv))
        changed = run.current_plan(platform_view(load_target(config), platform).target)
        run.changed_units += [changed.rock_tree.image, changed.runtime.image]
    finally:
        setup.rock_lib.write_text(original, encoding="utf-8")
        listed = image_index(run.buildah).get(target.config.output.reference)
        if listed:  # by ID: a list's name would be looked up in a registry (buildah 1.28)
            run.buildah.manifest_rm_quietly(listed.image_id)


def _timed(run: BenchRun, argv: list[str]) -> float:
    start = time.perf_counter()
    run.runner.run(argv, cwd=run.project_dir)
    return time.perf_counter() - start
