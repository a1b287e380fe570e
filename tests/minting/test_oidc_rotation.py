"""``jfrog.oidc``: rotations mint with a JFrog token exchanged for an OIDC ID token, against the
emulator over real HTTP and the file store."""

from __future__ import annotations

import logging
import uuid

from rotator.cli import run
from rotator.config import load_config
from rotator.config.wiring import build_engine
from rotator.core.record import SecretRecord
from tests.minting.conftest import CI_TARGET

TOKENS = "/access/api/v1/tokens"


def stored(setup, name="ci") -> SecretRecord:
    return SecretRecord.loads((setup.tmp_path / "secrets" / f"{name}.json").read_text())


def minting_credentials(setup) -> list[str]:
    """The bearer tokens the rotator minted with (POST /tokens), oldest first."""
    return [r.headers["Authorization"].removeprefix("Bearer ") for r in setup.emulator.requests
            if r.method == "POST" and r.path == TOKENS]


def test_a_rotation_mints_with_the_exchanged_token(make_oidc, capsys):
    setup = make_oidc()
    cfg = setup.config(CI_TARGET)
    assert run(["rotate", "-c", str(cfg), "ci"]) == 0, capsys.readouterr().err
    assert setup.emulator.authenticates(stored(setup).access_token)
    [exchange] = setup.exchanges()
    assert exchange.json["subject_token"] == setup.id_token_file.read_text().strip()
    assert exchange.json["provider_name"] == "k8s" and "identity_mapping_name" not in exchange.json
    [credential] = minting_credentials(setup)
    assert credential != setup.emulator.admin_token and setup.emulator.authenticates(credential)


def test_oidc_minting_on_every_store_and_a_refused_exchange_writes_nothing(make_oidc, capsys, store_yaml):
    setup = make_oidc()
    suffix = uuid.uuid4().hex[:6]
    targets = (f"- {{name: ci, backend: local, path: jfrog/ci-{suffix}, token: {{username: ci, expiry: 7d}}}}\n"
               f"- {{name: bot, backend: local, path: jfrog/bot-{suffix}, token: {{username: ci, expiry: 1d}}}}")
    cfg = setup.config(targets, store=store_yaml)
    assert run(["rotate", "-c", str(cfg), "ci"]) == 0, capsys.readouterr().out
    setup.write_id_token(expires_in=-60)
    assert run(["rotate", "-c", str(cfg), "bot"]) == 1
    assert "bot: mint: OIDC token exchange with provider 'k8s' failed" in capsys.readouterr().out
    assert setup.emulator.mint_count == 1
    config = load_config(cfg)
    try:
        store = config.backends["local"]
        assert setup.emulator.authenticates(SecretRecord.loads(store.read(f"jfrog/ci-{suffix}").text).access_token)
        assert store.read(f"jfrog/bot-{suffix}").text is None
    finally:
        config.close()


def test_identity_mapping_and_project_key_are_sent(make_oidc, capsys):
    setup = make_oidc()
    cfg = setup.config(CI_TARGET, oidc="provider_name: k8s, identity_mapping: rotator, project_key: ops")
    engine = build_engine(load_config(cfg))
    engine.admin.token()
    [exchange] = setup.exchanges()
    assert exchange.json["identity_mapping_name"] == "rotator" and exchange.json["project_key"] == "ops"


def test_an_expired_id_token_fails_the_mint_naming_the_call_and_mints_nothing(make_oidc, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    setup = make_oidc()
    id_token = setup.write_id_token(expires_in=-60)
    cfg = setup.config(CI_TARGET)
    assert run(["--debug", "rotate", "-c", str(cfg), "ci"]) == 1
    captured = capsys.readouterr()
    assert ("ci: FAILED ci: mint: OIDC token exchange with provider 'k8s' failed (POST /access/api/v1/oidc/token): "
            "server response: 401") in captured.out
    assert setup.emulator.mint_count == 0 and minting_credentials(setup) == []
    assert not (setup.tmp_path / "secrets" / "ci.json").exists()
    for text in (captured.out, captured.err, caplog.text):
        assert id_token not in text


def test_an_unknown_provider_fails_the_mint_and_writes_nothing(make_oidc, capsys):
    setup = make_oidc()
    cfg = setup.config(CI_TARGET, oidc="provider_name: gitlab")
    assert run(["rotate", "-c", str(cfg), "ci"]) == 1
    out = capsys.readouterr().out
    assert "mint: OIDC token exchange with provider 'gitlab' failed (POST /access/api/v1/oidc/token)" in out
    assert "OIDC provider 'gitlab' was not found" in out
    assert setup.emulator.mint_count == 0 and not (setup.tmp_path / "secrets").exists()


def test_the_id_token_file_is_read_again_for_each_exchange(make_oidc, capsys):
    setup = make_oidc(expires_in=240)  # under five minutes: every mint needs a fresh exchange
    first = setup.id_token_file.read_text().strip()
    engine = build_engine(load_config(setup.config(CI_TARGET)))
    target = engine_target(setup)
    assert engine.rotate(target).outcome == "rotated"
    second = setup.write_id_token(claims={"jti-hint": "projected again"})  # the kubelet replaced the file
    assert second != first
    assert engine.rotate(target).outcome == "rotated"
    subject_tokens = [r.json["subject_token"] for r in setup.exchanges()]
    assert subject_tokens[0] == first and subject_tokens[-1] == second


def test_a_long_lived_exchanged_token_is_exchanged_once_for_three_rotations(make_oidc):
    setup = make_oidc(expires_in=86400)
    engine = build_engine(load_config(setup.config(CI_TARGET)))
    target = engine_target(setup)
    results = [engine.rotate(target) for _ in range(3)]
    assert [r.outcome for r in results] == ["rotated"] * 3
    assert len(setup.exchanges()) == 1
    assert len(set(minting_credentials(setup))) == 1 and setup.emulator.mint_count == 3


def test_check_config_online_reports_the_user_the_id_token_maps_to(make_oidc, capsys):
    setup = make_oidc()
    cfg = setup.config(CI_TARGET)
    assert run(["check-config", "-c", str(cfg), "--online"]) == 0
    out = capsys.readouterr().out
    assert "jfrog token: OIDC exchange with provider 'k8s' works: JFrog user 'rotator-admin' (token id " in out
    assert len(setup.exchanges()) == 1 and setup.emulator.mint_count == 0
    assert setup.id_token_file.read_text().strip() not in out
    for credential in {r.headers.get("Authorization", "") for r in setup.emulator.requests} - {""}:
        assert credential.removeprefix("Bearer ") not in out


def test_a_missing_id_token_file_is_a_config_error(make_oidc, capsys):
    setup = make_oidc()
    cfg = setup.config(CI_TARGET)
    setup.id_token_file.unlink()
    for argv in (["rotate", "-c", str(cfg), "ci"], ["check-config", "-c", str(cfg)]):
        assert run(argv) == 2
        err = capsys.readouterr().err
        assert f"jfrog.oidc.token: cannot read {setup.id_token_file}" in err, err
    assert setup.exchanges() == []


def test_no_secret_in_output_or_logs(make_oidc, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    setup = make_oidc()
    cfg = setup.config(CI_TARGET)
    for argv in (["rotate", "ci"], ["rotate", "ci", "--format", "json"], ["sweep"], ["check-config", "--online"]):
        run(["--debug", argv[0], "-c", str(cfg), *argv[1:]])
    captured = capsys.readouterr()
    secrets = {setup.id_token_file.read_text().strip(), stored(setup).access_token, *minting_credentials(setup)}
    assert len(secrets) >= 3
    for secret in secrets:
        assert secret not in captured.out and secret not in captured.err and secret not in caplog.text


def engine_target(setup):
    return load_config(setup.tmp_path / "rotator.yaml").target("ci")
