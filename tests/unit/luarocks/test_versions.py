"""Rock versions and Lux-style requirements."""

from __future__ import annotations

import pytest

from qjson_tasks.luarocks.versions import ALLOWED_FORMS, OPERATORS, Constraint, Requirement, Version


def v(text: str) -> Version:
    return Version.parse(text)


# --- versions ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parts", "revision"),
    [
        ("1", (1,), None),
        ("0.1.0", (0, 1, 0), None),
        ("1.10", (1, 10), None),
        ("0.1.0-1", (0, 1, 0), 1),
        ("2.4.9-12", (2, 4, 9), 12),
        ("007.08", (7, 8), None),
    ],
)
def test_version_parse(text: str, parts: tuple[int, ...], revision: int | None) -> None:
    version = v(text)
    assert (version.parts, version.revision) == (parts, revision)


@pytest.mark.parametrize("text", ["1", "0.1.0", "0.1.0-1", "10.20.30-40"])
def test_version_str_round_trips(text: str) -> None:
    assert str(v(text)) == text


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ("1.10", "1.9", 1),
        ("1.9", "1.10", -1),
        ("1.0", "1.0.0", 0),
        ("1.0.0", "1", 0),
        ("1.0.1", "1.0", 1),
        ("2.0", "1.99.99", 1),
        ("0.1.0-1", "0.1.0-1", 0),
        ("0.1.0-1", "0.1.0-2", -1),
        ("0.1.0-10", "0.1.0-9", 1),
        # A side without a revision matches every revision of that version.
        ("0.1.0-3", "0.1.0", 0),
        ("0.1.0", "0.1.0-3", 0),
        # The version decides before the revision.
        ("1.0.1-1", "1.0-9", 1),
        ("1.0-9", "1.0.1-1", -1),
    ],
)
def test_version_compare(left: str, right: str, expected: int) -> None:
    assert v(left).compare(v(right)) == expected
    assert v(right).compare(v(left)) == -expected


@pytest.mark.parametrize(
    ("left", "right"), [("1.0", "1.0.0"), ("1.0-1", "1.0")], ids=["padding", "revision"]
)
def test_version_operators_agree_with_compare(left: str, right: str) -> None:
    assert v(left).compare(v(right)) == 0
    assert v(left) == v(right)
    assert not v(left) < v(right)


BAD_VERSIONS = ["", "x", "v1.0", "1.", ".1", "1..2", "1.0-", "1.0-a", "1.0-1-2", "1.0 ", "1.0b"]


@pytest.mark.parametrize("text", BAD_VERSIONS)
def test_bad_version_raises(text: str) -> None:
    with pytest.raises(ValueError, match="is not a version") as info:
        Version.parse(text)
    assert repr(text)[1:-1] in str(info.value)


def test_bad_version_message_lists_the_allowed_form() -> None:
    with pytest.raises(ValueError) as info:
        Version.parse("1.0-rc1")
    assert "1.2.3-1" in str(info.value)


def test_version_with_trailing_newline_is_rejected() -> None:
    with pytest.raises(ValueError):
        Version.parse("1.0\n")


# --- requirements ------------------------------------------------------------------------------

OPERATOR_CASES = [
    # ==
    ("==1.0", "1.0", True),
    ("==1.0", "1.0.0", True),
    ("==1.0", "1.0-3", True),
    ("==1.0-1", "1.0-1", True),
    ("==1.0-1", "1.0-2", False),
    ("==1.0", "1.0.1", False),
    ("== 0.1.0", "0.1.0-1", True),
    # ~= (not equal, as in luarocks)
    ("~=1.0", "1.0", False),
    ("~=1.0", "1.0-1", False),
    ("~=1.0", "1.1", True),
    ("~=1.0", "0.9", True),
    # <
    ("<2.0", "1.9.9", True),
    ("<2.0", "2.0", False),
    ("<2.0", "2.0-1", False),
    ("<2.0", "2.1", False),
    # >
    (">1.0", "1.0.1", True),
    (">1.0", "1.0", False),
    (">1.0", "1.0-5", False),
    (">1.0", "0.9", False),
    # <=
    ("<=1.0", "1.0", True),
    ("<=1.0", "1.0-7", True),
    ("<=1.0", "0.1", True),
    ("<=1.0", "1.0.1", False),
    # >=
    (">=1.0", "1.0", True),
    (">=1.0", "1.10", True),
    (">=1.0", "0.99", False),
    (">= 1.0-2", "1.0-1", False),
    (">= 1.0-2", "1.0-2", True),
    # ~> (as luarocks: every given component must match, later ones may be anything)
    ("~> 2.4", "2.4", True),
    ("~> 2.4", "2.4.0-1", True),
    ("~> 2.4", "2.4.9", True),
    ("~> 2.4", "2.4.99-3", True),
    ("~> 2.4", "2.5", False),
    ("~> 2.4", "2.5-1", False),
    ("~> 2.4", "2.3", False),
    ("~> 2.4", "2.3.99", False),
    ("~> 2.4", "3.0", False),
    ("~> 2", "2", True),
    ("~> 2", "2.9", True),
    ("~> 2", "2.99.99", True),
    ("~> 2", "3.0", False),
    ("~> 2", "1.9", False),
    ("~> 2.4.1", "2.4.1-3", True),
    ("~> 2.4.1", "2.4.1.7", True),
    ("~> 2.4.1", "2.4.5", False),
    ("~> 2.4.1", "2.4.0", False),
    ("~> 2.4.1", "2.5", False),
    # bare version means ==
    ("1.0", "1.0", True),
    ("1.0", "1.0-2", True),
    ("1.0", "1.1", False),
    ("0.1.0-1", "0.1.0-2", False),
]


@pytest.mark.parametrize(("requirement", "candidate", "allowed"), OPERATOR_CASES)
def test_requirement_allows(requirement: str, candidate: str, allowed: bool) -> None:
    assert Requirement.parse(requirement).allows(v(candidate)) is allowed


def test_every_operator_is_covered() -> None:
    used = {Requirement.parse(r).constraints[0].operator for r, _, _ in OPERATOR_CASES}
    assert used == set(OPERATORS)


@pytest.mark.parametrize("operator", OPERATORS)
@pytest.mark.parametrize("spacing", ["{op}1.2", "{op} 1.2", "  {op}   1.2  "])
def test_operator_parses_with_any_spacing(operator: str, spacing: str) -> None:
    requirement = Requirement.parse(spacing.format(op=operator))
    assert requirement.constraints == (Constraint(operator, Version((1, 2))),)
    assert str(requirement) == f"{operator} 1.2"


@pytest.mark.parametrize("text", ["1.2", " 1.2 ", "1.2-3"])
def test_bare_version_means_equal(text: str) -> None:
    (constraint,) = Requirement.parse(text).constraints
    assert constraint.operator == "=="
    assert constraint.version == v(text.strip())


@pytest.mark.parametrize(
    ("requirement", "candidate", "allowed"),
    [
        (">= 1.0, < 2.0", "1.0", True),
        (">= 1.0, < 2.0", "1.9.9-1", True),
        (">= 1.0, < 2.0", "2.0", False),
        (">= 1.0, < 2.0", "0.9", False),
        (">=1.0,<2.0", "1.5", True),
        (">= 1.0 , < 2.0 , ~= 1.5", "1.5", False),
        (">= 1.0 , < 2.0 , ~= 1.5", "1.6", True),
        ("~> 1, ~= 1.3", "1.3-1", False),
        ("~> 1, ~= 1.3", "1.4", True),
        ("> 2, < 1", "1.5", False),
    ],
)
def test_comma_joined_constraints_must_all_hold(
    requirement: str, candidate: str, allowed: bool
) -> None:
    assert Requirement.parse(requirement).allows(v(candidate)) is allowed


def test_comma_joined_requirement_str() -> None:
    requirement = Requirement.parse(">=1.0,<2")
    assert len(requirement.constraints) == 2
    assert str(requirement) == ">= 1.0, < 2"
    assert Requirement.parse(str(requirement)) == requirement


@pytest.mark.parametrize(
    ("requirement", "exact"),
    [
        ("==0.1.0", "0.1.0"),
        ("0.1.0", "0.1.0"),
        ("== 0.1.0-1", "0.1.0-1"),
        (">=0.1.0", None),
        ("~> 0.1", None),
        ("~= 0.1", None),
        ("==0.1.0, ==0.1.0", None),
        ("==0.1.0, <1", None),
    ],
)
def test_exact(requirement: str, exact: str | None) -> None:
    assert Requirement.parse(requirement).exact == (v(exact) if exact else None)


BAD_REQUIREMENTS = [
    "",
    "   ",
    ">>1.0",
    "1.0 beta",
    "~>",
    "==",
    ">=",
    "=1.0",
    "!=1.0",
    "=>1.0",
    "> = 1.0",
    "1.0,",
    ",1.0",
    ">=1.0,,<2",
    ">= 1.0 < 2.0",
    "1.0-rc1",
    "latest",
    "scm-1",
    "v1.0",
]


@pytest.mark.parametrize("text", BAD_REQUIREMENTS)
def test_bad_requirement_lists_the_allowed_forms(text: str) -> None:
    with pytest.raises(ValueError) as info:
        Requirement.parse(text)
    message = str(info.value)
    assert message.startswith(f"'{text}' is not a version requirement: use ")
    assert ALLOWED_FORMS in message
    assert "\n" not in message


def test_allowed_forms_names_every_operator() -> None:
    for operator in ("==", "~=", "<", ">", "<=", ">=", "~>"):
        assert operator in ALLOWED_FORMS
    assert "','" in ALLOWED_FORMS
    assert "1.2.3-1" in ALLOWED_FORMS
