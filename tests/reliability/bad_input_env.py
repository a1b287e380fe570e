"""Helpers of the bad-input suite (tests/reliability/test_bad_input.py): hypothesis settings, the
CLI run in-process with its output, snapshots of every store (to show nothing was written), and a
raw HTTP client (a request no well-behaved client library would send).
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, settings

from backends.aws_secretsmanager import SecretsManagerBackend
from backends.base import SecretBackend
from backends.file import FileBackend
from backends.vault import VaultBackend
from rotator.cli import run


#: Seeded, bounded, no example database written into the repo, no per-example deadline (servers).
def seeded(max_examples: int) -> settings:
    return settings(max_examples=max_examples, derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])


@dataclass
class Ran:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def cli(capsys, *argv: str, ledger=None) -> Ran:
    """``jfrog-rotator ARGV`` in this process: the exit code and what it printed (kept in ``ledger``
    for invariant 4 when given)."""
    capsys.readouterr()
    try:
        code = run(list(argv))
    except SystemExit as exc:  # argparse on --help/--version; bad usage must not get here
        code = exc.code if isinstance(exc.code, int) else 2
    out = capsys.readouterr()
    if ledger is not None:
        ledger.text(f"jfrog-rotator {argv[0] if argv else ''} stdout", out.out)
        ledger.text(f"jfrog-rotator {argv[0] if argv else ''} stderr", out.err)
    return Ran(code, out.out, out.err)


def assert_refused(ran: Ran, *words: str, code: int = 2, limit: int = 4000) -> None:
    """Exit ``code`` with a message holding every word (case-insensitive), no traceback, no
    "unexpected error", and a message of readable size (a huge value is never echoed whole)."""
    text = ran.text
    assert ran.code == code, f"exit {ran.code}, not {code}: {text[-600:]}"
    assert "Traceback" not in text and "unexpected error" not in text, text[-1500:]
    lowered = text.lower()
    missing = [w for w in words if w.lower() not in lowered]
    assert not missing, f"the message does not name {missing}: {text[-600:]}"
    assert len(ran.err) < limit, f"stderr is {len(ran.err)} characters long"


# -- what a store holds, to compare before and after ------------------------------------------
def snapshot(store: SecretBackend, path: str) -> str:
    """A digest of everything ``store`` holds for ``path``: the file store's whole directory (the
    record, its sidecar, claim and lock files), Vault's versions and custom metadata (KV v2) or the
    value (KV v1), every AWS version with its stages and the tags."""
    parts: list[str] = []
    if isinstance(store, FileBackend):
        root = Path(store.directory)
        for file in sorted(root.rglob("*")) if root.exists() else []:
            if file.is_file():
                parts.append(f"{file.relative_to(root)}={hashlib.sha256(file.read_bytes()).hexdigest()}")
    elif isinstance(store, VaultBackend):
        kv = store.client.secrets.kv
        if store.kv_version == 2:
            meta = kv.v2.read_secret_metadata(path, mount_point=store.mount)["data"]
            parts += [str(meta["current_version"]), json.dumps(meta.get("custom_metadata"), sort_keys=True)]
        else:
            parts.append(json.dumps(kv.v1.read_secret(path, mount_point=store.mount)["data"], sort_keys=True))
    elif isinstance(store, SecretsManagerBackend):
        client = store.client
        versions = client.list_secret_version_ids(SecretId=path, IncludeDeprecated=True)["Versions"]
        parts += sorted(f"{v['VersionId']}:{sorted(v.get('VersionStages', []))}" for v in versions)
        described = client.describe_secret(SecretId=path)
        parts.append(json.dumps(sorted((t["Key"], t["Value"]) for t in described.get("Tags", [])), sort_keys=True))
        parts.append(client.get_secret_value(SecretId=path, VersionStage="AWSCURRENT").get("SecretString") or "")
    else:
        raise TypeError(f"no snapshot for {type(store).__qualname__}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


# -- raw HTTP ----------------------------------------------------------------------------------
@dataclass
class Answer:
    status: int | None  # None: the server closed the connection without answering
    head: str
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


def raw_http(url: str, request: bytes, timeout: float = 5.0) -> Answer:
    """Send ``request`` as is to ``url`` (``http://host:port``) and read one answer."""
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            data += chunk
            head, sep, body = data.partition(b"\r\n\r\n")
            length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            if sep and length and len(body) >= int(length.group(1)):
                break
    head, _, body = data.partition(b"\r\n\r\n")
    match = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    return Answer(int(match.group(1)) if match else None, head.decode("latin-1"), body)
