"""Shapes: a JFrog token is found in the values people already store, and written back in the
formats their consumers read (read back here the way those consumers parse them)."""

from __future__ import annotations

import base64
import json
import shlex
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rotator.core.shapes import (
    FORMATS,
    SHAPES,
    ConsumerValues,
    Found,
    ShapeError,
    find_token,
    registry_hosts,
    render,
    render_like,
)
from rotator.emulator.jwt_signer import JwtSigner
from rotator.emulator.tokens import new_reference_token

SIGNER = JwtSigner("jfac@01g5hek6kb29520rbz71v91cw9")


def access_token(user: str = "ci-deployer") -> str:
    """A token signed the way JFrog Access signs one (the emulator's signer)."""
    jwt, _jti = SIGNER.sign([("sub", f"{SIGNER.issuer}/users/{user}"), ("scp", "applied-permissions/user")])
    return jwt


OLD, OTHER = access_token(), access_token("release-bot")
REFERENCE = new_reference_token(None)
NEW = ConsumerValues(access_token=access_token(), username="ci-deployer", url="https://acme.jfrog.io",
                     token_id="59e39159-19eb-463d-953d-1d6baf567db6", expires_at="2026-12-04T22:00:00Z")


def docker_login_credentials(config_json: str, host: str) -> tuple[str, str]:
    """(username, password) the way Docker reads ``config.json``: base64-decode ``auth``, split at the
    first colon (https://docs.docker.com/reference/cli/docker/login/)."""
    user, _, password = base64.b64decode(json.loads(config_json)["auths"][host]["auth"], validate=True).decode().partition(":")
    return user, password


def shell_variables(env_text: str) -> dict[str, str]:
    """The variables a POSIX shell sets when it sources ``env_text`` (words split by shlex)."""
    words = shlex.split(env_text, comments=True)
    return dict(word.split("=", 1) for word in words if word != "export")


def dockerconfig(auths: dict, **extra) -> str:
    return json.dumps({"auths": auths, **extra})


def auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


# -- finding -----------------------------------------------------------------------------------
@pytest.mark.parametrize("token", [OLD, REFERENCE], ids=["jwt", "reference-token"])
def test_a_bare_token_is_found(token):
    found = find_token(f"  {token}\n")
    assert (found.shape, found.token, found.username) == ("bare", token, None)
    assert found.describe() == "a bare token"


def test_json_with_access_token_is_found():
    found = find_token(json.dumps({"access_token": OLD, "note": "ci"}))
    assert (found.shape, found.token, found.username) == ("access_token", OLD, None)
    assert found.describe() == "JSON with 'access_token'"


def test_json_with_token_and_username_is_found():
    found = find_token(json.dumps({"token": REFERENCE, "username": "ci-deployer"}))
    assert (found.shape, found.token, found.username) == ("token", REFERENCE, "ci-deployer")
    assert found.describe() == "JSON with 'token' and 'username'"


def test_the_jfrog_rotator_lambda_secret_is_username_password():
    found = find_token(json.dumps({"username": "ci-deployer", "password": OLD}))
    assert (found.shape, found.token, found.username) == ("username-password", OLD, "ci-deployer")
    assert found.describe() == "JSON with 'password' and 'username'"


def test_what_jf_atc_prints_is_its_own_shape():
    printed = json.dumps({"scope": "applied-permissions/user", "access_token": OLD, "expires_in": 31536000,
                          "token_type": "Bearer", "refresh_token": "0b8c54d2-8a51-4c9c-9d1e-4f7d1a7c1b2e",
                          "reference_token": REFERENCE, "token_id": "59e39159"}, indent=2)
    found = find_token(printed)
    assert (found.shape, found.token, found.username) == ("jf-atc", OLD, None)
    assert found.describe() == "JSON as `jf atc` prints it"


def test_the_same_token_under_two_keys_is_one_token():
    found = find_token(json.dumps({"access_token": OLD, "password": OLD}))
    assert (found.shape, found.token) == ("access_token", OLD)
    assert found.describe() == "JSON with 'access_token' and 'password'"


def test_a_dockerconfigjson_password_is_found():
    found = find_token(dockerconfig({"acme.jfrog.io": {"username": "ci-deployer", "password": OLD,
                                                       "auth": auth("ci-deployer", OLD)}}))
    assert (found.shape, found.token, found.username) == ("dockerconfigjson", OLD, "ci-deployer")
    assert found.describe() == "a .dockerconfigjson for acme.jfrog.io"


def test_a_dockerconfigjson_auth_is_decoded_like_docker_does():
    # Everything after the first colon is the password, as in Docker's decodeAuth.
    found = find_token(dockerconfig({"acme.jfrog.io": {"auth": auth("ci-deployer", OLD)}}))
    assert (found.shape, found.token, found.username) == ("dockerconfigjson", OLD, "ci-deployer")


def test_several_registries_holding_one_token_are_one_token():
    text = dockerconfig({"acme.jfrog.io": {"auth": auth("ci", OLD)}, "docker.acme.io": {"auth": auth("ci", OLD)},
                         "https://index.docker.io/v1/": {"auth": auth("me", "hunter2")}})
    found = find_token(text)
    assert found.token == OLD
    assert found.describe() == "a .dockerconfigjson for acme.jfrog.io and docker.acme.io"


def test_env_text_is_found_with_its_user():
    text = ("# CI credentials\nexport JFROG_URL=https://acme.jfrog.io\n"
            f'export JFROG_ACCESS_TOKEN="{OLD}"\nJFROG_USER=\'ci-deployer\'\n')
    found = find_token(text)
    assert (found.shape, found.token, found.username) == ("env", OLD, "ci-deployer")
    assert found.describe() == "env text with JFROG_ACCESS_TOKEN and JFROG_USER"


@pytest.mark.parametrize("key", ["JFROG_TOKEN", "ACCESS_TOKEN"])
def test_env_text_with_the_other_token_keys_is_found(key):
    found = find_token(f"{key}={REFERENCE}  # rotated\nJFROG_USERNAME=ci\n")
    assert (found.shape, found.token, found.username) == ("env", REFERENCE, "ci")
    assert found.describe() == f"env text with {key} and JFROG_USERNAME"


@pytest.mark.parametrize("text", [
    "", "hunter2", "acme.jfrog.io", "a.b.c",  # dotted words shaped like a JWT whose parts are not JSON
    "0123456789abcdef" * 4,  # 64 characters, but not a reference token
    "cmVmd" + "a" * 58, "cmVmd" + "a" * 60,
    "42", json.dumps([OLD]), json.dumps({"password": "hunter2", "username": "me"}),
    json.dumps({"access_token": "not-a-token"}), json.dumps({"data": {"access_token": OLD}}),
    dockerconfig({"https://index.docker.io/v1/": {"auth": auth("me", "hunter2")}}),
    "JFROG_URL=https://acme.jfrog.io\nJFROG_USER=ci\n", f"JFROG_PASSWORD={OLD}\n",
    f"JFROG_ACCESS_TOKEN={OLD}\nnot an assignment\n",
], ids=lambda text: text[:24] or "empty")
def test_a_value_without_a_jfrog_token_is_no_shape(text):
    assert find_token(text) is None


@pytest.mark.parametrize("text,message", [
    (json.dumps({"access_token": OLD, "password": OTHER}), "the JSON holds different tokens in 'access_token' and 'password'"),
    (dockerconfig({"a.jfrog.io": {"auth": auth("ci", OLD)}, "b.jfrog.io": {"password": OTHER}}),
     "the .dockerconfigjson holds different tokens for a.jfrog.io and b.jfrog.io"),
    (dockerconfig({"a.jfrog.io": {"password": OLD, "auth": auth("ci", OTHER)}}),
     "the .dockerconfigjson entry for a.jfrog.io has different tokens in 'password' and 'auth'"),
    (f"JFROG_ACCESS_TOKEN={OLD}\nACCESS_TOKEN={OTHER}\n",
     "the env text holds different tokens in ACCESS_TOKEN and JFROG_ACCESS_TOKEN"),
], ids=["json", "dockerconfigjson-hosts", "dockerconfigjson-entry", "env"])
def test_two_different_tokens_are_refused_naming_where_they_are(text, message):
    with pytest.raises(ShapeError) as refused:
        find_token(text)
    assert str(refused.value) == message
    assert OLD not in str(refused.value) and OTHER not in str(refused.value)


def test_a_found_token_stays_out_of_reprs():
    found = find_token(json.dumps({"token": OLD}))
    assert OLD not in repr(found) and NEW.access_token not in repr(NEW)


# -- rendering ---------------------------------------------------------------------------------
def test_token_format_is_the_bare_token():
    assert render("token", NEW) == NEW.access_token


def test_dockerconfigjson_is_what_docker_login_reads():
    text = render("dockerconfigjson", NEW)
    assert list(json.loads(text)["auths"]) == ["acme.jfrog.io"]
    assert json.loads(text)["auths"]["acme.jfrog.io"] == {"username": "ci-deployer", "password": NEW.access_token,
                                                           "auth": auth("ci-deployer", NEW.access_token)}
    assert docker_login_credentials(text, "acme.jfrog.io") == ("ci-deployer", NEW.access_token)
    assert text.startswith('{\n  "auths": {\n    "acme.jfrog.io": {\n      "username"')


def test_dockerconfigjson_for_named_registries():
    text = render("dockerconfigjson", NEW, hosts=["docker.acme.io", "acme.jfrog.io"])
    assert list(json.loads(text)["auths"]) == ["docker.acme.io", "acme.jfrog.io"]
    assert docker_login_credentials(text, "docker.acme.io") == ("ci-deployer", NEW.access_token)


@pytest.mark.parametrize("url,host", [
    ("https://acme.jfrog.io", "acme.jfrog.io"), ("https://ACME.jfrog.io/artifactory/", "acme.jfrog.io"),
    ("http://127.0.0.1:8082", "127.0.0.1:8082"), ("http://[::1]:8082/", "[::1]:8082"),
])
def test_the_registry_of_a_jfrog_url_is_its_host(url, host):
    assert registry_hosts(url) == (host,)


@pytest.mark.parametrize("url", ["acme.jfrog.io", "https://", "ftp://acme.jfrog.io", "http://acme.jfrog.io:port"])
def test_a_url_without_a_host_has_no_registry(url):
    with pytest.raises(ShapeError, match="JFrog URL"):
        registry_hosts(url)


def test_username_password_is_the_jfrog_rotator_lambda_shape():
    assert json.loads(render("username-password", NEW)) == {"username": "ci-deployer", "password": NEW.access_token}


def test_env_text_is_what_a_shell_sets():
    text = render("env", NEW)
    assert text.splitlines()[1] == f"JFROG_ACCESS_TOKEN={NEW.access_token}"
    assert shell_variables(text) == {"JFROG_URL": "https://acme.jfrog.io", "JFROG_ACCESS_TOKEN": NEW.access_token,
                                     "JFROG_USER": "ci-deployer"}


def test_template_fills_every_key():
    template = '{{"token": "{access_token}", "user": "{username}", "url": "{url}", "id": "{token_id}", "until": "{expires_at}"}}'
    assert json.loads(render("template", NEW, template=template)) == {
        "token": NEW.access_token, "user": "ci-deployer", "url": "https://acme.jfrog.io", "id": NEW.token_id,
        "until": "2026-12-04T22:00:00Z"}


def test_template_says_never_for_a_token_that_never_expires():
    never = ConsumerValues(NEW.access_token, "ci", "https://acme.jfrog.io", "id", None)
    assert render("template", never, template="expires: {expires_at}") == "expires: never"


@pytest.mark.parametrize("template,message", [
    ("{password}", "template: unknown key 'password' (known: access_token, username, url, token_id, expires_at)"),
    ("{}", "template: unknown key '' (known:"),
    ("{url.__class__}", "template: unknown key 'url.__class__' (known:"),
    ("{access_token[0]}", "template: unknown key 'access_token[0]' (known:"),
    ("{url:{width}}", "template: unknown key 'width' (known:"),
    ("token: {access_token", "template: expected '}' before end of string"),
    ("{access_token:d}", "template: Unknown format code 'd'"),
    (None, "format 'template' needs a template"),
])
def test_a_broken_template_is_refused_naming_the_problem(template, message):
    with pytest.raises(ShapeError) as refused:
        render("template", NEW, template=template)
    assert str(refused.value).startswith(message)
    assert NEW.access_token not in str(refused.value)


def test_the_record_is_not_rendered_here():
    with pytest.raises(ShapeError, match="format 'record' is written by the record module"):
        render("record", NEW)


def test_an_unknown_format_names_the_known_ones():
    with pytest.raises(ShapeError, match="unknown format 'yaml' .known: record, token, dockerconfigjson"):
        render("yaml", NEW)


# -- writing back in the shape found -----------------------------------------------------------
def test_a_bare_token_is_replaced_keeping_its_newline():
    assert render_like(find_token(OLD + "\n"), NEW) == NEW.access_token + "\n"


def test_username_password_keeps_its_other_keys():
    found = find_token(json.dumps({"username": "old-user", "password": OLD, "note": "rotated by hand"}))
    assert json.loads(render_like(found, NEW)) == {"username": "ci-deployer", "password": NEW.access_token,
                                                   "note": "rotated by hand"}


def test_jf_atc_output_gets_the_new_token_and_its_id():
    found = find_token(json.dumps({"scope": "applied-permissions/user", "access_token": OLD, "token_type": "Bearer",
                                   "token_id": "old-id"}))
    assert json.loads(render_like(found, NEW)) == {"scope": "applied-permissions/user", "access_token": NEW.access_token,
                                                   "token_type": "Bearer", "token_id": NEW.token_id}


def test_every_key_that_held_the_token_is_replaced():
    found = find_token(json.dumps({"access_token": OLD, "password": OLD, "expires_at": None}))
    assert json.loads(render_like(found, NEW)) == {"access_token": NEW.access_token, "password": NEW.access_token,
                                                   "expires_at": NEW.expires_at}


def test_env_text_keeps_comments_order_and_other_variables():
    before = ("# CI credentials, see the wiki\n"
              "export JFROG_URL=https://acme.jfrog.io\n"
              f'export JFROG_ACCESS_TOKEN="{OLD}"  # rotated\n'
              "OTHER=keep me\n"
              "\n"
              "JFROG_USER='old-user'\n")
    after = render_like(find_token(before), NEW)
    assert after == ("# CI credentials, see the wiki\n"
                     "export JFROG_URL=https://acme.jfrog.io\n"
                     f'export JFROG_ACCESS_TOKEN="{NEW.access_token}"  # rotated\n'
                     "OTHER=keep me\n"
                     "\n"
                     "JFROG_USER='ci-deployer'\n")


def test_env_text_without_a_user_line_gets_none():
    after = render_like(find_token(f"JFROG_TOKEN={OLD}"), NEW)
    assert after == f"JFROG_TOKEN={NEW.access_token}"


def test_a_dockerconfigjson_keeps_its_other_registries_and_keys():
    before = dockerconfig({"acme.jfrog.io": {"username": "ci", "password": OLD, "auth": auth("ci", OLD)},
                           "docker.acme.io": {"auth": auth("ci", OLD)},
                           "https://index.docker.io/v1/": {"auth": auth("me", "hunter2")}},
                          credsStore="desktop")
    after = json.loads(render_like(find_token(before), NEW))
    assert after["credsStore"] == "desktop"
    assert after["auths"]["acme.jfrog.io"] == {"username": "ci-deployer", "password": NEW.access_token,
                                               "auth": auth("ci-deployer", NEW.access_token)}
    assert after["auths"]["docker.acme.io"] == {"auth": auth("ci-deployer", NEW.access_token)}
    assert after["auths"]["https://index.docker.io/v1/"] == {"auth": auth("me", "hunter2")}
    assert docker_login_credentials(json.dumps(after), "docker.acme.io") == ("ci-deployer", NEW.access_token)


# -- properties --------------------------------------------------------------------------------
def _segment(document: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()


_B64URL = string.ascii_letters + string.digits + "-_"
_ALNUM = string.ascii_letters + string.digits
usernames = st.text(string.ascii_lowercase + string.digits + "._-@", min_size=1, max_size=40)


def _jwt(user: str, jti: str, signature: str) -> str:
    return f"{_segment({'typ': 'JWT', 'alg': 'RS256'})}.{_segment({'sub': f'jfac@x/users/{user}', 'jti': jti})}.{signature}"


jwts = st.builds(_jwt, usernames, st.uuids().map(str), st.text(_B64URL, min_size=1, max_size=342))
reference_tokens = st.builds(lambda stamp, tail: base64.b64encode(f"reftkn:01:{stamp:010d}:{tail}".encode()).decode(),
                             st.integers(0, 9_999_999_999), st.text(_ALNUM, min_size=27, max_size=27))
consumer_values = st.builds(
    ConsumerValues, access_token=st.one_of(jwts, reference_tokens), username=usernames,
    url=st.sampled_from(["https://acme.jfrog.io", "http://127.0.0.1:8082", "https://jfrog.example.com/artifactory"]),
    token_id=st.uuids().map(str), expires_at=st.sampled_from([None, "2026-12-04T22:00:00Z"]))
TEMPLATES = ["{access_token}", '{{"access_token": "{access_token}", "url": "{url}"}}',
             "export JFROG_TOKEN={access_token}\nJFROG_USER={username}\n",
             '{{"username": "{username}", "password": "{access_token}"}}']
HAND_WRITTEN = [json.dumps({"access_token": OLD, "note": "x"}), json.dumps({"token": OLD, "username": "u"}),
                json.dumps({"scope": "s", "access_token": OLD, "expires_in": 60, "reference_token": REFERENCE}),
                f"# kept\nexport ACCESS_TOKEN='{OLD}'\nJFROG_USERNAME=u\nX=1\n",
                dockerconfig({"a.io": {"auth": auth("u", OLD)}, "b.io": {"password": "not-it"}})]
PROPERTY = settings(max_examples=200, derandomize=True, deadline=None, database=None)


def test_every_shape_and_format_is_exercised_here():
    assert {find_token(text).shape for text in HAND_WRITTEN} | {"bare", "username-password", "dockerconfigjson"} == set(SHAPES)
    assert set(FORMATS) - {"record"} == {"token", "dockerconfigjson", "username-password", "env", "template"}


@PROPERTY
@given(values=consumer_values, format=st.sampled_from([f for f in FORMATS if f != "record"]), template=st.sampled_from(TEMPLATES))
def test_what_is_rendered_is_found_again(values, format, template):
    found = find_token(render(format, values, template=template))
    assert found is not None and found.token == values.access_token


@PROPERTY
@given(first=consumer_values, second=consumer_values,
       source=st.sampled_from(["token", "dockerconfigjson", "username-password", "env"]),
       hand_written=st.sampled_from(HAND_WRITTEN), use_hand_written=st.booleans())
def test_what_is_written_back_in_a_shape_is_found_again_in_that_shape(first, second, source, hand_written, use_hand_written):
    found = find_token(hand_written if use_hand_written else render(source, first))
    again = find_token(render_like(found, second))
    assert isinstance(again, Found) and again.token == second.access_token and again.shape == found.shape
