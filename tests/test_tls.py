"""TLS: custom CA, verification failure, verify off, and mutual TLS with certificates made at test time."""

from __future__ import annotations

import ssl

import pytest
import trustme

from rotator.emulator import Emulator
from rotator.jfrog import AccessClient, JFrogConfigError, JFrogConnectionError


@pytest.fixture(scope="module")
def server_cert(ca):
    return ca.issue_cert("127.0.0.1", "localhost")


def _server_context(server_cert, client_ca=None):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(ctx)
    if client_ca is not None:
        client_ca.configure_trust(ctx)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


@pytest.fixture
def tls_emulator(server_cert, signing_key):
    emu = Emulator(ssl_context=_server_context(server_cert), signing_key=signing_key).start()
    yield emu
    emu.stop()


@pytest.fixture
def mtls_emulator(server_cert, ca, signing_key):
    emu = Emulator(ssl_context=_server_context(server_cert, client_ca=ca), signing_key=signing_key).start()
    yield emu
    emu.stop()


def test_custom_ca_bundle_verifies_the_server(tls_emulator, ca, tmp_path):
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    with AccessClient(tls_emulator.url, access_token=tls_emulator.admin_token, ca_bundle=str(bundle)) as c:
        assert c.ping() == "OK"


def test_ca_bundle_beats_requests_ca_bundle_env(tls_emulator, ca, tmp_path, monkeypatch):
    bundle, other = tmp_path / "ca.pem", tmp_path / "other.pem"
    ca.cert_pem.write_to_path(str(bundle))
    trustme.CA().cert_pem.write_to_path(str(other))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other))
    with AccessClient(tls_emulator.url, access_token=tls_emulator.admin_token, ca_bundle=str(bundle)) as c:
        assert c.ping() == "OK"
    with AccessClient(tls_emulator.url, access_token=tls_emulator.admin_token, verify=False) as c:
        assert c.ping() == "OK"


def test_requests_ca_bundle_env_is_honoured_by_default(tls_emulator, ca, tmp_path, monkeypatch):
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    with AccessClient(tls_emulator.url, access_token=tls_emulator.admin_token) as c:
        assert c.ping() == "OK"


def test_unknown_ca_fails_verification(tls_emulator, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    assert tls_emulator.url.startswith("https://")
    with AccessClient(tls_emulator.url, access_token=tls_emulator.admin_token) as c:
        with pytest.raises(JFrogConnectionError) as err:
            c.ping()
    assert "TLS error" in str(err.value)


def test_verify_off_connects_anyway(tls_emulator):
    with AccessClient(tls_emulator.url, access_token=tls_emulator.admin_token, verify=False) as c:
        assert c.ping() == "OK"


def test_mtls_with_client_certificate(mtls_emulator, ca, tmp_path):
    bundle, cert, key = tmp_path / "ca.pem", tmp_path / "client.pem", tmp_path / "client.key"
    ca.cert_pem.write_to_path(str(bundle))
    client_cert = ca.issue_cert("ci-client@example.test")
    client_cert.cert_chain_pems[0].write_to_path(str(cert))
    client_cert.private_key_pem.write_to_path(str(key))
    with AccessClient(mtls_emulator.url, access_token=mtls_emulator.admin_token, ca_bundle=str(bundle),
                      client_cert=str(cert), client_key=str(key)) as c:
        assert c.ping() == "OK"


def test_mtls_without_client_certificate_is_refused(mtls_emulator, ca, tmp_path):
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    with AccessClient(mtls_emulator.url, access_token=mtls_emulator.admin_token, ca_bundle=str(bundle)) as c:
        with pytest.raises(JFrogConnectionError):
            c.ping()


def test_mtls_with_certificate_from_another_ca_is_refused(mtls_emulator, ca, tmp_path):
    bundle, cert, key = tmp_path / "ca.pem", tmp_path / "client.pem", tmp_path / "client.key"
    ca.cert_pem.write_to_path(str(bundle))
    rogue = trustme.CA().issue_cert("rogue@example.test")
    rogue.cert_chain_pems[0].write_to_path(str(cert))
    rogue.private_key_pem.write_to_path(str(key))
    with AccessClient(mtls_emulator.url, access_token=mtls_emulator.admin_token, ca_bundle=str(bundle),
                      client_cert=str(cert), client_key=str(key)) as c:
        with pytest.raises(JFrogConnectionError):
            c.ping()


@pytest.mark.parametrize("kwargs,message", [
    ({"ca_bundle": "/nonexistent/ca.pem"}, "CA bundle not found: /nonexistent/ca.pem"),
    ({"client_cert": "/nonexistent/c.pem"}, "client certificate not found: /nonexistent/c.pem"),
    ({"client_key": "/nonexistent/k.pem"}, "a client certificate key was given without --client-cert-path"),
])
def test_missing_certificate_files_are_config_errors(kwargs, message):
    with pytest.raises(JFrogConfigError) as err:
        AccessClient("https://127.0.0.1:1", access_token="x" * 20, **kwargs)
    assert str(err.value) == message
