"""`invoke plan` and `invoke clean`: the units of a target as they stand, and removing them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import tomli_w

from qjson_tasks.app.targets import floating_warnings
from qjson_tasks.app.tools import CONFIG_DIR, Tools, log
from qjson_tasks.app.verify import verify_digest
from qjson_tasks.build.images import image_facts, image_index
from qjson_tasks.build.inputs import plan_inputs
from qjson_tasks.build.names import UNIT_REPOSITORY, is_temporary_list
from qjson_tasks.build.plan import BuildPlan, make_plan
from qjson_tasks.build.platforms import platform_targets
from qjson_tasks.build.steps import CACHE_PREFIX
from qjson_tasks.config import lockfile
from qjson_tasks.config.load import list_targets, load_target
from qjson_tasks.config.model import Target
from qjson_tasks.errors import QjsonTasksError
from qjson_tasks.host import labelmemo, locks, rootless
from qjson_tasks.host.buildah import Buildah

if TYPE_CHECKING:
    from qjson_tasks.build.unitcache import UnitCache


def current_plan(target: Target, tools: Tools, cache: UnitCache | None = None) -> BuildPlan:
    """The plan from what is local now; nothing is made, pulled or run. With a unit cache,
    a builder image that is not here counts by the ID its registry gives it."""
    config = target.config
    index = image_index(tools.buildah)
    base = image_facts(tools.buildah, config.runtime.base_image, index)
    builder = image_facts(tools.buildah, config.builder.image, index)
    if builder is None and cache is not None and target.platform is None:
        builder = cache.remote_image(config.builder.image)
    inputs = plan_inputs(
        target, base, builder, verify_digest(target), lockfile.checked_lock(target)
    )
    return make_plan(target, inputs, run_id="plan")


def plan_toml(target: Target, tools: Tools) -> str:
    for warning in floating_warnings(target):
        log(warning)
    present = set(image_index(tools.buildah))
    header = f"# plan for target {target.name} from {target.path}; nothing was run\n"
    documents = {}
    from qjson_tasks.app.build import unit_cache

    for view in platform_targets(target):
        cache = unit_cache(view, tools, None)
        plan = current_plan(view, tools, cache)
        documents[view.platform] = plan.document(present, cached_units(cache, plan, present))
    if None in documents:
        return header + tomli_w.dumps(documents[None])
    # One image per platform, each its own units; the output tag is their manifest list.
    document = {
        "target": target.name,
        "output": target.config.output.reference,
        "manifest_list": [str(platform) for platform in documents],
        "platforms": {str(platform): each for platform, each in documents.items()},
    }
    return header + tomli_w.dumps(document)


def cached_units(cache: UnitCache | None, plan: BuildPlan, present: set[str]) -> list[str]:
    """The kinds of the plan's units the unit cache holds (asked only for units that aren't
    local; an unreachable cache is a warning)."""
    if cache is None or not plan.resolved:
        return []
    return [
        unit.kind
        for unit in plan.units
        if unit.image not in present and plan.reusable(unit) and cache.holds(plan, unit)
    ]


def used_units(tools: Tools, config_dir: Path) -> set[str]:
    """The unit images the targets in config_dir use with their current inputs."""
    from qjson_tasks.app.build import unit_cache

    used: set[str] = set()
    for path in list_targets(config_dir):
        try:
            for view in platform_targets(load_target(path)):
                # With its cache, as its builds plan: a builder image never pulled counts.
                cache = unit_cache(view, tools, None)
                used.update(unit.image for unit in current_plan(view, tools, cache).units)
        except QjsonTasksError as exc:
            log(f"    {path.name}: {exc}; its units count as unused")
    return used


def clean_units(tools: Tools, everything: bool, config_dir: Path = CONFIG_DIR) -> list[str]:
    """Remove unit images: all of them, or those no target in config_dir uses now."""
    keep = set() if everything else used_units(tools, config_dir)
    removed = []
    for name in sorted(image_index(tools.buildah)):
        if name.startswith(f"{UNIT_REPOSITORY}/") and name not in keep:
            # The lock a build holds while it makes or uses this unit.
            with locks.hold(name, log):
                # A list goes with `manifest rm`: `rmi` would remove an image it holds.
                remove = tools.buildah.manifest_rm_quietly if is_temporary_list(name) else None
                if (remove or tools.buildah.rmi_quietly)(name):
                    removed.append(name)
    if everything:
        for cache in cargo_caches(tools.buildah):
            shutil.rmtree(cache, ignore_errors=True)
            removed.append(str(cache))
    if tools.buildah.storage is None:  # the memo is of the default storage's images
        labelmemo.forget_all_but(i.image_id for i in image_index(tools.buildah).values())
    return removed


def cargo_caches(buildah: Buildah | None = None) -> list[Path]:
    """buildah's cache mounts of ours (cargo target directories and downloads): under
    $TMPDIR, /var/tmp and the TMPDIR a rootless run gets inside `buildah unshare`; for a
    facade on another storage (host/storage.py), under that storage's TMPDIR only, where
    its buildah runs keep them."""
    places = {
        Path(os.environ.get("TMPDIR") or "/var/tmp"),
        Path("/var/tmp"),
        rootless.user_tmpdir(locks.real_uid()),
    }
    if buildah is not None and buildah.storage is not None and buildah.storage.tmpdir:
        places = {buildah.storage.tmpdir}
    return sorted({c for tmp in places for c in tmp.glob(f"buildah-cache*/{CACHE_PREFIX}*")})
