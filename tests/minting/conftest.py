"""Minting without a long-lived admin token: an emulator with an OIDC provider whose test issuer
signs the ID tokens, the ID token on disk as Kubernetes projects it, and a config that uses it."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from rotator.emulator import Emulator, IdentityMapping, OidcIssuer
from tests.fixtures.moto_server import aws_env

SUBJECT = "system:serviceaccount:jfrog:rotator"
OIDC_CALL = "/access/api/v1/oidc/token"


@dataclass
class OidcSetup:
    emulator: Emulator
    issuer: OidcIssuer
    id_token_file: Path
    tmp_path: Path

    def write_id_token(self, **kwargs) -> str:
        """A fresh ID token for the rotator's service account, written where the config reads it."""
        token = self.issuer.id_token(SUBJECT, **kwargs)
        self.id_token_file.write_text(token + "\n")
        return token

    def config(self, targets: str, *, oidc: str = "provider_name: k8s", name: str = "rotator.yaml",
               store: str = "{type: file, directory: ./secrets}") -> Path:
        path = self.tmp_path / name
        path.write_text(f"jfrog:\n  url: {self.emulator.url}\n  oidc: {{{oidc}, token_file: {self.id_token_file}}}\n"
                        f"backends:\n  local: {store}\n"
                        f"targets:\n{textwrap.indent(textwrap.dedent(targets).strip(), '  ')}\n")
        return path

    def exchanges(self) -> list:
        return [r for r in self.emulator.requests if r.path == OIDC_CALL]


@pytest.fixture(params=["file", "vault-kv2", "aws"])
def store_yaml(request, monkeypatch) -> str:
    """The ``backends.store`` entry of a config for each real store."""
    if request.param == "file":
        return "{type: file, directory: ./secrets}"
    if request.param == "vault-kv2":
        openbao = request.getfixturevalue("openbao")
        return (f"{{type: vault, url: '{openbao.addr}', mount: secret, "
                f"auth: {{method: token, token_insecure_inline: {openbao.root_token}}}}}")
    moto = request.getfixturevalue("moto_server")
    aws_env(monkeypatch)
    return f"{{type: aws-secretsmanager, region: us-east-1, endpoint_url: '{moto.url}'}}"


@pytest.fixture
def make_oidc(emulator, signing_key, tmp_path, cli_env):
    """``make_oidc(expires_in=...)``: the provider ``k8s`` maps the rotator's service account to the
    admin user ``rotator-admin``; JFrog tokens it hands out live ``expires_in`` seconds."""

    def make(expires_in: int = 86400) -> OidcSetup:
        issuer = OidcIssuer("https://kubernetes.default.svc", key=signing_key)
        emulator.create_user("rotator-admin", admin=True)
        emulator.create_user("ci", groups=("deployers",))
        emulator.add_oidc_provider("k8s", issuer=issuer, expires_in=expires_in,
                                   identity_mappings=[IdentityMapping("rotator", {"sub": SUBJECT}, "rotator-admin")])
        setup = OidcSetup(emulator, issuer, tmp_path / "projected" / "token", tmp_path)
        setup.id_token_file.parent.mkdir()
        setup.write_id_token()
        return setup

    return make


CI_TARGET = "- {name: ci, backend: local, token: {username: ci, groups: [deployers], expiry: 7d}, overlap: 1h}"
