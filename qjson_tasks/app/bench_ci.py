"""The bench's CI scenario: a fresh runner with a warm registry unit cache.

A registry (Debian's docker-registry) on 127.0.0.1 serves as the unit cache. This machine's
storage plays runner A: its rock-tree and runtime units are removed, and a build of the
bench's config with `[cache]` makes and pushes them. Runner B is a second storage holding
only the runtime base image (its own storage.conf, as a fresh CI runner has): the time of
its `invoke build-runtime` to a verified image is the scenario's, set against the cold
build of the same run.
"""

from __future__ import annotations

import os
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import tomli_w

from qjson_tasks.app.bench import BenchRun, qjson_tasks_build
from qjson_tasks.app.bench_report import CI_SCENARIO
from qjson_tasks.build.labels import SBOM_LABEL
from qjson_tasks.config.load import load_target
from qjson_tasks.errors import ToolError
from qjson_tasks.host.loopback import LOOPBACK, free_port
from qjson_tasks.host.runner import Background, Runner
from qjson_tasks.host.storage import runner_environment, scratch_dir, temporary_storage
from qjson_tasks.sbom.store import provenance_path, stored_path

START_TIMEOUT = 15.0  # seconds for the registry to answer


@contextmanager
def loopback_registry(runner: Runner, directory: Path) -> Iterator[str]:
    """docker-registry on 127.0.0.1 at a free port, storing under directory; its host:port."""
    port = free_port()
    config = directory / "registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {directory / 'storage'}\nhttp:\n  addr: {LOOPBACK}:{port}\n"
    )
    server = runner.start(["docker-registry", "serve", str(config)])
    try:
        _wait_until_it_answers(server, f"{LOOPBACK}:{port}")
        yield f"{LOOPBACK}:{port}"
    finally:
        server.kill()


def _wait_until_it_answers(server: Background, host: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.wait(0.05) is not None:
            break
        try:
            with urllib.request.urlopen(f"http://{host}/v2/", timeout=0.5):
                return
        except (urllib.error.URLError, OSError):
            continue
    raise ToolError(f"docker-registry did not answer at {host}", server.output())


def cached_config(config_path: Path, repository: str) -> Path:
    """The bench's config with the registry as its unit cache, beside it."""
    data = load_target(config_path).config.model_dump(mode="json", exclude_none=True)
    data["cache"] = {"repository": repository, "tls_verify": False}
    path = config_path.with_name(f"{config_path.stem}-cached.toml")
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


def ci_runner(run: BenchRun, n: int, run_id: str) -> None:
    """Time a fresh runner's build against a unit cache runner A has just filled. The
    registry's files and runner B's storage are the run's (run_id): a sweep removes them
    if the bench is killed."""
    if shutil.which("docker-registry") is None:
        run.log("    skipped: docker-registry is not installed (run.sh installs it)")
        return
    with scratch_dir(run_id) as tmp, loopback_registry(run.runner, tmp) as host:
        config = cached_config(run.setup.config_path, f"{host}/bench-{n}")
        argv = [*qjson_tasks_build(run.setup, run.project_dir)[:-1], str(config)]
        fill_cache(run, config, argv)
        run.record(CI_SCENARIO, fresh_runner_build(run, config, argv, run_id))


def fill_cache(run: BenchRun, config: Path, argv: list[str]) -> None:
    """Runner A: this storage without the rock-tree and runtime units builds and pushes;
    then this machine's SBOM store forgets the runtime's documents, which runner B, a
    fresh runner, has to take from the cache too."""
    plan = run.current_plan(load_target(config))
    for unit in (plan.rock_tree, plan.runtime):
        if run.buildah.image_id(unit.image):
            run.buildah.rmi(unit.image)
    run.runner.run(argv, cwd=run.project_dir)
    run.changed_units += [plan.rock_tree.image, plan.runtime.image]  # the bench's own
    info = run.buildah.inspect_image(plan.runtime.image)
    if info is not None:
        stored_path(info.labels.get(SBOM_LABEL, "none")).unlink(missing_ok=True)
        provenance_path(info.image_id).unlink(missing_ok=True)


def fresh_runner_build(run: BenchRun, config: Path, argv: list[str], run_id: str) -> float:
    """Runner B: seconds to a verified image in a storage holding only the base image."""
    base = load_target(config).config.runtime.base_image
    with temporary_storage(run.buildah, run_id) as fresh:
        assert fresh.storage is not None
        env = {**os.environ, **runner_environment(fresh.storage, fresh.storage.root.parent)}
        run.buildah.push(base, fresh.storage.transport(base))
        start = time.perf_counter()
        run.runner.run(argv, cwd=run.project_dir, env=env)
        return time.perf_counter() - start
