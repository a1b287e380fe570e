"""The minting-credential keys of ``jfrog:`` (docs/configuration.md): at most one of them, and
errors that name the key."""

from __future__ import annotations

import pytest

from rotator.config import MINTING_CREDENTIALS, load_config
from rotator.core.options import ConfigError

TARGETS = """backends:
  local: {type: file, directory: ./secrets}
targets:
  - {name: ci, backend: local, token: {username: ci, expiry: 7d}}
"""


def config_with(tmp_path, jfrog: str):
    path = tmp_path / "rotator.yaml"
    path.write_text(f"jfrog:\n  url: https://acme.jfrog.io\n{jfrog}{TARGETS}")
    return path


def error_of(tmp_path, jfrog: str) -> str:
    path = config_with(tmp_path, jfrog)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    return str(err.value).removeprefix(f"{path}: ")


def test_oidc_loads_as_the_minting_credential(tmp_path):
    config = load_config(config_with(tmp_path, "  oidc: {provider_name: k8s, token_file: /var/run/token, "
                                               "identity_mapping: rotator, project_key: ops, expires_in: 1h}\n"))
    oidc = config.jfrog.oidc
    assert (oidc.provider_name, oidc.id_token.file, oidc.identity_mapping, oidc.project_key, oidc.expires_in) == (
        "k8s", "/var/run/token", "rotator", "ops", 3600)
    assert config.jfrog.has_credential and config.target("ci").strategy == "recreate"
    config.close()


def test_access_token_from_loads_as_the_minting_credential(tmp_path):
    config = load_config(config_with(tmp_path, "  access_token_from: {backend: local, path: jfrog-admin}\n"))
    assert (config.jfrog.access_token_from.backend, config.jfrog.access_token_from.path) == ("local", "jfrog-admin")
    assert config.jfrog.has_credential
    config.close()


@pytest.mark.parametrize("jfrog,message", [
    ("  access_token_env: T\n  oidc: {provider_name: k8s, token_env: ID}\n",
     "jfrog.oidc: give only one credential that mints, not both access_token_env and oidc"),
    ("  server_id: acme\n  access_token_file: /t\n",
     "jfrog.server_id: give only one credential that mints, not both access_token_file and server_id"),
    ("  oidc: {provider_name: k8s, token_env: ID}\n  access_token_from: {backend: local, path: a}\n",
     "jfrog.access_token_from: give only one credential that mints, not both oidc and access_token_from"),
])
def test_only_one_minting_credential(tmp_path, jfrog, message):
    assert error_of(tmp_path, jfrog).startswith(message)


def test_the_exactly_one_check_knows_every_minting_key():
    assert MINTING_CREDENTIALS == ("access_token_env", "access_token_file", "access_token_insecure_inline",
                                   "server_id", "oidc", "access_token_from", "aws_iam")


@pytest.mark.parametrize("jfrog,message", [
    ("  oidc: {provider_name: k8s}\n", "jfrog.oidc.token_file: the ID token is required"),
    ("  oidc: {token_file: /t}\n", "jfrog.oidc.provider_name: is required"),
    ("  oidc: {provider_name: k8s, token: eyJ}\n", "jfrog.oidc.token: secrets are not read from the config file"),
    ("  oidc: {provider_name: k8s, token_env: A, token_file: /t}\n", "jfrog.oidc.token_file: give only one of"),
    ("  oidc: {provider_name: k8s, token_env: A, audience: x}\n", "jfrog.oidc.audience: unknown key"),
    ("  oidc: {provider_name: k8s, token_env: A, expires_in: 0s}\n", "jfrog.oidc.expires_in: must be more than 0s"),
    ("  access_token_from: {backend: vault, path: jfrog/admin}\n",
     "jfrog.access_token_from.backend: no backend named 'vault' (defined: local)"),
    ("  access_token_from: {backend: local}\n", "jfrog.access_token_from.path: is required"),
])
def test_errors_name_the_key(tmp_path, jfrog, message):
    assert error_of(tmp_path, jfrog).startswith(message)


def test_without_any_credential_the_message_lists_every_way(tmp_path):
    assert error_of(tmp_path, "").endswith("set access_token_env, access_token_file, server_id, oidc, "
                                           "access_token_from or aws_iam")
