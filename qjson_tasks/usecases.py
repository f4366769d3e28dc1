"""What the tasks do, as plain functions: load a target, build it, verify it, describe it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from qjson_tasks import DEFAULT_TARGET, labelmemo, lockfile, locks, pinning, rootless
from qjson_tasks.baseimage import build_base_image
from qjson_tasks.buildah import Buildah, ImageListing
from qjson_tasks.config import (
    Overrides,
    Target,
    apply_overrides,
    check_image_flag,
    find_target,
    list_targets,
    load_target,
)
from qjson_tasks.containerfile import render
from qjson_tasks.errors import ConfigError, QjsonTasksError, VerificationError
from qjson_tasks.lockfile import Lock
from qjson_tasks.pipeline import (
    BUILD_USER,
    TREE_BYTES_LABEL,
    BuildResult,
    build,
    builder_container,
    image_facts,
    image_index,
    image_labels,
    plan_inputs,
)
from qjson_tasks.plan import (
    CACHE_PREFIX,
    UNIT_REPOSITORY,
    VENDOR_DIR,
    BuildPlan,
    make_plan,
    shown_env,
)
from qjson_tasks.runner import Runner, ShRunner, require
from qjson_tasks.verify import VerifyReport, smoke_scripts, verify_image

PROJECT_DIR = Path(__file__).resolve().parent.parent
CONFIG_DIR = PROJECT_DIR / "config"
CONTAINERFILE_DIR = PROJECT_DIR / "containerfiles"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Tools:
    runner: Runner
    buildah: Buildah


def make_tools(
    target: Target | None,
    keep: bool = False,
    runner: Runner | None = None,
    listing: ImageListing | None = None,
) -> Tools:
    """The runner and buildah facade a task uses; `listing` is an image listing already
    started (see start_image_listing)."""
    if runner is None:
        require("buildah")
        runner = ShRunner()
    isolation = target.config.buildah.isolation if target else "chroot"
    return Tools(runner, Buildah(runner, isolation=isolation, keep=keep, listing=listing))


def resolve_target(
    name: str | None,
    config_path: str | None = None,
    overrides: Overrides | None = None,
    config_dir: Path = CONFIG_DIR,
) -> Target:
    if name and config_path:
        raise ConfigError("give either --target or --config, not both")
    if config_path:
        target = load_target(Path(config_path))
    else:
        target = find_target(name or DEFAULT_TARGET, config_dir)
    return apply_overrides(target, overrides or Overrides())


def describe_targets(config_dir: Path = CONFIG_DIR) -> list[str]:
    """One line per target: name, description, base image; broken files say what is wrong."""
    lines = []
    for path in list_targets(config_dir):
        marker = " (default)" if path.stem == DEFAULT_TARGET else ""
        try:
            config = load_target(path).config
        except ConfigError as exc:
            lines.append(f"{path.stem}{marker}: INVALID: {exc}")
            continue
        lines.append(
            f"{path.stem}{marker}: {config.description or '(no description)'}"
            f" [base {config.runtime.base_image}, rock {config.rock.name} {config.rock.version}]"
        )
    return lines


def show_target(target: Target) -> str:
    data = target.config.model_dump(mode="json", exclude_none=True)
    data["builder"]["env"] = shown_env(data["builder"].get("env", {}))
    header = f"# target {target.name} from {target.path}\n"
    return header + tomli_w.dumps(data)


def make_base_image(target: Target, tools: Tools, rebuild: bool = False) -> str:
    config = target.config
    bootstrap = config.runtime.bootstrap
    if bootstrap is None:
        raise ConfigError(
            f"{target.path}: runtime.bootstrap: not set, so target '{target.name}' uses a pulled"
            f" base image ({config.runtime.base_image}) rather than one made here"
        )
    existing = tools.buildah.image_id(config.runtime.base_image)
    if existing and not rebuild:
        log(f"{config.runtime.base_image} exists ({existing[:12]}); --rebuild makes it again")
        return existing
    return build_base_image(
        tools.buildah, tools.runner, bootstrap, config.runtime.base_image, str(target.path)
    )


def run_verify(target: Target, tools: Tools, image: str | None = None) -> VerifyReport:
    if image is not None:
        check_image_flag("--image", image)
    return verify_image(image or target.config.output.reference, target, tools.buildah)


def floating_warnings(target: Target) -> list[str]:
    return pinning.floating_warnings(target, CONFIG_DIR)


def pin_target(target: Target, tools: Tools) -> list[str]:
    return pinning.pin_target(target, tools.buildah)


def verify_digest(target: Target) -> str:
    """What the verification of a runtime unit depends on beyond the config: the smoke script."""
    digest = hashlib.sha256()
    for name, script in smoke_scripts(target):
        digest.update(f"{name}\0{script}\0".encode())
    return digest.hexdigest()


def lock_for_build(target: Target, update: bool, vendor: str | None) -> Lock | None:
    """The lock a build uses: the target's (checked against its config), a new one with
    --update-lock, or none."""
    lock = lock_target(target) if update else lockfile.checked_lock(target)
    if vendor is not None and lock is None:
        raise ConfigError(
            f"--vendor: target '{target.name}' has no lock ({lockfile.lock_path(target)}):"
            f" run `invoke lock --target {target.name}` and `invoke vendor` first"
        )
    if vendor is not None and not Path(vendor).is_dir():
        raise ConfigError(f"--vendor: '{vendor}' is not a directory")
    return lock


def lock_target(target: Target) -> Lock:
    """Resolve every rock and write config/NAME.lock."""
    from qjson_tasks.resolve import resolve  # only here: keeps every other task's start quick

    lock = resolve(target)
    path = lockfile.write_lock(target, lock)
    log(f"    wrote {path}: " + ", ".join(f"{r.label} ({r.role})" for r in lock.rocks))
    return lock


def vendor_target(target: Target, tools: Tools, directory: Path) -> list[str]:
    """Every locked rock file into directory, hash-checked, plus a luarocks manifest
    (`luarocks-admin make-manifest`), so it can be the only rock server of an offline build."""
    from qjson_tasks.vendor import fetch_locked

    lock = lockfile.checked_lock(target)
    if lock is None:
        raise ConfigError(
            f"{lockfile.lock_path(target)}: no lock for target '{target.name}': run"
            f" `invoke lock --target {target.name}` first"
        )
    directory.mkdir(parents=True, exist_ok=True)
    names = fetch_locked(target, lock, directory)
    run_id = uuid.uuid4().hex[:8]
    with builder_container(
        target, tools.buildah, tools.runner, run_id=run_id, log=log, role="vendor"
    ) as ctr:
        tools.buildah.copy(ctr, str(directory), VENDOR_DIR)
        admin = f"{target.config.builder.luarocks}-admin"
        tools.buildah.run(ctr, (admin, "make-manifest", VENDOR_DIR), user=BUILD_USER)
        with tools.buildah.mounted(ctr) as root:
            written = root / VENDOR_DIR.lstrip("/")
            for path in sorted(written.iterdir()):
                if path.name.startswith("manifest") or path.name == "index.html":
                    shutil.copyfile(path, directory / path.name)
                    names.append(path.name)
    return names


def run_build(
    target: Target,
    tools: Tools,
    verify: bool = True,
    rebuild: bool = False,
    update_lock: bool = False,
    vendor: str | None = None,
) -> BuildResult:
    lock = lock_for_build(target, update_lock, vendor)

    def verifier(image_id: str) -> VerifyReport:
        report = verify_image(image_id, target, tools.buildah)
        log(report.table())
        return report

    return build(
        target,
        tools.buildah,
        tools.runner,
        run_id=uuid.uuid4().hex[:8],
        verifier=verifier if verify else None,
        log=log,
        verify_digest=verify_digest(target),
        rebuild=rebuild,
        warnings=floating_warnings(target),
        lock=lock,
        vendor=Path(vendor) if vendor else None,
    )


def current_plan(target: Target, tools: Tools) -> BuildPlan:
    """The plan from what is local now; nothing is made, pulled or run."""
    config = target.config
    index = image_index(tools.buildah)
    base = image_facts(tools.buildah, config.runtime.base_image, index)
    builder = image_facts(tools.buildah, config.builder.image, index)
    inputs = plan_inputs(
        target, base, builder, verify_digest(target), lockfile.checked_lock(target)
    )
    return make_plan(target, inputs, run_id="plan")


def plan_toml(target: Target, tools: Tools) -> str:
    for warning in floating_warnings(target):
        log(warning)
    plan = current_plan(target, tools)
    present = set(image_index(tools.buildah))
    header = f"# plan for target {target.name} from {target.path}; nothing was run\n"
    return header + tomli_w.dumps(plan.document(present))


def clean_units(tools: Tools, everything: bool, config_dir: Path = CONFIG_DIR) -> list[str]:
    """Remove unit images: all of them, or those no target in config_dir uses now."""
    keep: set[str] = set()
    if not everything:
        for path in list_targets(config_dir):
            try:
                target = load_target(path)
                keep.update(unit.image for unit in current_plan(target, tools).units)
            except QjsonTasksError as exc:
                log(f"    {path.name}: {exc}; its units count as unused")
    removed = []
    for name in sorted(image_index(tools.buildah)):
        if name.startswith(f"{UNIT_REPOSITORY}/") and name not in keep:
            # The lock a build holds while it makes or uses this unit.
            with locks.hold(name, log):
                if tools.buildah.rmi_quietly(name):
                    removed.append(name)
    if everything:
        for cache in cargo_caches():
            shutil.rmtree(cache, ignore_errors=True)
            removed.append(str(cache))
    labelmemo.forget_all_but(i.image_id for i in image_index(tools.buildah).values())
    return removed


def cargo_caches() -> list[Path]:
    """buildah's cache mounts of ours (cargo target directories and downloads): under
    $TMPDIR, /var/tmp and the TMPDIR a rootless run gets inside `buildah unshare`."""
    places = {
        Path(os.environ.get("TMPDIR") or "/var/tmp"),
        Path("/var/tmp"),
        rootless.user_tmpdir(locks.real_uid()),
    }
    return sorted({c for tmp in places for c in tmp.glob(f"buildah-cache*/{CACHE_PREFIX}*")})


def format_build_result(result: BuildResult) -> str:
    if result.verification is not None:
        verified = "verified"
    elif "runtime" in result.built:
        verified = "not verified (--no-verify)"
    else:
        verified = "up to date (verified when it was built)"
    built = ", ".join(result.built) or "nothing"
    return (
        f"built {result.image_ref} ({result.image_id[:12]}), {verified}\n"
        f"  rock version: {result.rock_version}\n"
        f"  added over the base: {result.files_added} files, {result.bytes_added} bytes\n"
        f"  units: {' '.join(result.units.values())}\n"
        f"  built this run: {built}"
    )


def write_json_report(report: VerifyReport, path: str) -> None:
    try:
        Path(path).write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--json: cannot write {path}: {exc.strerror}") from None


def containerfile_path(target: Target) -> Path:
    return CONTAINERFILE_DIR / f"{target.name}.Containerfile"


def render_containerfile(target: Target) -> str:
    return render(target, PROJECT_DIR)


def run_benchmark(target: Target, tools: Tools, repeat: int, out_dir: Path) -> str:
    """Time qjson-tasks against `buildah build --layers`; write JSON and Markdown results
    (and the README's bench section); returns the Markdown."""
    from qjson_tasks import bench  # only here: keeps every other task's start quick

    if repeat < 1:
        raise ConfigError(f"--repeat: {repeat} must be at least 1")
    buildah = tools.buildah
    if target.config.runtime.bootstrap:
        make_base_image(target, tools)
    before = bench.all_image_ids(buildah)

    def verify_seconds(bench_target: Target) -> float:
        start = time.perf_counter()
        report = verify_image(bench_target.config.output.reference, bench_target, buildah)
        if not report.passed:
            raise VerificationError(f"the bench image failed verification\n{report.summary()}")
        return time.perf_counter() - start

    bench.compile_bytecode(PROJECT_DIR)
    with tempfile.TemporaryDirectory(prefix="qjt-bench-") as tmp:
        setup = bench.prepare(target, Path(tmp), PROJECT_DIR)
        run = bench.BenchRun(
            setup, buildah, PROJECT_DIR, lambda t: current_plan(t, tools), cargo_caches,
            verify_seconds, log,
        )  # fmt: skip
        original = setup.rock_lib.read_text(encoding="utf-8")
        try:
            for n in range(1, repeat + 1):
                log(f"==> repetition {n} of {repeat}")
                run.repetition(n, original)
            runtime_ref = load_target(setup.config_path).config.output.reference
            base = target.config.runtime.base_image
            buildah.runner.run(
                bench.buildah_build(setup, setup.single_stage_tag, "--target", "builder")
            )
            tree_unit = current_plan(load_target(setup.config_path), tools).rock_tree.image
            shipped = int(image_labels(buildah, tree_unit).get(TREE_BYTES_LABEL, 0))
            sizes = {
                "shipped_bytes": shipped,
                "runtime_added_bytes": bench.added_bytes(buildah, runtime_ref, base),
                "buildah_build_added_bytes": bench.added_bytes(buildah, setup.buildah_tag, base),
                "single_stage_added_bytes": bench.added_bytes(
                    buildah, setup.single_stage_tag, base
                ),
            }
        finally:
            bench.remove_bench_images(buildah, before, run.changed_units)
    results: dict[str, object] = {
        "target": target.name,
        "repeat": repeat,
        "date": time.strftime("%Y-%m-%d"),
        "machine": bench.machine(buildah),
        "timings": {
            name: {**s.summary(), "seconds": [round(x, 3) for x in s.seconds]}
            for name, s in run.samples.items()
        },
        "ratios": bench.ratios(run.samples),
        "sizes": sizes,
        "reproducible": len(set(run.cold_image_ids)) == 1,
        "cold_image_ids": run.cold_image_ids,
    }
    results["targets_met"] = bench.evaluate(results)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    table = bench.markdown(results)
    (out_dir / "results.md").write_text(table, encoding="utf-8")
    bench.update_readme(PROJECT_DIR / "README.md", table)
    return table + f"\nwritten to {out_dir}/results.json and {out_dir}/results.md\n"
