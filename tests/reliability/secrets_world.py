"""Helpers of the secrets suite (tests/reliability/test_secrets.py): one config over the three
stores whose every credential is a secret the :class:`~tests.reliability.harness.Ledger` knows,
real ``jfrog-rotator --debug`` processes whose output the ledger reads, and a small TLS server.

Secrets the suite cannot know by value (a Vault token an AppRole login hands a child process) are
caught by shape: :func:`token_shaped` finds anything that looks like a JWT, a JFrog reference
token or a Vault token in a text.
"""

from __future__ import annotations

import base64
import http.server
import logging
import os
import re
import secrets
import ssl
import subprocess
import sys
import textwrap
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import hvac

from rotator.core.logs import JsonFormatter
from tests.fixtures.daemon import ROOT
from tests.fixtures.moto_server import aws_env
from tests.reliability.harness import Ledger

CLI = str(Path(sys.executable).parent / "jfrog-rotator")

# The shapes rotator.core.redact masks, searched for in every text: a hit is a secret nobody registered.
_SHAPES = re.compile(r"eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]*"
                     r"|\bcmVmd[A-Za-z0-9]{20,}"
                     r"|\b(?:hv[sbr]|s|b)\.[A-Za-z0-9]{20,}")


def token_shaped(text: str) -> int:
    """How many token-shaped strings ``text`` holds (never the strings themselves)."""
    return len(_SHAPES.findall(text))


def check_all(ledger: Ledger, tally) -> None:
    """Invariant 4 by value (:meth:`Ledger.check`), with each token also as a Docker config's
    ``auth`` (base64 of ``ci:<token>``), and by shape (every text, no token-shaped string)."""
    ledger.secret(*(base64.b64encode(f"ci:{value}".encode()).decode() for value in list(ledger.secrets)))
    ledger.check(tally)
    shaped = [f"{n} token-shaped string(s) in {where}" for where, text in ledger.texts if (n := token_shaped(text))]
    tally.add(checks=1)
    tally.violated(shaped)


@dataclass
class World:
    """A config over a file store, Vault (AppRole and token auth) and AWS on moto, and its env."""

    tmp: Path
    emulator: object
    openbao: object
    moto_url: str
    ledger: Ledger
    env: dict[str, str] = field(default_factory=dict)
    prefix: str = ""
    config: Path | None = None
    approle_tokens: list[str] = field(default_factory=list)
    role_id: str = ""

    def cli(self, *args: str, config: Path | None = None, expect: int | None = 0, where: str = "",
            env: dict[str, str] | None = None, stdout_is_secret: bool = False) -> subprocess.CompletedProcess:
        """``jfrog-rotator --debug ARGS -c CONFIG`` as a real process; its stdout and stderr go to the
        ledger (stdout not, when it prints a token by design: ``token create``)."""
        argv = [CLI, "--debug", *args]
        if config is not False and args and args[0] in ("rotate", "status", "sweep", "check-config"):
            argv += ["-c", str(config or self.config)]
        done = subprocess.run(argv, cwd=self.tmp, env={**self.env, **(env or {})}, capture_output=True,
                              text=True, timeout=120)
        label = where or " ".join(args[:2])
        if not stdout_is_secret:
            self.ledger.text(f"{label} stdout", done.stdout)
        self.ledger.text(f"{label} stderr", done.stderr)
        if expect is not None:
            assert done.returncode == expect, f"{label}: exit {done.returncode}, stderr tail: {done.stderr[-600:]}"
        return done


def make_world(tmp_path: Path, emulator, openbao, moto_server, ledger: Ledger, monkeypatch) -> World:
    """Users, a Vault policy, an AppRole and a child token, long random AWS credentials (moto takes
    any), every one of them registered in ``ledger``; the process env (monkeypatched) and a copy for
    child processes; ``rotator.yaml`` with a target per store."""
    world = World(tmp_path, emulator, openbao, moto_server.url, ledger, prefix=f"sec-{uuid.uuid4().hex[:8]}")
    emulator.create_user("ci", groups=("deployers",))
    policy = (f'path "secret/data/{world.prefix}/*" {{ capabilities = ["create", "read", "update", "delete"] }}\n'
              f'path "secret/metadata/{world.prefix}/*" {{ capabilities = ["read", "patch", "list", "update"] }}\n'
              f'path "secret/data/jfrog-rotator-claims/*" {{ capabilities = ["create", "read", "update"] }}\n')
    openbao.write_policy(world.prefix, policy)
    role_id, secret_id = openbao.make_approle(world.prefix, [world.prefix])
    vault_token = openbao.create_token([world.prefix])
    aws_env(monkeypatch)
    aws_secret, aws_session = secrets.token_urlsafe(30), secrets.token_urlsafe(60)
    env = {"JFROG_ADMIN_TOKEN": emulator.admin_token, "VAULT_SECRET_ID": secret_id, "VAULT_TOKEN": vault_token,
           "AWS_SECRET_ACCESS_KEY": aws_secret, "AWS_SESSION_TOKEN": aws_session}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    ledger.secret(emulator.admin_token, openbao.root_token, secret_id, vault_token, aws_secret, aws_session)
    world.env = {**os.environ, "PYTHONPATH": str(ROOT)}
    world.role_id = role_id
    world.config = write_world_config(world, tmp_path / "rotator.yaml", role_id)
    _spy_on_approle_logins(world, monkeypatch)
    return world


def write_world_config(world: World, path: Path, role_id: str, *, jfrog_extra: str = "",
                       vault_url: str | None = None, vault_extra: str = "", moto_url: str | None = None) -> Path:
    p = world.prefix
    token = "{username: ci, groups: [deployers], expiry: 7d, refreshable: true, reference: true}"
    path.write_text(textwrap.dedent(f"""\
        jfrog: {{url: "{world.emulator.url}", access_token_env: JFROG_ADMIN_TOKEN{jfrog_extra}}}
        backends:
          files: {{type: file, directory: ./secrets}}
          approle:
            type: vault
            url: {vault_url or world.openbao.addr}
            auth: {{method: approle, role_id: {role_id}, secret_id_env: VAULT_SECRET_ID}}{vault_extra}
          vtoken:
            type: vault
            url: {vault_url or world.openbao.addr}
            auth: {{method: token, token_env: VAULT_TOKEN}}{vault_extra}
          aws: {{type: aws-secretsmanager, region: us-east-1, endpoint_url: "{moto_url or world.moto_url}", timeout: 10s}}
        targets:
          - {{name: file-ci, backend: files, path: {p}/file-ci, overlap: 0s, orphan_grace: 0s, token: {token}}}
          - {{name: approle-ci, backend: approle, path: {p}/approle-ci, overlap: 0s, orphan_grace: 0s,
              strategy: refresh, token: {token}}}
          - {{name: vtoken-ci, backend: vtoken, path: {p}/vtoken-ci, overlap: 0s, orphan_grace: 0s, token: {token}}}
          - {{name: aws-ci, backend: aws, path: {p}/aws-ci, overlap: 0s, orphan_grace: 0s, token: {token}}}
          - {{name: aws-docker, backend: aws, path: {p}/aws-docker, overlap: 0s, orphan_grace: 0s,
              format: dockerconfigjson, token: {{username: ci, expiry: 7d}}}}
        """))
    return path


class JsonCapture(logging.Handler):
    """Every log record as the daemon's JSON formatter writes it, ``extra`` fields included (the
    ledger's own capture formats the message alone)."""

    def __init__(self, ledger: Ledger) -> None:
        super().__init__(logging.DEBUG)
        self.ledger = ledger
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.ledger.text(f"json log {record.name}", self.format(record))
        except Exception:  # noqa: BLE001 - a record that cannot be formatted is not a leak
            pass


def _spy_on_approle_logins(world: World, monkeypatch) -> None:
    """Every Vault token an AppRole login of this process hands out goes to the ledger."""
    login = hvac.api.auth_methods.AppRole.login

    def spying(self, *args, **kwargs):
        answer = login(self, *args, **kwargs)
        token = (answer or {}).get("auth", {}).get("client_token")
        world.approle_tokens.append(token)
        world.ledger.secret(token)
        return answer

    monkeypatch.setattr(hvac.api.auth_methods.AppRole, "login", spying)


# -- a TLS server of the suite's own --------------------------------------------------------------
class TlsServer:
    """An HTTPS server on 127.0.0.1 with ``cert`` (a trustme leaf) answering ``{}`` to everything;
    with ``client_ca`` it requires a client certificate issued by that CA."""

    def __init__(self, cert, client_ca=None) -> None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        if client_ca is not None:
            client_ca.configure_trust(ctx)
            ctx.verify_mode = ssl.CERT_REQUIRED

        class Answer(http.server.BaseHTTPRequestHandler):
            def _any(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_LIST = _any

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> TlsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# -- the rotation Lambda on moto ------------------------------------------------------------------
def lambda_harness(moto_server, emulator, monkeypatch, ledger: Ledger):
    """A :class:`tests.fixtures.lambda_harness.Harness` as tests/aws_lambda/conftest.py builds it (a
    function in moto's no-Docker Lambda backend, the admin token in a secret), routed to the
    handler in-process; the caller stops it with ``close()`` on the returned harness."""
    import boto3
    from botocore.config import Config as BotoConfig

    from rotator import aws_lambda
    from rotator.jfrog import AccessClient
    from tests.fixtures.lambda_harness import REGION, Harness, moto_config, tiny_zip

    moto_config(moto_server.url, use_docker=False)
    client_args = dict(endpoint_url=moto_server.url, region_name=REGION)
    suffix = uuid.uuid4().hex[:8]
    role = boto3.client("iam", **client_args).create_role(
        RoleName=f"jfrog-rotation-{suffix}", AssumeRolePolicyDocument='{"Version": "2012-10-17", "Statement": []}',
    )["Role"]["Arn"]
    function = boto3.client("lambda", **client_args).create_function(
        FunctionName=f"jfrog-token-rotation-{suffix}", Runtime="python3.12", Role=role,
        Handler="rotator.aws_lambda.handler", Code={"ZipFile": tiny_zip()}, Timeout=60)["FunctionArn"]
    emulator.create_user("lambda-ci", groups=("deployers",))
    sm = boto3.client("secretsmanager", config=BotoConfig(retries={"mode": "standard", "total_max_attempts": 1}),
                      **client_args)
    admin_arn = sm.create_secret(Name=f"jfrog/admin-{suffix}", SecretString=emulator.admin_token)["ARN"]
    for name, value in {"SECRETS_MANAGER_ENDPOINT": moto_server.url, "JFROG_URL": emulator.url,
                        "JFROG_ADMIN_SECRET_ARN": admin_arn, "TOKEN_USERNAME": "lambda-ci",
                        "TOKEN_GROUPS": "deployers", "TOKEN_EXPIRY": "14400"}.items():
        monkeypatch.setenv(name, value)
    for name in ("REVOKE_PREVIOUS", "PREVIOUS_TOKEN_GRACE", "ORPHAN_GRACE", "TEST_SECRET_TIMEOUT", "TOKEN_SCOPE"):
        monkeypatch.delenv(name, raising=False)
    container = aws_lambda.Container(sleep=lambda seconds: None)
    previous = aws_lambda.install(container)
    admin = AccessClient(emulator.url, access_token=emulator.admin_token)
    harness = Harness(sm=sm, moto_url=moto_server.url, function_arn=function, emulator=emulator, admin=admin,
                      monkeypatch=monkeypatch, sleeps=[], container=container)
    harness.route_to_handler()

    def close() -> None:
        aws_lambda.install(previous)
        admin.close()
        sm.close()
        moto_config(moto_server.url, use_docker=True)

    harness.close = close
    return harness
