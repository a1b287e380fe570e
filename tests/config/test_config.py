"""The YAML config: typed objects, and errors that name the file, the key path and the problem."""

from __future__ import annotations

import textwrap

import pytest

from rotator.config import load_config
from rotator.core.options import ConfigError, parse_duration

BASE = """
jfrog:
  url: https://acme.jfrog.io
  access_token_env: JFROG_ADMIN_TOKEN
backends:
  local: {type: file, directory: ./secrets}
targets:
  - name: ci-deployer
    backend: local
    path: jfrog/ci-deployer
    token: {username: ci-deployer, groups: [deployers, readers], expiry: 7d, description: CI deployer}
    schedule: {every: 24h}
    overlap: 1h
"""


def write(tmp_path, text):
    path = tmp_path / "rotator.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def error_of(tmp_path, text) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: ")
    return str(err.value)[len(str(path)) + 2:]


def test_full_example_loads_into_typed_objects(tmp_path):
    config = load_config(write(tmp_path, BASE))
    target = config.target("ci-deployer")
    assert target.token.groups == "deployers,readers" and target.token.expiry == 7 * 86400
    assert target.token.request_body()["scope"] == "applied-permissions/groups:deployers,readers"
    assert target.schedule.kind == "every" and target.schedule.every == 86400 and target.overlap == 3600
    assert target.strategy == "recreate" and target.path == "jfrog/ci-deployer"
    assert config.jfrog.token.env == "JFROG_ADMIN_TOKEN"
    assert config.backends["local"].directory == tmp_path / "secrets"


@pytest.mark.parametrize("text,seconds", [("90s", 90), ("15m", 900), ("24h", 86400), ("7d", 604800), (300, 300),
                                          ("2w", 1209600)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_default_schedule_is_a_quarter_before_expiry(tmp_path):
    config = load_config(write(tmp_path, BASE.replace("    schedule: {every: 24h}\n", "")))
    schedule = config.targets[0].schedule
    assert schedule.kind == "before_expiry" and schedule.before_expiry_fraction == 0.25


def test_short_tokens_are_force_revocable_by_default(tmp_path):
    config = load_config(write(tmp_path, BASE.replace("expiry: 7d", "expiry: 2h")))
    assert config.targets[0].token.force_revocable is True
    assert load_config(write(tmp_path, BASE)).targets[0].token.force_revocable is None


def test_cron_schedule_with_timezone(tmp_path):
    config = load_config(write(tmp_path, BASE.replace("{every: 24h}", '{cron: "0 3 * * *", timezone: Europe/Berlin}')))
    assert config.targets[0].schedule.cron == "0 3 * * *"


@pytest.mark.parametrize("old,new,message", [
    ("expiry: 7d", "expiry: soon", "targets[0].token.expiry: must be a duration like 90s, 15m, 24h, 7d"),
    ("groups: [deployers, readers]", "groups: [deployers, readers], scope: x",
     "targets[0].token.scope: Scope can either be provided explicitly with 'scope'"),
    ("description: CI deployer", "description: " + "d" * 1025,
     "targets[0].token.description: description is 1025 characters long; JFrog accepts at most 1024"),
    ("backend: local", "backend: nope", "targets[0].backend: no backend named 'nope' (defined: local)"),
    ("name: ci-deployer", "name: 'ci deployer'", "targets[0].name: 'ci deployer' is not valid"),
    ("name: ci-deployer", "name: 'ci:deployer'", "targets[0].name: 'ci:deployer' is not valid"),
    ("{every: 24h}", "{every: 24h, cron: '* * * * *'}", "targets[0].schedule.cron: give only one of every, cron"),
    ("{every: 24h}", "{cron: 'not a cron'}", "targets[0].schedule.cron: not a valid crontab line"),
    ("{every: 24h}", "{cron: '0 3 * * *', timezone: Mars/Base}", "targets[0].schedule.timezone: unknown time zone"),
    ("{every: 24h}", "{before_expiry: 150%}", "targets[0].schedule.before_expiry: a percentage must be between"),
    ("{every: 24h}", "{every: 24h, jiter: 5m}", "targets[0].schedule.jiter: unknown key"),
    ("overlap: 1h", "overlap: 1h\n    strategy: rotate", "targets[0].strategy: must be one of recreate, refresh, self"),
    ("overlap: 1h", "overlap: 1h\n    strategy: refresh", "targets[0].strategy: refresh needs token.refreshable: true"),
    ("overlap: 1h", "overlap: 1h\n    colour: blue", "targets[0].colour: unknown key"),
    ("url: https://acme.jfrog.io", "url: acme.jfrog.io", "jfrog.url: 'acme.jfrog.io' is not valid"),
    ("access_token_env: JFROG_ADMIN_TOKEN", "access_token: eyJabc", "jfrog.access_token: secrets are not read from "
     "the config file: use access_token_env or access_token_file"),
    ("access_token_env: JFROG_ADMIN_TOKEN", "access_token_env: A\n  access_token_file: /x",
     "jfrog.access_token_file: give only one of access_token_env, access_token_file"),
    ("{type: file, directory: ./secrets}", "{type: filez, directory: ./secrets}",
     "backends.local.type: unknown backend type 'filez' (available: aws-secretsmanager, file, vault"),
    ("{type: file, directory: ./secrets}", "{type: file, directory: ./secrets, mode: 600}",
     "backends.local.mode: unknown key"),
    ("overlap: 1h", "overlap: 1h\n    format: yaml", "targets[0].format: must be one of record, token, dockerconfigjson"),
    ("overlap: 1h", "overlap: 1h\n    format: template", "targets[0].template: format: template needs a template"),
    ("overlap: 1h", "overlap: 1h\n    template: 'x={access_token}'", "targets[0].format: format: template needs"),
    ("overlap: 1h", "overlap: 1h\n    format: template\n    template: 'x={password}'",
     "targets[0].template: unknown key 'password' (known: access_token, username, url, token_id, expires_at)"),
    ("overlap: 1h", "overlap: 1h\n    format: template\n    template: 'x={access_token'",
     "targets[0].template: expected '}' before end of string"),
    ("overlap: 1h", "overlap: 1h\n    registry_hosts: [acme.jfrog.io]",
     "targets[0].registry_hosts: only applies to format: dockerconfigjson"),
    ("overlap: 1h", "overlap: 1h\n    format: dockerconfigjson\n    registry_hosts: [https://acme.jfrog.io/x]",
     "targets[0].registry_hosts: must be a list of host names"),
    ("overlap: 1h", "overlap: 1h\n    adopt: maybe", "targets[0].adopt: must be true or false"),
])
def test_errors_name_the_key_path(tmp_path, old, new, message):
    assert old in BASE
    assert error_of(tmp_path, BASE.replace(old, new)).startswith(message)


def test_refresh_needs_the_record_format(tmp_path):
    text = BASE.replace("expiry: 7d,", "expiry: 7d, refreshable: true,").replace(
        "overlap: 1h", "overlap: 1h\n    strategy: refresh\n    format: token")
    assert error_of(tmp_path, text).startswith("targets[0].format: strategy refresh needs format: record")


def test_formats_and_adoption_load(tmp_path):
    text = BASE.replace("overlap: 1h", "overlap: 1h\n    format: dockerconfigjson\n    adopt: false\n"
                                       "    registry_hosts: [acme.jfrog.io, docker.acme.io]")
    target = load_config(write(tmp_path, text)).targets[0]
    assert (target.format, target.adopt, target.registry_hosts) == ("dockerconfigjson", False,
                                                                    ("acme.jfrog.io", "docker.acme.io"))
    default = load_config(write(tmp_path, BASE)).targets[0]
    assert (default.format, default.adopt, default.template) == (None, True, None)


def test_duplicate_target_names(tmp_path):
    text = BASE + BASE[BASE.index("  - name"):].replace("path: jfrog/ci-deployer", "path: other")
    assert error_of(tmp_path, text) == "targets[1].name: duplicate target name 'ci-deployer'"


def test_two_targets_on_one_path(tmp_path):
    text = BASE + BASE[BASE.index("  - name"):].replace("name: ci-deployer", "name: other")
    assert error_of(tmp_path, text) == "targets[1].path: local:jfrog/ci-deployer is already used by target 'ci-deployer'"


def test_duplicate_yaml_keys_are_refused(tmp_path):
    assert "duplicate key 'overlap'" in error_of(tmp_path, BASE + "    overlap: 2h\n")


def test_invalid_yaml_names_the_line(tmp_path):
    assert error_of(tmp_path, "jfrog: [unclosed\n").startswith("not valid YAML at line")


def test_admin_credential_needed_for_recreate(tmp_path):
    text = BASE.replace("  access_token_env: JFROG_ADMIN_TOKEN\n", "")
    assert error_of(tmp_path, text).startswith("jfrog.access_token_env: target 'ci-deployer' (strategy recreate) "
                                               "needs an admin credential")


def test_self_strategy_needs_no_admin(tmp_path):
    text = BASE.replace("  access_token_env: JFROG_ADMIN_TOKEN\n", "").replace("overlap: 1h",
                                                                            "overlap: 1h\n    strategy: self")
    assert load_config(write(tmp_path, text)).targets[0].strategy == "self"


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "nope.yaml")
    assert "cannot read the config file" in str(err.value)


def test_missing_sections(tmp_path):
    assert error_of(tmp_path, "jfrog: {url: https://a.b}\n") == "backends: is required"
    assert error_of(tmp_path, "jfrog: {url: https://a.b, access_token_env: X}\nbackends: {l: {type: file, "
                              "directory: d}}\ntargets: []\n") == "targets: at least one target is required"


def test_json_config_is_accepted(tmp_path):
    import json

    import yaml

    data = yaml.safe_load(textwrap.dedent(BASE))
    path = tmp_path / "rotator.json"
    path.write_text(json.dumps(data))
    assert load_config(path).target("ci-deployer").token.expiry == 7 * 86400


def test_json_config_errors(tmp_path):
    path = tmp_path / "rotator.json"
    path.write_text('{"jfrog": {"url": "https://a.b"},\n "jfrog": {}}')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == f"{path}: not valid JSON: duplicate key 'jfrog'"
    path.write_text('{"jfrog": {"url": "https://a.b",}\n}')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "not valid JSON at line 1, column 33" in str(err.value)
