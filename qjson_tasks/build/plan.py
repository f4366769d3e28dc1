"""TargetConfig -> BuildPlan: the unit graph (builder, rock tree, runtime) and every argv.

Pure: everything that needs the disk or buildah (image IDs, the rockspec found in a rock
directory and its content digest, the smoke script) is looked up before and passed in as
PlanInputs. A unit's hash covers its inputs and its dependencies' hashes, nothing else: not
the time, not the run, not the working directory.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace

from qjson_tasks.build import names
from qjson_tasks.build.names import UNIT_REPOSITORY
from qjson_tasks.build.steps import (
    VENDOR_DIR,
    Argv,
    LocalRock,
    RockStep,
    builder_setup_commands,
    cache_mounts,
    local_servers,
    luarocks_argv,
    rock_step,
)
from qjson_tasks.config.lockfile import Lock
from qjson_tasks.config.model import Rock, Target, TargetConfig

LABEL_PREFIX = "org.qjson-tasks"
# Part of every unit's hash: bump a kind's number when the way such a unit is made changes
# (its recipe), so images made by an older qjson-tasks are not taken for current ones.
# builder 4 and rock-tree 5: the images carry their unit-name label (build/unitcache.py).
RECIPES = {"builder": 4, "rock-tree": 5, "runtime": 5}
# Builder environment values whose names look like credentials are hashed, never printed.
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|CREDENTIAL|API_?KEY|AUTH", re.IGNORECASE)

SECRET_MARK = "<hidden>"


@dataclass(frozen=True)
class RockFacts:
    """What the plan needs from the disk about one rock: the rockspec of a local directory,
    and the sha256 of a local source's contents (directory, rock file or server)."""

    local: LocalRock | None = None
    digest: str = ""


@dataclass(frozen=True)
class ImageFacts:
    """What the plan needs to know about a local image."""

    ref: str
    image_id: str
    created: int = 0


@dataclass(frozen=True)
class PlanInputs:
    base: ImageFacts | None
    builder: ImageFacts | None
    rocks: tuple[RockFacts, ...] = ()
    server_digest: str = ""
    verify_digest: str = ""
    lock: Lock | None = None
    platform: str = ""  # `linux/arm64` for a platform's build (see build/platforms.py)


@dataclass(frozen=True)
class Unit:
    """A build step named by the hash of its inputs; kept as the image `image`."""

    kind: str
    inputs: Mapping[str, object]
    depends: tuple[Unit, ...] = ()
    hash: str = field(init=False)

    def __post_init__(self) -> None:
        content = {
            "recipe": RECIPES[self.kind],
            "kind": self.kind,
            "inputs": self.inputs,
            "depends": {dep.kind: dep.hash for dep in self.depends},
        }
        object.__setattr__(self, "hash", unit_hash(content))

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.hash}"

    @property
    def image(self) -> str:
        return f"{UNIT_REPOSITORY}/{self.kind}:{self.hash}"


@dataclass(frozen=True)
class BuildPlan:
    target: str
    run_id: str
    base_image: str
    builder_image: str
    base_id: str
    builder_id: str
    builder: Unit
    rock_tree: Unit
    runtime: Unit
    builder_setup: tuple[Argv, ...]
    setup_env: Mapping[str, str]
    rocks: tuple[RockStep, ...]
    rock_env: Mapping[str, str]
    servers: tuple[tuple[str, str], ...]  # local rock servers: (host dir, path in builder)
    lock: Lock | None
    make_manifest: Argv
    luarocks_command: Argv
    source_digests: Mapping[str, str]
    tree: str
    prefix: str
    lua_version: str
    output_ref: str
    timestamp: int
    resolved: bool
    cacheable: bool
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def units(self) -> tuple[Unit, ...]:
        return (self.builder, self.rock_tree, self.runtime)

    def provenance_labels(self) -> dict[str, str]:
        """The IDs of the base and builder images and the hashes of the units the runtime
        image is made from. Not its own hash: that also covers how it is verified, which
        must not change the image."""
        units = {f"{LABEL_PREFIX}.unit.{unit.kind}": unit.hash for unit in self.units[:2]}
        return {
            f"{LABEL_PREFIX}.base-image.id": self.base_id,
            f"{LABEL_PREFIX}.builder-image.id": self.builder_id,
            **units,
        }

    def reusable(self, unit: Unit) -> bool:
        """Whether an existing image of the unit may stand for it (see cacheable)."""
        return self.cacheable or unit.kind == "builder"

    def status(self, unit: Unit, present: set[str], cached: Collection[str] = ()) -> str:
        """`built` (a local image stands for it), `in cache` (the registry cache has it)
        or `to build`."""
        if not self.reusable(unit):
            return "to build"
        if unit.image in present:
            return "built"
        return "in cache" if unit.kind in cached else "to build"

    def document(self, present: set[str], cached: Collection[str] = ()) -> dict[str, object]:
        """The plan as data for `invoke plan` (TOML), like Miq's intermediate form; cached:
        the kinds of the units the registry cache holds."""
        units = {}
        for unit in self.units:
            inputs = dict(unit.inputs)
            units[unit.kind] = {
                "name": unit.name,
                "image": unit.image,
                "status": self.status(unit, present, cached),
                "depends": [dep.name for dep in unit.depends],
                "inputs": _without_none(inputs),
            }
        document: dict[str, object] = {"target": self.target, "output": self.output_ref}
        if not self.cacheable:
            document["note"] = (
                "a rock from a server has a version range and there is no lock, so the server"
                " picks the version at build time and the rock tree and runtime are built every"
                " time (`invoke lock` pins it)"
            )
        if not self.resolved:
            document["note"] = (
                "the base or builder image is not present locally, so the hashes are"
                " provisional until it is made or pulled"
            )
        document["units"] = units
        return document

    def container_name(self, role: str) -> str:
        return names.container_name(self.run_id, self.target, role)

    @property
    def temporary_ref(self) -> str:
        """The runtime image's name until it is verified and tagged (removed afterwards)."""
        return names.temporary_image(self.target, self.run_id)


def _without_none(value: object) -> object:
    """TOML has no null: drop None entries (their absence says the same)."""
    if isinstance(value, Mapping):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_without_none(v) for v in value]
    return value


def unit_hash(inputs: Mapping[str, object]) -> str:
    """A short, stable hash of a unit's inputs (canonical JSON, sorted keys)."""
    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def shown_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment with credential-like values replaced by a marker. Used for printing
    and for hashing: a token reaches a server, not the built files, and a hash of it (a
    label, a printed plan) would let a weak one be guessed offline."""
    return {key: SECRET_MARK if is_secret_name(key) else value for key, value in env.items()}


def static_labels(target: Target) -> dict[str, str]:
    """Labels that follow from the config alone (the Containerfile carries them too)."""
    config = target.config
    return {
        f"{LABEL_PREFIX}.target": target.name,
        f"{LABEL_PREFIX}.rock": config.rock.name,
        f"{LABEL_PREFIX}.rock.requirement": config.rock.version,
        f"{LABEL_PREFIX}.builder-image": config.builder.image,
        f"{LABEL_PREFIX}.base-image": config.runtime.base_image,
        f"{LABEL_PREFIX}.prefix": config.runtime.prefix,
        "org.opencontainers.image.base.name": config.runtime.base_image,
    }


def _rock_inputs(rock: Rock, facts: RockFacts) -> dict[str, object]:
    """A rock as its hash sees it: a local source by content, never by where it lies."""
    source = rock.where
    return {
        "name": rock.name,
        "requirement": rock.version,
        "source": source.kind if source.is_local else rock.source,
        "rockspec": facts.local.rockspec if facts.local else None,
        "digest": facts.digest or None,
    }


def _platform_input(inputs: PlanInputs) -> dict[str, object]:
    """A platform chosen in the config or by --platform is every unit's input; absent for a
    target that builds for the host alone, so its hashes stay what they were."""
    return {"platform": inputs.platform} if inputs.platform else {}


def _image_inputs(facts: ImageFacts | None, ref: str) -> dict[str, object]:
    return {"ref": ref, "id": facts.image_id if facts else None}


def _server_input(config: TargetConfig, inputs: PlanInputs) -> object:
    """The dependency server as the rock tree's hash sees it: a local one by content."""
    deps = config.luarocks.where
    if inputs.lock or deps is None:
        return None
    return (inputs.server_digest or None) if deps.is_local_server else deps.text


def _rock_tree_unit(
    config: TargetConfig,
    inputs: PlanInputs,
    facts: tuple[RockFacts, ...],
    steps: tuple[RockStep, ...],
    builder: Unit,
) -> Unit:
    lock = inputs.lock
    return Unit(
        "rock-tree",
        {
            "rocks": [_rock_inputs(r, f) for r, f in zip(config.rocks, facts, strict=True)],
            "server": _server_input(config, inputs),
            "lock": lock.hashed() if lock else None,
            "install": [shlex.join(step.argv) for step in steps],
            "env": shown_env(config.builder.env),
            "tree": config.staging.tree,
            **_platform_input(inputs),
        },
        (builder,),
    )


def _runtime_unit(
    config: TargetConfig,
    inputs: PlanInputs,
    rock_tree: Unit,
    labels: Mapping[str, str],
    timestamp: int,
) -> Unit:
    verify: dict[str, object] = {
        "luajit": config.runtime.luajit,
        "user": config.runtime.user,
        "artifacts": list(config.artifacts),
        "smoke": inputs.verify_digest,  # with the gateway check's snippet, if any
    }
    if config.verify.gateway is not None:  # absent otherwise: other targets keep their hash
        verify["gateway"] = config.verify.gateway.model_dump(mode="json")
    return Unit(
        "runtime",
        {
            "base": _image_inputs(inputs.base, config.runtime.base_image),
            "prefix": config.runtime.prefix,
            "labels": labels,
            "timestamp": timestamp,
            "verify": verify,
            **_platform_input(inputs),
        },
        (rock_tree,),
    )


def _builder_unit(config: TargetConfig, inputs: PlanInputs, setup_env: Mapping[str, str]) -> Unit:
    return Unit(
        "builder",
        {
            "image": _image_inputs(inputs.builder, config.builder.image),
            "setup": [shlex.join(argv) for argv in builder_setup_commands(config)],
            "setup_env": dict(setup_env),
            **_platform_input(inputs),
        },
    )


def _cacheable(config: TargetConfig, facts: tuple[RockFacts, ...], lock: Lock | None) -> bool:
    """A range from a server resolves to whatever is newest when it runs: not an input the
    hash can see, so such a rock tree (and its runtime) is built every time. A lock pins
    every version and its bytes."""
    return lock is not None or all(
        fact.local is not None or rock.where.kind == "file" or rock.requirement.exact
        for rock, fact in zip(config.rocks, facts, strict=True)
    )


def make_plan(target: Target, inputs: PlanInputs, *, run_id: str) -> BuildPlan:
    config = target.config
    apt = config.builder.package_manager == "apt"
    setup_env = {"DEBIAN_FRONTEND": "noninteractive"} if apt else {}
    builder = _builder_unit(config, inputs, setup_env)
    facts = inputs.rocks or tuple(RockFacts() for _ in config.rocks)
    lock = inputs.lock
    steps = tuple(
        rock_step(config, rock, fact.local, lock)
        for rock, fact in zip(config.rocks, facts, strict=True)
    )
    rock_tree = _rock_tree_unit(config, inputs, facts, steps, builder)
    steps = tuple(replace(step, mounts=cache_mounts(builder.hash, step)) for step in steps)
    timestamp = config.output.source_date_epoch
    if timestamp is None:
        timestamp = inputs.base.created if inputs.base else 0
    labels = static_labels(target)
    runtime = _runtime_unit(config, inputs, rock_tree, labels, timestamp)
    return BuildPlan(
        target=target.name,
        run_id=run_id,
        base_image=config.runtime.base_image,
        builder_image=config.builder.image,
        # Containers start from the IDs the hashes were computed from, not from names that
        # could have moved since.
        base_id=inputs.base.image_id if inputs.base else config.runtime.base_image,
        builder_id=inputs.builder.image_id if inputs.builder else config.builder.image,
        builder=builder,
        rock_tree=rock_tree,
        runtime=runtime,
        builder_setup=builder_setup_commands(config),
        setup_env=setup_env,
        rocks=steps,
        rock_env=dict(config.builder.env),
        servers=local_servers(config, lock),
        lock=lock,
        make_manifest=(f"{config.builder.luarocks}-admin", "make-manifest", VENDOR_DIR)
        if lock
        else (),
        luarocks_command=luarocks_argv(config, None),
        source_digests={
            rock.name: fact.digest
            for rock, fact in zip(config.rocks, facts, strict=True)
            if rock.where.kind in ("directory", "file")
        },
        tree=config.staging.tree,
        prefix=config.runtime.prefix,
        lua_version=config.runtime.lua_version,
        output_ref=config.output.reference,
        timestamp=timestamp,
        resolved=inputs.base is not None and inputs.builder is not None,
        cacheable=_cacheable(config, facts, lock),
        labels=labels,
    )
