"""Rock versions and Lux-style version requirements (`==`, `~=`, `<`, `>`, `<=`, `>=`, `~>`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

OPERATORS = ("==", "~=", "<=", ">=", "~>", "<", ">")
ALLOWED_FORMS = (
    "a version ('1.2.3' or '1.2.3-1') optionally preceded by one of "
    + ", ".join(OPERATORS)
    + "; several joined by ','"
)

_VERSION = re.compile(r"^\d+(?:\.\d+)*(?:-\d+)?$")
_CONSTRAINT = re.compile(r"\s*(==|~=|<=|>=|~>|<|>)?\s*(\S+)\s*")


@total_ordering
@dataclass(frozen=True, eq=False)
class Version:
    """A luarocks version: dotted numbers plus an optional rockspec revision.

    Equality and order follow luarocks: 1.0 == 1.0.0, and a version without a revision
    equals every revision of it.
    """

    parts: tuple[int, ...]
    revision: int | None = None

    @classmethod
    def parse(cls, text: str) -> Version:
        if not _VERSION.fullmatch(text):
            raise ValueError(f"{text!r} is not a version: use {ALLOWED_FORMS}")
        main, _, revision = text.partition("-")
        return cls(tuple(int(p) for p in main.split(".")), int(revision) if revision else None)

    def __str__(self) -> str:
        main = ".".join(str(p) for p in self.parts)
        return main if self.revision is None else f"{main}-{self.revision}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self.compare(other) == 0

    def __lt__(self, other: Version) -> bool:
        return self.compare(other) < 0

    def __hash__(self) -> int:
        # Consistent with __eq__: trailing zeros and the revision don't tell versions apart.
        parts = list(self.parts)
        while len(parts) > 1 and parts[-1] == 0:
            parts.pop()
        return hash(tuple(parts))

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
            match = _CONSTRAINT.fullmatch(piece)
            if not match or not _VERSION.fullmatch(match.group(2)):
                raise ValueError(f"'{text}' is not a version requirement: use {ALLOWED_FORMS}")
            constraints.append(Constraint(match.group(1) or "==", Version.parse(match.group(2))))
        return cls(tuple(constraints))

    def allows(self, candidate: Version) -> bool:
        return all(c.allows(candidate) for c in self.constraints)

    def allows_text(self, version: str) -> bool:
        """Whether a version as luarocks writes it ('1.0-1') is allowed; one Version can't
        read (scm-1, dev-1) never is."""
        try:
            return self.allows(Version.parse(version))
        except ValueError:
            return False

    @property
    def exact(self) -> Version | None:
        """The version when the requirement pins exactly one, else None."""
        if len(self.constraints) == 1 and self.constraints[0].operator == "==":
            return self.constraints[0].version
        return None

    def __str__(self) -> str:
        return ", ".join(str(c) for c in self.constraints)
