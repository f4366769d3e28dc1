"""What a verification found: one result per check, as a table or JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from qjson_tasks.build.plan import LABEL_PREFIX

MAX_FINDINGS = 20


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str
    findings: tuple[str, ...] = ()


@dataclass(frozen=True)
class VerifyReport:
    image: str
    image_id: str
    target: str
    checks: tuple[CheckResult, ...] = field(default_factory=tuple)
    provenance: Mapping[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def failed(self) -> list[CheckResult]:
        return [check for check in self.checks if not check.passed]

    def table(self) -> str:
        rows = [("check", "result", "detail")]
        for check in self.checks:
            rows.append((check.name, "PASS" if check.passed else "FAIL", check.detail))
        width = [max(len(row[i]) for row in rows) for i in range(2)]
        lines = [f"{r[0]:<{width[0]}}  {r[1]:<{width[1]}}  {r[2]}" for r in rows]
        for check in self.failed():
            shown = check.findings[:MAX_FINDINGS]
            lines += [f"  {check.name}: {finding}" for finding in shown]
            if len(check.findings) > len(shown):
                lines.append(f"  {check.name}: ... and {len(check.findings) - len(shown)} more")
        return "\n".join(lines)

    def provenance_lines(self) -> str:
        """What exactly is in the image, from its labels: rocks, images, units."""
        lines = ["provenance (image labels):"]
        for key, value in sorted(self.provenance.items()):
            short = key.removeprefix(f"{LABEL_PREFIX}.")
            if short.startswith("rocks."):
                rock = json.loads(value)
                spec = rock.get("rockspec_sha256") or "-"
                source = rock.get("source_sha256") or "unknown (not locked)"
                value = f"{rock.get('version', '?')} rockspec {spec} source {source}"
            lines.append(f"  {short}: {value}")
        return "\n".join(lines) if len(lines) > 1 else ""

    def summary(self) -> str:
        return self.table()

    def to_json(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "image_id": self.image_id,
            "target": self.target,
            "passed": self.passed,
            "checks": [asdict(check) for check in self.checks],
            "provenance": dict(self.provenance),
        }


PROVENANCE = ("rocks.", "unit.", "base-image.id", "builder-image.id", "lock")


def is_provenance(label: str) -> bool:
    return label.removeprefix(f"{LABEL_PREFIX}.").startswith(PROVENANCE) and label.startswith(
        LABEL_PREFIX
    )
