"""deploy/vault/setup-approle.sh and setup-kubernetes-auth.sh, run as a user would (VAULT_ADDR and
VAULT_TOKEN in the environment, `bao` on PATH) against the real OpenBao dev server: what they
configure, that running them again is safe, their refusals, and a login with what they made (the
Kubernetes one through a TokenReview stand-in, since no cluster runs here)."""

from __future__ import annotations

import json
import os
import ssl
import stat
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import hvac
import pytest

from backends.base import create_backend
from rotator.core.options import Options
from rotator.emulator.jwt_signer import JwtSigner
from tests.deploy.shipped import DEPLOY
from tests.fixtures.openbao import bao_binary

VAULT = DEPLOY / "vault"
APPROLE = VAULT / "setup-approle.sh"
KUBERNETES = VAULT / "setup-kubernetes-auth.sh"


def script(path: Path, *args: str, env: dict, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(path), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def admin_env(openbao):
    """What the scripts' header asks for: VAULT_ADDR, VAULT_TOKEN, bao on PATH (and nothing from BAO_*)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BAO_", "VAULT_"))}
    return {**env, "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "VAULT_ADDR": openbao.addr,
            "VAULT_TOKEN": openbao.root_token}


def rotator_login(openbao, auth: dict) -> str:
    """Log in the way the rotator's vault store does, with these ``auth:`` settings; its token."""
    store = create_backend("vault-main", Options({"type": "vault", "url": openbao.addr, "auth": auth},
                                                 "backends.vault-main", "rotator.yaml"))
    try:
        return store.session.token()
    finally:
        store.close()


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


# -- AppRole ------------------------------------------------------------------------------------
def test_approle_setup_makes_a_login_with_only_the_daemon_policy(openbao, admin_env, tmp_path):
    mount, role = unique("approle"), unique("jfrog-rotator")
    out = tmp_path / "approle"
    answer = script(APPROLE, str(out), env={**admin_env, "APPROLE_MOUNT": mount, "ROLE": role, "BOUND_CIDRS": "127.0.0.1/32"})
    assert answer.returncode == 0, answer.stderr
    assert f"enabled the approle auth method at {mount}/" in answer.stdout
    assert f"wrote role {mount}/{role} with policy jfrog-rotator-daemon" in answer.stdout
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()} == {"role-id": 0o600, "secret-id": 0o600}
    secret_id = (out / "secret-id").read_text().strip()
    assert secret_id not in answer.stdout + answer.stderr  # never printed

    config = openbao.api("GET", f"auth/{mount}/role/{role}")["data"]
    assert config["token_policies"] == ["jfrog-rotator-daemon"] and config["token_ttl"] == 3600
    assert config["secret_id_bound_cidrs"] == ["127.0.0.1/32"] and config["bind_secret_id"] is True
    policy = openbao.api("GET", "sys/policies/acl/jfrog-rotator-daemon")["data"]["policy"]
    assert policy == (VAULT / "jfrog-rotator-daemon.hcl").read_text()

    # The rotator's own AppRole login with the two files, then what the policy allows and refuses.
    token = rotator_login(openbao, {"method": "approle", "mount": mount, "role_id_file": str(out / "role-id"),
                                    "secret_id_file": str(out / "secret-id")})
    client = hvac.Client(url=openbao.addr, token=token)
    path = f"jfrog/{uuid.uuid4().hex[:8]}"
    client.secrets.kv.v2.create_or_update_secret(path=path, secret={"a": "b"}, mount_point="secret")
    with pytest.raises(hvac.exceptions.Forbidden):
        client.secrets.kv.v2.create_or_update_secret(path=f"other/{path}", secret={"a": "b"}, mount_point="secret")


def test_approle_setup_runs_again_and_issues_another_secret_id(openbao, admin_env, tmp_path):
    env = {**admin_env, "APPROLE_MOUNT": unique("approle"), "ROLE": unique("r")}
    first, second = tmp_path / "one", tmp_path / "two"
    assert script(APPROLE, str(first), env=env).returncode == 0
    again = script(APPROLE, str(second), env=env)
    assert again.returncode == 0 and f"auth method at {env['APPROLE_MOUNT']}/ already enabled" in again.stdout
    assert (first / "role-id").read_text() == (second / "role-id").read_text()
    assert (first / "secret-id").read_text() != (second / "secret-id").read_text()
    for out in (first, second):  # the earlier secret id still works
        login = openbao.api("POST", f"auth/{env['APPROLE_MOUNT']}/login", json={
            "role_id": (out / "role-id").read_text().strip(), "secret_id": (out / "secret-id").read_text().strip()})
        assert login["auth"]["policies"] == ["default", "jfrog-rotator-daemon"]


def test_the_requester_role_of_the_quick_start(openbao, admin_env, tmp_path):
    env = {**admin_env, "APPROLE_MOUNT": unique("approle"), "ROLE": "jfrog-rotator-requester",
           "POLICY_FILE": str(VAULT / "jfrog-rotator-requester.hcl")}
    answer = script(APPROLE, str(tmp_path / "requester"), env=env)
    assert answer.returncode == 0 and "with policy jfrog-rotator-requester" in answer.stdout


@pytest.mark.parametrize("unset, message", [
    ("VAULT_ADDR", "set VAULT_ADDR (or BAO_ADDR) to your Vault's address, e.g. https://vault.example.com:8200"),
    ("VAULT_TOKEN", "set VAULT_TOKEN (or BAO_TOKEN) to a token that may write policies and auth methods"),
])
def test_approle_setup_refuses_without_address_or_token(admin_env, tmp_path, unset, message):
    env = {k: v for k, v in admin_env.items() if k != unset}
    answer = script(APPROLE, str(tmp_path / "out"), env=env)
    assert answer.returncode == 2 and answer.stderr.strip() == f"setup-approle.sh: {message}"
    assert not (tmp_path / "out").exists()


def test_approle_setup_refuses_without_an_out_dir_or_a_cli(admin_env, tmp_path):
    answer = script(APPROLE, env=admin_env)
    assert answer.returncode == 2 and "usage: " in answer.stderr and "OUT_DIR" in answer.stderr
    answer = script(APPROLE, str(tmp_path / "out"), env={**admin_env, "PATH": "/usr/bin:/bin"})
    assert answer.returncode == 2 and "neither bao (OpenBao) nor vault is on PATH" in answer.stderr
    answer = script(APPROLE, str(tmp_path / "out"), env={**admin_env, "POLICY_FILE": str(tmp_path / "none.hcl")})
    assert answer.returncode == 2 and f"no policy file {tmp_path / 'none.hcl'}" in answer.stderr
    assert not (tmp_path / "out").exists()


def test_approle_setup_runs_with_the_vault_command_name(openbao, admin_env, tmp_path):
    """Only `vault` on PATH (here OpenBao's binary under that name: the scripts use only commands
    both CLIs share, and give both their VAULT_* variables)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "vault").symlink_to(bao_binary())
    env = {**admin_env, "PATH": f"{bin_dir}:/usr/bin:/bin", "APPROLE_MOUNT": unique("approle")}
    answer = script(APPROLE, str(tmp_path / "out"), env=env)
    assert answer.returncode == 0, answer.stderr
    assert (tmp_path / "out" / "role-id").read_text().strip()


# -- Kubernetes auth ----------------------------------------------------------------------------
class TokenReviews:
    """A stand-in for the Kubernetes API's TokenReview (authentication.k8s.io/v1) on loopback TLS:
    it knows the tokens it was given and answers for them as the API server does
    (https://kubernetes.io/docs/reference/kubernetes-api/authentication-resources/token-review-v1/)."""

    def __init__(self, ca) -> None:
        self.known: dict[str, tuple[str, str, str, list[str]]] = {}
        self.reviews: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.reviews.append(body)
                token = body["spec"]["token"]
                asked = body["spec"].get("audiences") or []
                status: dict = {"authenticated": False}
                if token in outer.known:
                    namespace, account, uid, audiences = outer.known[token]
                    if not asked or set(asked) & set(audiences):
                        status = {"authenticated": True, "audiences": sorted(set(asked) & set(audiences)) or audiences,
                                  "user": {"username": f"system:serviceaccount:{namespace}:{account}",
                                           "uid": uid,
                                           "groups": ["system:serviceaccounts"]}}
                    else:
                        status = {"authenticated": False, "error": "token audiences do not match"}
                payload = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                                      "status": status}).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        self.signer = JwtSigner("https://kubernetes.default.svc.cluster.local")
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def service_account_token(self, namespace: str, account: str, audience: str) -> str:
        """A projected service-account token as the kubelet writes it (claims of a bound token)."""
        now = int(time.time())
        uid = str(uuid.uuid4())
        jwt, _ = self.signer.sign([("aud", [audience]), ("exp", now + 600), ("iat", now), ("nbf", now),
                                   ("iss", self.signer.issuer), ("sub", f"system:serviceaccount:{namespace}:{account}"),
                                   ("kubernetes.io", {"namespace": namespace,
                                                      "serviceaccount": {"name": account, "uid": uid}})])
        self.known[jwt] = (namespace, account, uid, [audience])
        return jwt

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def token_reviews(ca):
    reviews = TokenReviews(ca)
    try:
        yield reviews
    finally:
        reviews.stop()


def test_kubernetes_setup_binds_the_overlays_service_account_and_audience(openbao, admin_env, tmp_path, ca,
                                                                         token_reviews):
    """The script's defaults are the overlay's: role jfrog-rotator for jfrog-rotator/jfrog-rotator,
    audience vault. The rotator's Kubernetes login (jwt_file: the projected token) then works; a
    token of another service account or for another audience is refused."""
    mount = unique("kubernetes")
    ca_file = tmp_path / "k8s-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    env = {**admin_env, "KUBERNETES_MOUNT": mount, "KUBERNETES_HOST": token_reviews.url, "KUBERNETES_CA_CERT": str(ca_file)}
    answer = script(KUBERNETES, env=env)
    assert answer.returncode == 0, answer.stderr
    assert (f"wrote role {mount}/jfrog-rotator: service account jfrog-rotator/jfrog-rotator, audience vault, "
            f"policy jfrog-rotator-daemon") in answer.stdout
    role = openbao.api("GET", f"auth/{mount}/role/jfrog-rotator")["data"]
    assert (role["bound_service_account_names"], role["bound_service_account_namespaces"], role["audience"]) == \
        (["jfrog-rotator"], ["jfrog-rotator"], "vault")
    assert openbao.api("GET", f"auth/{mount}/config")["data"]["kubernetes_host"] == token_reviews.url
    assert script(KUBERNETES, env=env).returncode == 0  # again: safe

    def login(namespace: str, account: str, audience: str) -> str:
        jwt_file = tmp_path / f"token-{uuid.uuid4().hex[:6]}"
        jwt_file.write_text(token_reviews.service_account_token(namespace, account, audience))
        return rotator_login(openbao, {"method": "kubernetes", "role": "jfrog-rotator", "mount": mount,
                                       "jwt_file": str(jwt_file)})

    token = login("jfrog-rotator", "jfrog-rotator", "vault")
    me = openbao.api("GET", "auth/token/lookup-self", token=token)["data"]
    assert me["policies"] == ["default", "jfrog-rotator-daemon"]
    assert token_reviews.reviews[-1]["spec"]["audiences"] == ["vault"]
    for namespace, account, audience in [("apps", "jfrog-rotator", "vault"), ("jfrog-rotator", "jfrog-rotator", "sts")]:
        with pytest.raises(Exception) as refused:
            login(namespace, account, audience)
        assert token not in str(refused.value)


def test_kubernetes_setup_refuses_without_host_or_ca(admin_env, tmp_path):
    answer = script(KUBERNETES, env=admin_env)
    assert answer.returncode == 2 and "set KUBERNETES_HOST to the Kubernetes API server's URL" in answer.stderr
    answer = script(KUBERNETES, env={**admin_env, "KUBERNETES_HOST": "https://127.0.0.1:6443"})
    assert answer.returncode == 2 and "set KUBERNETES_CA_CERT to a PEM file with the API server's CA" in answer.stderr
    answer = script(KUBERNETES, env={**admin_env, "KUBERNETES_HOST": "https://127.0.0.1:6443",
                                     "KUBERNETES_CA_CERT": str(tmp_path / "none.pem")})
    assert answer.returncode == 2 and f"KUBERNETES_CA_CERT: no file {tmp_path / 'none.pem'}" in answer.stderr
