"""What the plan needs from the disk: local rocks and servers, by content."""

from __future__ import annotations

from pathlib import Path

from qjson_tasks.build.plan import ImageFacts, PlanInputs, RockFacts
from qjson_tasks.config.lockfile import Lock
from qjson_tasks.config.model import Target
from qjson_tasks.rocks.source import rock_facts, server_digest


def plan_inputs(
    target: Target,
    base: ImageFacts | None,
    builder: ImageFacts | None,
    verify_digest: str,
    lock: Lock | None = None,
    vendor: Path | None = None,
) -> PlanInputs:
    """Local rocks and servers by content. With a lock, local rocks must still have the
    contents it recorded (a vendored rock file counts by the lock's hash: its copy is checked
    when it is fetched)."""
    facts = rock_facts(target, vendored=lock is not None and vendor is not None)
    if lock is not None:
        facts = tuple(
            RockFacts(fact.local, entry.source_sha256)
            if not fact.digest and rock.where.kind == "file" and (entry := lock.entry(rock.name))
            else fact
            for rock, fact in zip(target.config.rocks, facts, strict=True)
        )
        from qjson_tasks.rocks.vendor import check_local_rocks  # a locked build's only

        check_local_rocks(target, facts, lock)
    # With a lock every rock comes from the vendored files: no server is used.
    servers = server_digest(target) if lock is None else ""
    platform = target.platform.text if target.platform else ""
    return PlanInputs(base, builder, facts, servers, verify_digest, lock, platform)
