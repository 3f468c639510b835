"""SMART scope syntax (v1 and v2) and the intersection rule that keeps every grant within the registration."""

import pytest

from integration.auth.smart_scopes import allows, format_scopes, intersect, parse_scope, parse_scopes


@pytest.mark.parametrize(
    ("text", "resource_type", "permissions"),
    [
        ("system/Observation.rs", "Observation", "rs"),
        ("system/*.cruds", "*", "cruds"),
        ("system/Patient.r", "Patient", "r"),
        ("system/Observation.read", "Observation", "rs"),
        ("system/*.write", "*", "cud"),
        ("system/*.*", "*", "cruds"),
    ],
)
def test_parse_v1_and_v2(text, resource_type, permissions):
    scope = parse_scope(text)
    assert (scope.resource_type, scope.permissions) == (resource_type, frozenset(permissions))
    assert str(scope) == text


@pytest.mark.parametrize(
    "text",
    [
        "system/Observation.sr",  # v2 letters out of order
        "system/Observation.rrs",
        "system/Observation.x",
        "system/Observation.",
        "system/Observation.rs?category=laboratory",  # granular scopes cannot be enforced: never granted
        "system/observation.rs",
        "patient/*.rs",
        "user/Observation.read",
        "launch",
        "openid",
        "system/*.r*",
        "system/Observation.rs ",
    ],
)
def test_unsupported_scopes_parse_to_nothing(text):
    assert parse_scope(text) is None


def _grant(requested: str, registered: str) -> str:
    return format_scopes(intersect(parse_scopes(requested)[0], parse_scopes(registered)[0]))


@pytest.mark.parametrize(
    ("requested", "registered", "granted"),
    [
        ("system/*.rs", "system/*.rs", "system/*.rs"),
        ("system/*.cruds", "system/*.rs", "system/*.rs"),
        ("system/*.rs", "system/Observation.rs", "system/Observation.rs"),
        ("system/Observation.cruds", "system/*.r", "system/Observation.r"),
        ("system/Patient.rs", "system/Observation.rs", ""),
        ("system/*.cud", "system/*.rs", ""),
        ("system/*.read", "system/*.rs", "system/*.read"),
        ("system/*.read", "system/*.r", "system/*.r"),  # v1 cannot say "r without s": v2 form
        ("system/*.*", "system/*.rs", "system/*.read"),
        ("system/Observation.rs system/*.r", "system/*.rs", "system/Observation.rs system/*.r"),
        ("system/Observation.r system/*.rs", "system/*.rs", "system/*.rs"),  # subsumed by the wildcard
        ("system/Observation.r system/Observation.s", "system/*.rs", "system/Observation.rs"),
    ],
)
def test_grant_is_never_wider_than_registered(requested, registered, granted):
    assert _grant(requested, registered) == granted
    registered_scopes = parse_scopes(registered)[0]
    for scope in intersect(parse_scopes(requested)[0], registered_scopes):
        for letter in scope.permissions:
            assert allows(
                registered_scopes,
                "Observation" if scope.resource_type == "*" else scope.resource_type,
                letter,
            )


def test_allows_maps_interactions_to_permissions():
    scopes = parse_scopes("system/Observation.rs system/Patient.r")[0]
    assert allows(scopes, "Observation", "read") and allows(scopes, "Observation", "search")
    assert allows(scopes, "Observation", "history-type") and allows(scopes, "Patient", "vread")
    assert not allows(scopes, "Patient", "search")
    assert not allows(scopes, "Observation", "create") and not allows(scopes, "Observation", "update")
    assert not allows(scopes, "Encounter", "read")
    assert not allows(parse_scopes("system/*.rs")[0], "*", "read")  # a concrete type is always asked for
    with pytest.raises(ValueError, match="unknown interaction"):
        allows(scopes, "Observation", "frobnicate")
