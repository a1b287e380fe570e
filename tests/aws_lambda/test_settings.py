"""The Lambda's settings from its environment, the token spec it mints with, and its bookkeeping."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from rotator.aws_lambda.settings import LambdaSettings, RotationSetupError, token_overrides, token_spec
from rotator.core.record import RetiredToken, SecretRecord
from rotator.core.target import target_name_for as target_name
from rotator.engine import AfterNextRotation


def retired_after(current, *, policy, now, grace):
    """The Lambda's REVOKE_PREVIOUS policy, as the engine applies it."""
    return AfterNextRotation(policy, grace).retired(current, "recreate", "new-token-id", now)


BASE = {"JFROG_URL": "https://acme.jfrog.io/"}
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


def settings(**env) -> LambdaSettings:
    return LambdaSettings.from_env({**BASE, **env})


def record(**changes) -> SecretRecord:
    base = SecretRecord(access_token="a" * 40, token_id="cur", username="ci", scope="applied-permissions/groups:ci",
                        url="https://acme.jfrog.io", issued_at=NOW - timedelta(days=1),
                        expires_at=NOW + timedelta(days=6), target="ci")
    return replace(base, **changes)


def test_defaults():
    s = settings()
    assert s.jfrog_url == "https://acme.jfrog.io" and s.minting == "self" and s.revoke_previous == "after-next"
    assert (s.previous_token_grace, s.orphan_grace, s.test_timeout) == (90 * 86400, 600, 10.0)
    assert s.secrets_manager_endpoint is None and s.token_defaults.expiry is None


def test_every_variable_is_read():
    s = settings(JFROG_ADMIN_SECRET_ARN="arn:aws:secretsmanager:us-east-1:1:secret:admin", TOKEN_USERNAME="ci",
                 TOKEN_GROUPS="a,b", TOKEN_EXPIRY="7d", TOKEN_REFRESHABLE="true", TOKEN_REFERENCE="yes",
                 TOKEN_AUDIENCE="jfrt@*", TOKEN_DESCRIPTION="CI", TOKEN_PROJECT="proj", REVOKE_PREVIOUS="never",
                 PREVIOUS_TOKEN_GRACE="30d", ORPHAN_GRACE="1h", TEST_SECRET_TIMEOUT="20",
                 SECRETS_MANAGER_ENDPOINT="https://secretsmanager.us-east-1.amazonaws.com")
    spec = s.token_defaults
    assert s.minting == "admin" and s.revoke_previous == "never"
    assert (spec.username, spec.groups, spec.expiry, spec.refreshable, spec.reference) == ("ci", "a,b", 604800, True, True)
    assert (spec.audience, spec.description, spec.project) == ("jfrt@*", "CI", "proj")
    assert (s.previous_token_grace, s.orphan_grace, s.test_timeout) == (30 * 86400, 3600, 20.0)


@pytest.mark.parametrize("env, named", [
    ({"JFROG_URL": ""}, "JFROG_URL is not set"),
    ({"JFROG_URL": "acme.jfrog.io"}, "JFROG_URL must be an http"),
    ({"TOKEN_EXPIRY": "soon"}, "TOKEN_EXPIRY"),
    ({"TOKEN_REFRESHABLE": "maybe"}, "TOKEN_REFRESHABLE"),
    ({"TOKEN_SCOPE": "applied-permissions/user", "TOKEN_GROUPS": "a"}, "TOKEN_SCOPE and TOKEN_GROUPS"),
    ({"TOKEN_DESCRIPTION": "x" * 1025}, "TOKEN_DESCRIPTION"),
    ({"REVOKE_PREVIOUS": "sometimes"}, "REVOKE_PREVIOUS must be one of after-next, immediately, never"),
    ({"ORPHAN_GRACE": "-5"}, "ORPHAN_GRACE"),
    ({"TEST_SECRET_TIMEOUT": "5m"}, "TEST_SECRET_TIMEOUT must be at most 60s"),
    ({"SECRETS_MANAGER_ENDPOINT": "localhost:4566"}, "SECRETS_MANAGER_ENDPOINT"),
])
def test_a_bad_setting_is_named(env, named):
    with pytest.raises(RotationSetupError, match=named):
        settings(**env)


def test_spec_env_defaults_then_the_replaced_token_then_overrides():
    s = settings(TOKEN_USERNAME="bootstrap-user", TOKEN_GROUPS="first", TOKEN_EXPIRY="2h")
    first = token_spec(s, None)
    assert (first.username, first.effective_scope(), first.expiry) == ("bootstrap-user",
                                                                       "applied-permissions/groups:first", 7200)
    assert first.force_revocable is True, "tokens under 6 h must be revocable to be retired"
    later = token_spec(s, record())
    assert (later.username, later.effective_scope()) == ("ci", "applied-permissions/groups:ci")
    overridden = token_spec(s, record(rotator_extra={"token": {"groups": ["x", "y"], "expiry": "30d"}}))
    assert (overridden.effective_scope(), overridden.expiry) == ("applied-permissions/groups:x,y", 2592000)
    assert overridden.force_revocable is None


@pytest.mark.parametrize("data, key", [
    ({"expiry": "soon"}, "rotator.token.expiry"),
    ({"refreshable": "yes"}, "rotator.token.refreshable"),
    ({"groups": 3}, "rotator.token.groups"),
    ({"colour": "blue"}, "rotator.token.colour"),
    ("readers", "rotator.token"),
])
def test_a_bad_override_names_its_key(data, key):
    with pytest.raises(RotationSetupError, match=key.replace(".", r"\.")):
        token_overrides(data)


def test_conflicting_override_names_the_key():
    with pytest.raises(RotationSetupError, match=r"rotator\.token\.scope"):
        token_spec(settings(), record(rotator_extra={"token": {"scope": "s", "groups": "g"}}))


@pytest.mark.parametrize("name, expected", [("ci-deployer", "ci-deployer"), ("a.b_c", "a.b_c")])
def test_a_valid_secret_name_is_the_target_name(name, expected):
    assert target_name(name) == expected


def test_other_secret_names_get_a_distinct_valid_target_name():
    a, b = target_name("jfrog/ci"), target_name("jfrog+ci")
    assert a.startswith("jfrog-ci-") and b.startswith("jfrog-ci-") and a != b
    for name in (a, b, target_name("///"), target_name("x" * 300)):
        assert ":" not in name and " " not in name and len(name) <= 100 and name[0].isalnum()


def entry(token_id, revoke_after, expires_at=None):
    return RetiredToken(token_id, revoke_after, expires_at)


def test_after_next_keeps_the_demoted_token_and_makes_older_ones_due():
    current = record(retired=(entry("older", NOW + timedelta(days=80)),))
    out = retired_after(current, policy="after-next", now=NOW, grace=90 * 86400)
    assert out == (entry("older", NOW), entry("cur", current.expires_at, current.expires_at))


def test_after_next_grace_when_shorter_than_the_expiry():
    out = retired_after(record(), policy="after-next", now=NOW, grace=3600)
    assert out[-1].revoke_after == NOW + timedelta(hours=1)


def test_immediately_makes_everything_due_now():
    current = record(retired=(entry("older", NOW + timedelta(days=80)),))
    assert [r.revoke_after for r in retired_after(current, policy="immediately", now=NOW, grace=0)] == [NOW, NOW]


def test_entries_due_before_the_current_token_and_expired_ones_are_dropped():
    current = record(retired=(entry("handled", NOW - timedelta(days=2)),
                              entry("expired", NOW + timedelta(days=1), NOW - timedelta(seconds=1))))
    assert [r.token_id for r in retired_after(current, policy="after-next", now=NOW, grace=60)] == ["cur"]


def test_never_carries_entries_untouched_until_they_expire():
    keep = entry("daemon-overlap", NOW - timedelta(days=2))
    current = record(retired=(keep,))
    out = retired_after(current, policy="never", now=NOW, grace=60)
    assert out[0] == keep and out[1].token_id == "cur"


def test_the_first_record_retires_nothing():
    assert retired_after(None, policy="after-next", now=NOW, grace=60) == ()
