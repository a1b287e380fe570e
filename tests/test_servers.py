"""Server resolution like the JFrog CLI, from generated jfrog-cli.conf.v6 files."""

import json
import os

import pytest

from rotator.jfrog.errors import JFrogConfigError
from rotator.jfrog.servers import ConnectionFlags, encrypt_secret, resolve_server

KEY = b"0123456789abcdef0123456789abcdef"


def write_config(home, servers, enc=False):
    home.mkdir(parents=True, exist_ok=True)
    (home / "jfrog-cli.conf.v6").write_text(json.dumps({"servers": servers, "version": "6", "enc": enc}))


def server(sid, url, token, default=False, **extra):
    return {"url": url, "accessToken": token, "serverId": sid, "isDefault": default, **extra}


@pytest.fixture
def env(tmp_path):
    return {"JFROG_CLI_HOME_DIR": str(tmp_path / "jfrog")}


def test_default_server_is_used_without_flags(env, tmp_path):
    write_config(tmp_path / "jfrog", [server("a", "https://a.example/", "tok-a-12345"),
                                      server("b", "https://b.example/", "tok-b-12345", default=True, user="bob")])
    details = resolve_server(ConnectionFlags(), env)
    assert (details.url, details.access_token, details.user, details.server_id) == (
        "https://b.example/", "tok-b-12345", "bob", "b")


def test_server_id_flag_wins_over_env(env, tmp_path):
    write_config(tmp_path / "jfrog", [server("a", "https://a.example", "tok-a-12345", default=True),
                                      server("b", "https://b.example", "tok-b-12345")])
    env["JFROG_CLI_SERVER_ID"] = "a"
    assert resolve_server(ConnectionFlags(server_id="b"), env).server_id == "b"
    assert resolve_server(ConnectionFlags(), env).server_id == "a"


def test_flags_are_used_exclusively(env, tmp_path):
    write_config(tmp_path / "jfrog", [server("a", "https://a.example", "tok-a-12345", default=True, user="al")])
    details = resolve_server(ConnectionFlags(url="https://flags.example", server_id="a"), env)
    assert (details.url, details.access_token, details.user, details.source) == ("https://flags.example", "", "", "flags")


def test_unknown_server_id_is_an_error(env, tmp_path):
    write_config(tmp_path / "jfrog", [server("a", "https://a.example", "tok-a-12345", default=True)])
    with pytest.raises(JFrogConfigError) as err:
        resolve_server(ConnectionFlags(server_id="nope"), env)
    assert str(err.value) == "Server ID 'nope' does not exist."


def test_no_config_gives_empty_details(env):
    assert resolve_server(ConnectionFlags(), env).url == ""


def test_token_derived_from_password_is_excluded(env, tmp_path):
    write_config(tmp_path / "jfrog", [server("a", "https://a.example", "tok-a-12345", default=True,
                                             user="u", password="p", tokenRefreshInterval=60)])
    assert resolve_server(ConnectionFlags(), env).access_token == ""


def test_encrypted_config_is_decrypted_with_env_key(env, tmp_path):
    write_config(tmp_path / "jfrog", [server("a", "https://a.example", encrypt_secret("tok-secret-1", KEY), True)],
                 enc=True)
    env["JFROG_CLI_ENCRYPTION_KEY"] = KEY.decode()
    assert resolve_server(ConnectionFlags(), env).access_token == "tok-secret-1"


def test_encrypted_config_key_from_key_file(env, tmp_path):
    write_config(tmp_path / "jfrog", [server("a", "https://a.example", encrypt_secret("tok-secret-2", KEY), True)],
                 enc=True)
    key_file = tmp_path / "master.key"
    key_file.write_text(KEY.decode() + "\n")
    env["JFROG_CLI_ENCRYPTION_KEY"] = str(key_file)
    assert resolve_server(ConnectionFlags(), env).access_token == "tok-secret-2"


def test_encrypted_config_key_from_security_yaml(env, tmp_path):
    home = tmp_path / "jfrog"
    write_config(home, [server("a", "https://a.example", encrypt_secret("tok-secret-3", KEY), True)], enc=True)
    (home / "security").mkdir()
    (home / "security" / "security.yaml").write_text(f"version: 1\nmasterKey: {KEY.decode()}\n")
    assert resolve_server(ConnectionFlags(), env).access_token == "tok-secret-3"


def test_encrypted_config_without_key_names_the_variable(env, tmp_path):
    ciphertext = encrypt_secret("tok-secret-4", KEY)
    write_config(tmp_path / "jfrog", [server("a", "https://a.example", ciphertext, True)], enc=True)
    with pytest.raises(JFrogConfigError) as err:
        resolve_server(ConnectionFlags(), env)
    assert "JFROG_CLI_ENCRYPTION_KEY" in str(err.value) and "encrypted" in str(err.value)
    assert ciphertext not in str(err.value)


def test_encrypted_config_with_wrong_key_is_a_clear_error(env, tmp_path):
    write_config(tmp_path / "jfrog", [server("a", "https://a.example", encrypt_secret("tok-secret-5", KEY), True)],
                 enc=True)
    env["JFROG_CLI_ENCRYPTION_KEY"] = "x" * 32
    with pytest.raises(JFrogConfigError) as err:
        resolve_server(ConnectionFlags(), env)
    assert "wrong master key" in str(err.value) and "JFROG_CLI_ENCRYPTION_KEY" in str(err.value)


def test_encrypted_config_with_short_key(env, tmp_path):
    write_config(tmp_path / "jfrog", [server("a", "https://a.example", encrypt_secret("tok-secret-6", KEY), True)],
                 enc=True)
    env["JFROG_CLI_ENCRYPTION_KEY"] = "short"
    with pytest.raises(JFrogConfigError) as err:
        resolve_server(ConnectionFlags(), env)
    assert "exactly 32" in str(err.value)


def test_broken_json_config_is_a_clear_error(env, tmp_path):
    home = tmp_path / "jfrog"
    home.mkdir()
    (home / "jfrog-cli.conf.v6").write_text("{not json")
    with pytest.raises(JFrogConfigError) as err:
        resolve_server(ConnectionFlags(), env)
    assert "not valid JSON" in str(err.value)


def test_default_home_is_dot_jfrog(monkeypatch, tmp_path):
    from rotator.jfrog.servers import jfrog_cli_home

    monkeypatch.setenv("HOME", str(tmp_path))
    assert jfrog_cli_home({}) == tmp_path / ".jfrog"
    assert os.fspath(jfrog_cli_home({"JFROG_CLI_HOME_DIR": "/x"})) == "/x"
