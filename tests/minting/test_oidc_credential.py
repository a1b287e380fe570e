"""``OidcCredential``: one exchange per JFrog token lifetime, renewed when less than 10 % or five
minutes of it is left; the ID token read for every exchange; failures name the call."""

from __future__ import annotations

import pytest

from rotator.jfrog.client import AccessClient
from rotator.jfrog.errors import MintingCredentialError
from rotator.jfrog.exchanged_token import ExchangedToken
from rotator.jfrog.oidc_credential import OidcCredential
from tests.fixtures.clocks import Clock


@pytest.fixture
def client(emulator):
    with AccessClient(emulator.url) as client:
        yield client


def credential(setup, client, clock, **kwargs) -> OidcCredential:
    return OidcCredential(client, provider_name="k8s", id_token=lambda: setup.id_token_file.read_text().strip(),
                          clock=clock, **kwargs)


@pytest.mark.parametrize("lifetime,kept_until", [(3600, 3600 - 360), (86400, 86400 - 8640), (600, 300)])
def test_the_token_is_kept_until_ten_percent_or_five_minutes_of_its_life_is_left(make_oidc, client, lifetime,
                                                                                   kept_until):
    setup, clock = make_oidc(expires_in=lifetime), Clock()
    oidc = credential(setup, client, clock)
    first = oidc.token()
    clock.now += kept_until  # exactly 10 % / five minutes left: not less yet
    assert oidc.token() == first and len(setup.exchanges()) == 1
    clock.now += 1
    assert oidc.token() != first and len(setup.exchanges()) == 2


def test_a_token_shorter_than_five_minutes_is_exchanged_every_time(make_oidc, client):
    setup = make_oidc(expires_in=200)
    oidc = credential(setup, client, Clock())
    assert len({oidc.token() for _ in range(3)}) == 3 and len(setup.exchanges()) == 3


def test_expires_in_caps_how_long_one_token_is_used(make_oidc, client):
    setup, clock = make_oidc(expires_in=86400), Clock()
    oidc = credential(setup, client, clock, max_lifetime=3600)
    first = oidc.token()
    clock.now += 3600 - 360
    assert oidc.token() == first
    clock.now += 1
    assert oidc.token() != first


def test_current_names_the_user_the_id_token_maps_to(make_oidc, client):
    setup = make_oidc()
    exchanged = credential(setup, client, Clock()).current()
    assert exchanged.username == "rotator-admin" and exchanged.token_id and exchanged.lifetime == 86400
    assert exchanged.access_token not in repr(exchanged)


def test_an_unreadable_id_token_names_the_source(make_oidc, client):
    setup = make_oidc()

    def missing() -> str:
        raise ValueError("rotator.yaml: jfrog.oidc.token: cannot read /var/run/token: No such file or directory")

    oidc = OidcCredential(client, provider_name="k8s", id_token=missing)
    with pytest.raises(MintingCredentialError, match="cannot read the OIDC ID token: .*jfrog.oidc.token"):
        oidc.token()
    assert setup.exchanges() == []


def test_a_refused_exchange_names_the_call_without_the_id_token(make_oidc, client):
    setup = make_oidc()
    id_token = setup.write_id_token(expires_in=-1)
    with pytest.raises(MintingCredentialError) as err:
        credential(setup, client, Clock()).token()
    assert str(err.value).startswith("OIDC token exchange with provider 'k8s' failed "
                                     "(POST /access/api/v1/oidc/token): server response: 401")
    assert id_token not in str(err.value)


def test_without_expires_in_the_lifetime_comes_from_the_jwt():
    token = "eyJhbGciOiJSUzI1NiJ9.eyJpYXQiOjEwMDAsImV4cCI6NDYwMCwianRpIjoidC0xIn0.c2ln"  # iat 1000, exp 4600
    exchanged = ExchangedToken.from_answer({"access_token": token}, 5000.0)
    assert exchanged.lifetime == 3600 and exchanged.token_id == "t-1"
    assert not exchanged.renew_due(5000.0 + 3600 - 360) and exchanged.renew_due(5000.0 + 3600 - 359)
