"""The runtime image's SBOM, made before its commit (its sha256 is one of the image's
labels), and its provenance statement, written after it (it names the image's ID).

What the runtime adds over its base is exactly the rock tree copied under the prefix, so the
SBOM is made from the rock-tree unit's content (mounted in a scratch container), never from
the clock: the same unit gives the same bytes and so the same image ID.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from qjson_tasks.build.labels import SBOM_LABEL
from qjson_tasks.build.session import BuildSession
from qjson_tasks.sbom.facts import SbomFacts


@dataclass(frozen=True)
class RuntimeSbom:
    facts: SbomFacts
    sha256: str
    path: Path

    @property
    def label(self) -> dict[str, str]:
        return {SBOM_LABEL: self.sha256}


def runtime_sbom(session: BuildSession, labels: Mapping[str, str]) -> RuntimeSbom:
    """Write the SBOM of the runtime about to be committed with `labels` into the store."""
    from qjson_tasks.sbom import collect, store
    from qjson_tasks.sbom.cyclonedx import render
    from qjson_tasks.sbom.facts import make_facts

    plan, buildah = session.plan, session.buildah
    with ExitStack() as scope:
        holder = scope.enter_context(
            buildah.container(plan.rock_tree.image, plan.container_name("sbom"))
        )
        root = scope.enter_context(buildah.mounted(holder))
        files = collect.tree_files(root, plan.tree, plan.prefix)
        owned = collect.owned_files(root, plan.tree, plan.prefix, plan.lua_version)
    facts = make_facts(
        target=plan.target,
        timestamp=plan.timestamp,
        labels=labels,
        crates=collect.known_crates(session.target, plan.lock),
        owned=owned,
        files=files,
        tool_version=collect.tool_version(),
    )
    sha256, path = store.store(render(facts))
    return RuntimeSbom(facts, sha256, path)


def _file_input(path: Path) -> tuple[str, str]:
    return path.name, hashlib.sha256(path.read_bytes()).hexdigest()


def write_provenance(session: BuildSession, sbom: RuntimeSbom, image_id: str) -> Path:
    """The in-toto/SLSA statement of the committed image, beside its SBOM."""
    from qjson_tasks.config.lockfile import lock_path
    from qjson_tasks.sbom import store
    from qjson_tasks.sbom.provenance import statement

    plan, target = session.plan, session.target
    inputs = {"config": _file_input(target.path)}
    if plan.lock is not None and lock_path(target).is_file():
        inputs["lock"] = _file_input(lock_path(target))
    document = statement(
        sbom.facts,
        image=plan.output_ref,
        image_id=image_id,
        inputs=inputs,
        sbom_sha256=sbom.sha256,
        units={unit.kind: unit.hash for unit in plan.units},
    )
    path = store.provenance_path(image_id, sbom.path.parent)
    store.write_atomically(path, document)
    return path
