"""TokenSpec: jf's scope building, request body order, and option validation (no I/O)."""

import json

import pytest

from rotator.core.tags import description_tag, fleet_filter, tag_after_untagged, tag_rotation, tag_target
from rotator.core.token_spec import (
    EXPIRY_NEGATIVE,
    EXPIRY_NOT_NUMERIC,
    SCOPE_CONFLICT,
    SpecError,
    TokenSpec,
    parse_expiry,
)


def body(spec: TokenSpec) -> str:
    return json.dumps(spec.request_body(), separators=(",", ":"))


def test_minimal_body_always_sends_refreshable_and_reference():
    assert body(TokenSpec()) == '{"refreshable":false,"include_reference_token":false}'


def test_body_keys_follow_go_struct_order():
    spec = TokenSpec(username="Alice", project="proj", groups="a,b", grant_admin=True, expiry=0,
                     refreshable=True, description="d", audience="jfrt@*", reference=True)
    assert body(spec) == (
        '{"scope":"applied-permissions/groups:a,b applied-permissions/admin","expires_in":0,'
        '"refreshable":true,"audience":"jfrt@*","include_reference_token":true,"username":"alice",'
        '"project_key":"proj","description":"d"}'
    )


def test_scope_from_groups_only():
    assert TokenSpec(groups="deployers").effective_scope() == "applied-permissions/groups:deployers"


def test_scope_from_grant_admin_only():
    assert TokenSpec(grant_admin=True).effective_scope() == "applied-permissions/admin"


def test_grant_admin_false_adds_nothing():
    assert TokenSpec(grant_admin=False).effective_scope() == ""


def test_explicit_scope_is_verbatim():
    assert TokenSpec(scope="system:metrics:r").effective_scope() == "system:metrics:r"


@pytest.mark.parametrize("other", [{"groups": "g"}, {"grant_admin": True}, {"grant_admin": False}, {"groups": ""}])
def test_scope_with_groups_or_grant_admin_set_is_refused(other):
    with pytest.raises(SpecError) as err:
        TokenSpec(scope="applied-permissions/user", **other).validate()
    assert str(err.value) == SCOPE_CONFLICT
    assert str(err.value).endswith("'--groups'. ")


def test_expires_in_absent_unless_given():
    assert "expires_in" not in TokenSpec().request_body()
    assert TokenSpec(expiry=0).request_body()["expires_in"] == 0


@pytest.mark.parametrize("text,value", [("0", 0), ("3600", 3600), ("+5", 5), ("007", 7), ("-0", 0)])
def test_parse_expiry_accepts_go_integers(text, value):
    assert parse_expiry(text) == value


@pytest.mark.parametrize("text", ["", "1h", " 5", "5 ", "1_000", "1.5", "abc", "99999999999999999999"])
def test_parse_expiry_rejects_non_numeric_with_jf_text(text):
    with pytest.raises(SpecError) as err:
        parse_expiry(text)
    assert str(err.value) == "The '--expiry' option must have a numeric value. "
    assert str(err.value) == EXPIRY_NOT_NUMERIC


def test_parse_expiry_rejects_negative_with_jf_text():
    with pytest.raises(SpecError) as err:
        parse_expiry("-1")
    assert str(err.value) == EXPIRY_NEGATIVE == "The '--expiry' option must be non-negative. "


@pytest.mark.parametrize(
    "field,limit",
    [("description", 1024), ("username", 255), ("audience", 255)],
)
def test_length_limits(field, limit):
    TokenSpec(**{field: "x" * limit}).validate()
    with pytest.raises(SpecError) as err:
        TokenSpec(**{field: "x" * (limit + 1)}).validate()
    assert err.value.option == field
    assert f"--{field} is {limit + 1} characters long; JFrog accepts at most {limit}" == str(err.value)


def test_scope_length_limit_counts_built_scope():
    with pytest.raises(SpecError) as err:
        TokenSpec(groups="g" * 480, grant_admin=True).validate()
    assert err.value.option == "scope"


def test_description_tag_goes_first():
    spec = TokenSpec(description="CI deployer").with_description_tag("jfrog-rotator:ci:r1")
    assert spec.description == "jfrog-rotator:ci:r1 CI deployer"
    assert TokenSpec().with_description_tag("jfrog-rotator:ci:r1").description == "jfrog-rotator:ci:r1"


@pytest.mark.parametrize("description, target, rotation, after_untagged", [
    ("jfrog-rotator:ci:r1", "ci", "r1", False),
    ("jfrog-rotator:ci:r1 CI deployer", "ci", "r1", False),
    ("jfrog-rotator:ci:r1:after-untagged CI deployer", "ci", "r1", True),
    ("jfrog-rotator:ci:r1:something-else", None, None, False),  # not a tag of ours
    ("jfrog-rotator:ci", None, None, False),
    ("rotator:ci:r1", None, None, False),
    (None, None, None, False),
])
def test_description_tags_are_read_back(description, target, rotation, after_untagged):
    assert (tag_target(description), tag_rotation(description), tag_after_untagged(description)) \
        == (target, rotation, after_untagged)


def test_a_tag_says_when_the_token_it_replaced_is_untagged():
    assert description_tag("ci", "r1") == "jfrog-rotator:ci:r1"
    assert description_tag("ci", "r1", after_untagged=True) == "jfrog-rotator:ci:r1:after-untagged"
    assert fleet_filter() == "jfrog-rotator:*"
