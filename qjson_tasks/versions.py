"""Rock versions and Lux-style version requirements (`==`, `~=`, `<`, `>`, `<=`, `>=`, `~>`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

OPERATORS = ("==", "~=", "<=", ">=", "~>", "<", ">")
ALLOWED_FORMS = (
    "a version ('1.2.3' or '1.2.3-1') optionally preceded by one of "
    + ", ".join(OPERATORS)
    + "; several joined by ','"
)

_VERSION = re.compile(r"^\d+(?:\.\d+)*(?:-\d+)?$")
_CONSTRAINT = re.compile(r"^\s*(==|~=|<=|>=|~>|<|>)?\s*(\S+)\s*$")


@dataclass(frozen=True, order=True)
class Version:
    """A luarocks version: dotted numbers plus an optional rockspec revision."""

    parts: tuple[int, ...]
    revision: int | None = None

    @classmethod
    def parse(cls, text: str) -> Version:
        if not _VERSION.match(text):
            raise ValueError(f"'{text}' is not a version")
        main, _, revision = text.partition("-")
        return cls(tuple(int(p) for p in main.split(".")), int(revision) if revision else None)

    def __str__(self) -> str:
        main = ".".join(str(p) for p in self.parts)
        return main if self.revision is None else f"{main}-{self.revision}"

    def _padded(self, width: int) -> tuple[int, ...]:
        return self.parts + (0,) * (width - len(self.parts))

    def compare(self, other: Version) -> int:
        width = max(len(self.parts), len(other.parts))
        mine, theirs = self._padded(width), other._padded(width)
        if mine != theirs:
            return -1 if mine < theirs else 1
        # A requirement without a revision matches every revision of that version.
        if self.revision is None or other.revision is None or self.revision == other.revision:
            return 0
        return -1 if self.revision < other.revision else 1


@dataclass(frozen=True)
class Constraint:
    operator: str
    version: Version

    def allows(self, candidate: Version) -> bool:
        cmp = candidate.compare(self.version)
        if self.operator == "==":
            return cmp == 0
        if self.operator == "~=":
            return cmp != 0
        if self.operator == "<":
            return cmp < 0
        if self.operator == ">":
            return cmp > 0
        if self.operator == "<=":
            return cmp <= 0
        if self.operator == ">=":
            return cmp >= 0
        # "~> 2.4" means ">= 2.4, < 2.5": every given component must match, as in luarocks.
        upper_parts = (*self.version.parts[:-1], self.version.parts[-1] + 1)
        return cmp >= 0 and candidate.compare(Version(upper_parts)) < 0

    def __str__(self) -> str:
        return f"{self.operator} {self.version}"


@dataclass(frozen=True)
class Requirement:
    """One or more constraints that must all hold."""

    constraints: tuple[Constraint, ...]

    @classmethod
    def parse(cls, text: str) -> Requirement:
        pieces = text.split(",")
        if not text.strip() or any(not p.strip() for p in pieces):
            raise ValueError(f"'{text}' is not a version requirement: use {ALLOWED_FORMS}")
        constraints = []
        for piece in pieces:
            match = _CONSTRAINT.match(piece)
            if not match or not _VERSION.match(match.group(2)):
                raise ValueError(f"'{text}' is not a version requirement: use {ALLOWED_FORMS}")
            constraints.append(Constraint(match.group(1) or "==", Version.parse(match.group(2))))
        return cls(tuple(constraints))

    def allows(self, candidate: Version) -> bool:
        return all(c.allows(candidate) for c in self.constraints)

    @property
    def exact(self) -> Version | None:
        """The version when the requirement pins exactly one, else None."""
        if len(self.constraints) == 1 and self.constraints[0].operator == "==":
            return self.constraints[0].version
        return None

    def __str__(self) -> str:
        return ", ".join(str(c) for c in self.constraints)
