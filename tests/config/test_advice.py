"""What check-config warns about (rotator.config.advice), rule by rule, and the
``jfrog.persistency_threshold`` setting the first rule reads."""

from __future__ import annotations

import textwrap

import pytest

from rotator.config import load_config
from rotator.config.advice import Advice, config_advice, target_advice
from rotator.config.wiring import build_engine
from rotator.core.options import ConfigError
from rotator.core.target import Target
from rotator.core.token_spec import TokenSpec

THREE_HOURS = 10_800


def target(*, expiry: int | None = 7 * 86400, overlap: int = 3600, strategy: str = "recreate") -> Target:
    return Target(name="ci", backend="store", path="jfrog/ci", strategy=strategy, overlap=overlap,
                  token=TokenSpec(username="ci", expiry=expiry, refreshable=strategy == "refresh"))


def advice(store_type: str | None = "file", threshold: int = THREE_HOURS, **target_options) -> list[str]:
    return list(target_advice(target(**target_options), store_type, threshold))


def test_a_long_lived_token_with_an_hour_of_overlap_needs_no_advice():
    assert advice("vault") == [] and advice("aws-secretsmanager") == [] and advice("file") == []


# -- JFrog's persistency threshold --------------------------------------------------------------
def test_a_token_under_the_persistency_threshold_cannot_be_retired():
    [message] = advice(expiry=3600)
    assert message.startswith("token.expiry 3600s is under JFrog's persistency threshold (10800s, "
                              "jfrog.persistency_threshold)")
    assert "cannot be revoked" in message and "orphan sweep cannot see it" in message
    assert message.endswith("it simply expires, at most 3600s after it was minted")


@pytest.mark.parametrize("expiry, threshold", [(THREE_HOURS, THREE_HOURS), (0, THREE_HOURS), (None, THREE_HOURS),
                                               (60, 0)])
def test_tokens_jfrog_stores_get_no_persistency_warning(expiry, threshold):
    assert advice(expiry=expiry, threshold=threshold) == []


# -- the consumers' refresh interval ------------------------------------------------------------
def test_a_vault_target_warns_when_the_overlap_is_under_vault_agents_five_minutes():
    [message] = advice("vault", overlap=299)
    assert message.startswith("overlap 299s is shorter than the usual refresh interval of its consumers: "
                              "Vault Agent re-renders KV secrets every 300s by default (static_secret_render_interval, "
                              "https://developer.hashicorp.com/vault/docs/agent-and-proxy/agent/template"
                              "#static_secret_render_interval)")
    assert advice("vault", overlap=300) == []


def test_an_aws_target_warns_when_the_overlap_is_under_the_caching_clients_hour():
    [message] = advice("aws-secretsmanager", overlap=1800)
    assert "AWS Secrets Manager caching clients refresh a secret every 3600s by default (secret_refresh_interval, " \
           "https://docs.aws.amazon.com/secretsmanager/latest/userguide/retrieving-secrets_cache-python.html)" in message
    assert advice("aws-secretsmanager", overlap=3600) == []


def test_stores_without_known_consumers_get_no_overlap_warning():
    assert advice("file", overlap=0) == [] and advice("some-plugin", overlap=0) == [] and advice(None, overlap=0) == []


def test_a_token_that_is_never_revoked_gets_no_overlap_warning():
    [message] = advice("vault", expiry=3600, overlap=0)
    assert message.startswith("token.expiry 3600s")


# -- refresh tokens -----------------------------------------------------------------------------
def test_a_refresh_target_may_be_refreshed_by_one_replica_only():
    [message] = advice("file", strategy="refresh")
    assert message.startswith("strategy refresh: a refresh token works once")
    assert "only one daemon replica may refresh this target at a time" in message


def test_a_refresh_target_warns_that_its_old_token_dies_before_consumers_reread():
    first, second = advice("vault", strategy="refresh", overlap=3600)
    assert first.startswith("the previous token stops working at once (strategy refresh): Vault Agent re-renders")
    assert second.startswith("strategy refresh: a refresh token works once")


# -- the whole config ---------------------------------------------------------------------------
CONFIG = """\
jfrog:
  url: https://acme.jfrog.io
  access_token_env: JFROG_ADMIN_TOKEN
{jfrog_extra}backends:
  aws: {{type: aws-secretsmanager, region: us-east-1}}
  local: {{type: file, directory: ./secrets}}
targets:
  - {{name: short, backend: local, token: {{username: ci, expiry: 1h}}}}
  - {{name: cached, backend: aws, token: {{username: ci, expiry: 7d}}, overlap: 10m}}
  - {{name: fine, backend: aws, token: {{username: ci, expiry: 7d}}}}
"""


def load(tmp_path, jfrog_extra: str = ""):
    path = tmp_path / "rotator.yaml"
    path.write_text(CONFIG.format(jfrog_extra=textwrap.indent(jfrog_extra, "  ")))
    return load_config(path)


def test_config_advice_names_each_target_in_file_order(tmp_path, monkeypatch):
    monkeypatch.setenv("JFROG_ADMIN_TOKEN", "t")
    config = load(tmp_path)
    found = config_advice(config)
    assert [a.target for a in found] == ["short", "cached"]
    assert str(found[1]) == f"cached: {found[1].message}" and isinstance(found[1], Advice)
    config.close()


def test_the_persistency_threshold_is_a_jfrog_setting_the_engine_gets(tmp_path, monkeypatch):
    monkeypatch.setenv("JFROG_ADMIN_TOKEN", "t")
    for extra, seconds in (("", THREE_HOURS), ("persistency_threshold: 30m\n", 1800)):
        config = load(tmp_path, extra)
        engine = build_engine(config)
        assert config.jfrog.persistency_threshold == seconds and engine.persistency_threshold == seconds
        engine.jfrog.close()
        config.close()
    lowered = load(tmp_path, "persistency_threshold: 30m\n")
    assert [a.target for a in config_advice(lowered)] == ["cached"], "a 1 h token is stored above a 30 min threshold"
    lowered.close()


def test_a_bad_persistency_threshold_names_its_key(tmp_path):
    with pytest.raises(ConfigError, match=r"jfrog\.persistency_threshold: must be a duration"):
        load(tmp_path, "persistency_threshold: soon\n")


# -- a document's retired list ------------------------------------------------------------------
def test_a_document_rotated_more_often_than_its_metadata_can_list_is_warned_about():
    from dataclasses import replace

    from rotator.core.target import Schedule

    frequent = replace(target(overlap=86400), format="token", schedule=Schedule("every", every=3600))
    [message] = target_advice(frequent, "aws-secretsmanager", THREE_HOURS)
    assert message == ("format token keeps the retired tokens in the store's metadata, which lists 24; rotating "
                       "every 3600s with overlap 86400s keeps 24 waiting, so rotations are refused until a sweep "
                       "revokes the earliest: rotate less often, shorten overlap, or use format: record")
    assert list(target_advice(replace(frequent, format=None), "aws-secretsmanager", THREE_HOURS)) == []
    assert list(target_advice(replace(frequent, schedule=Schedule("every", every=3601)), "aws-secretsmanager",
                              THREE_HOURS)) == []
