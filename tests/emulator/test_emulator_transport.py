"""Transport: TLS, mTLS, TCP_NODELAY, lifecycle."""

from __future__ import annotations

import socket

import pytest
import requests

from rotator.emulator import Emulator, make_server_ssl_context

PING = "/access/api/v1/system/ping"


@pytest.fixture
def pki(ca, tmp_path):
    """Files for a server cert for 127.0.0.1 and a client cert, both from the test CA."""
    server_cert = ca.issue_cert("127.0.0.1")
    client_cert = ca.issue_cert("rotator-client@example.com")
    paths = {
        "ca": tmp_path / "ca.pem",
        "server": tmp_path / "server.pem",
        "client": tmp_path / "client.pem",
    }
    ca.cert_pem.write_to_path(str(paths["ca"]))
    server_cert.private_key_and_cert_chain_pem.write_to_path(str(paths["server"]))
    client_cert.private_key_and_cert_chain_pem.write_to_path(str(paths["client"]))
    return {name: str(path) for name, path in paths.items()}


def test_tls_serves_https_with_the_given_certificate(make_emulator, pki):
    emu = make_emulator(ssl_context=make_server_ssl_context(pki["server"]))
    assert emu.url.startswith("https://127.0.0.1:")
    response = requests.get(emu.url + PING, verify=pki["ca"], timeout=5)
    assert response.text == "OK"


def test_tls_client_not_trusting_the_ca_fails(make_emulator, pki):
    emu = make_emulator(ssl_context=make_server_ssl_context(pki["server"]))
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(emu.url + PING, timeout=5)


def test_mtls_rejects_a_client_without_certificate(make_emulator, pki):
    emu = make_emulator(ssl_context=make_server_ssl_context(pki["server"], client_ca_file=pki["ca"]))
    with pytest.raises(requests.exceptions.ConnectionError):  # SSLError is a ConnectionError
        requests.get(emu.url + PING, verify=pki["ca"], timeout=5)


def test_mtls_accepts_a_client_with_a_certificate_from_the_ca(make_emulator, pki):
    emu = make_emulator(ssl_context=make_server_ssl_context(pki["server"], client_ca_file=pki["ca"]))
    response = requests.get(emu.url + PING, verify=pki["ca"], cert=pki["client"], timeout=5)
    assert response.text == "OK"


def test_accepted_sockets_have_tcp_nodelay(emulator):
    with requests.Session() as session:
        assert session.get(emulator.url + PING).text == "OK"  # the connection stays open (keep-alive)
        connections = emulator.server.open_connections()
        assert connections
        for sock in connections:
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_keep_alive_reuses_one_connection_for_many_requests(emulator):
    with requests.Session() as session:
        for _ in range(20):
            assert session.get(emulator.url + PING).status_code == 200
        assert len(emulator.server.open_connections()) == 1


def test_connection_count_counts_accepted_connections(emulator):
    with requests.Session() as first, requests.Session() as second:
        for _ in range(3):
            first.get(emulator.url + PING)
        second.get(emulator.url + PING)
    assert emulator.connection_count() == 2


def test_url_has_no_trailing_slash_and_uses_loopback(emulator):
    assert emulator.url.startswith("http://127.0.0.1:")
    assert not emulator.url.endswith("/")


def test_stop_is_idempotent_and_closes_the_port(make_emulator):
    emu = make_emulator()
    url = emu.url
    with requests.Session() as session:
        session.get(url + PING)  # leave a kept-alive connection open
        emu.stop()
        emu.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url + PING, timeout=2)


def test_context_manager_starts_and_stops():
    with Emulator() as emu:
        url = emu.url
        assert requests.get(url + PING, timeout=5).text == "OK"
    assert emu.server is None
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url + PING, timeout=2)


def test_starting_twice_is_an_error(emulator):
    with pytest.raises(RuntimeError):
        emulator.start()
