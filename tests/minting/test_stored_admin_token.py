"""``jfrog.access_token_from``: the minting token lives in a store, and a ``strategy: self`` target
rotates that very secret (the product rotating its own admin credential), on every real store."""

from __future__ import annotations

import json
import uuid

from rotator.cli import run
from rotator.config import load_config
from rotator.core.record import SecretRecord

ADMIN_TOKEN = "{username: admin, scope: applied-permissions/admin, expiry: 30d}"


def write_config(path, emulator, store_yaml, credential, targets):
    path.write_text(f"jfrog:\n  url: {emulator.url}\n  {credential}\nbackends:\n  store: {store_yaml}\n"
                    f"targets:\n" + "".join(f"  - {t}\n" for t in targets))
    return path


def read_record(cfg, path) -> SecretRecord:
    config = load_config(cfg)
    try:
        return SecretRecord.loads(config.backends["store"].read(path).text)
    finally:
        config.close()


def mint_credential(emulator, username) -> str:
    """The bearer token of the last POST /tokens that minted a token for ``username``."""
    [*_, last] = [r for r in emulator.requests if r.method == "POST" and r.path == "/access/api/v1/tokens"
                  and isinstance(r.json, dict) and r.json.get("username") == username]
    return last.headers["Authorization"].removeprefix("Bearer ")


def test_the_product_rotates_its_own_admin_token_and_mints_with_the_new_one(
        emulator, cli_env, tmp_path, monkeypatch, capsys, store_yaml):
    emulator.create_user("ci", groups=("deployers",))
    suffix = uuid.uuid4().hex[:6]
    admin_path, ci_path = f"jfrog/admin-{suffix}", f"jfrog/ci-{suffix}"
    admin_target = f"{{name: jfrog-admin, backend: store, path: {admin_path}, token: {ADMIN_TOKEN}"
    # Bootstrap once with another credential: the admin secret then holds a record of this rotator.
    monkeypatch.setenv("JFROG_ADMIN_TOKEN", emulator.admin_token)
    bootstrap = write_config(tmp_path / "bootstrap.yaml", emulator, store_yaml,
                             "access_token_env: JFROG_ADMIN_TOKEN", [admin_target + "}"])
    assert run(["rotate", "-c", str(bootstrap), "jfrog-admin"]) == 0, capsys.readouterr().out
    monkeypatch.delenv("JFROG_ADMIN_TOKEN")
    cfg = write_config(tmp_path / "rotator.yaml", emulator, store_yaml,
                       f"access_token_from: {{backend: store, path: {admin_path}}}",
                       [admin_target + ", strategy: self, overlap: 0s}",
                        f"{{name: ci, backend: store, path: {ci_path}, "
                        "token: {username: ci, groups: [deployers], expiry: 7d}, overlap: 1h}"])
    admins = [read_record(cfg, admin_path)]
    for generation in (2, 3):
        assert run(["rotate", "-c", str(cfg), "--all"]) == 0, capsys.readouterr().out
        admin, ci = read_record(cfg, admin_path), read_record(cfg, ci_path)
        assert admin.generation == generation and admin.target == "jfrog-admin"
        assert mint_credential(emulator, "ci") == admin.access_token, "ci was minted with the new admin token"
        assert emulator.authenticates(admin.access_token) and emulator.authenticates(ci.access_token)
        assert not emulator.authenticates(admins[-1].access_token), "overlap 0s: the old admin token is revoked"
        # listed until the next rotation's write drops it (stores with versions write one per rotation)
        assert {r.token_id for r in admin.retired} <= {admins[-1].token_id}
        admins.append(admin)
    ci = read_record(cfg, ci_path)
    assert ci.generation == 2 and emulator.is_token_active(ci.retired[0].token_id), "ci keeps its 1h overlap"
    out = capsys.readouterr().out
    for record in admins:
        assert record.access_token not in out


def test_a_stored_admin_secret_may_hold_json_with_an_access_token(emulator, cli_env, tmp_path, capsys, store_yaml):
    emulator.create_user("ci")
    suffix = uuid.uuid4().hex[:6]
    cfg = write_config(tmp_path / "rotator.yaml", emulator, store_yaml,
                       f"access_token_from: {{backend: store, path: jfrog/admin-{suffix}}}",
                       [f"{{name: ci, backend: store, path: jfrog/ci-{suffix}, token: {{username: ci, expiry: 1d}}}}"])
    config = load_config(cfg)
    config.backends["store"].write(f"jfrog/admin-{suffix}", json.dumps({"access_token": emulator.admin_token,
                                                                        "note": "ops"}),
                                   expected_version=None, metadata={}, rotation_id=str(uuid.uuid4()))
    config.close()
    assert run(["rotate", "-c", str(cfg), "ci"]) == 0, capsys.readouterr().out
    assert mint_credential(emulator, "ci") == emulator.admin_token and emulator.mint_count == 1


def test_an_empty_admin_secret_fails_the_mint_and_writes_nothing(emulator, cli_env, tmp_path, capsys, store_yaml):
    emulator.create_user("ci")
    suffix = uuid.uuid4().hex[:6]
    cfg = write_config(tmp_path / "rotator.yaml", emulator, store_yaml,
                       f"access_token_from: {{backend: store, path: jfrog/admin-{suffix}}}",
                       [f"{{name: ci, backend: store, path: jfrog/ci-{suffix}, token: {{username: ci, expiry: 1d}}}}"])
    assert run(["rotate", "-c", str(cfg), "ci"]) == 1
    assert f"ci: mint: store:jfrog/admin-{suffix} holds no admin token" in capsys.readouterr().out
    assert emulator.mint_count == 0
    config = load_config(cfg)
    assert config.backends["store"].read(f"jfrog/ci-{suffix}").text is None
    config.close()


def test_check_config_online_reads_the_stored_token_and_names_its_user(emulator, cli_env, tmp_path, capsys):
    (tmp_path / "secrets").mkdir(mode=0o700)
    (tmp_path / "secrets" / "admin.json").write_text(json.dumps({"access_token": emulator.admin_token}))
    cfg = write_config(tmp_path / "rotator.yaml", emulator, "{type: file, directory: ./secrets}",
                       "access_token_from: {backend: store, path: admin}",
                       ["{name: ci, backend: store, token: {username: ci, expiry: 1d}}"])
    assert run(["check-config", "-c", str(cfg), "--online"]) == 0
    out = capsys.readouterr().out
    assert "jfrog token: admin token from store:admin works: JFrog user 'admin' (token id " in out
    assert emulator.admin_token not in out
