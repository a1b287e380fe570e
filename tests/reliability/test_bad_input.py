"""Bad input (docs/reliability.md): configs, command lines, stored values in every store, Lambda
events, requests to the operations endpoint and the HTTP trigger, and JFrog answering garbage.

Every case checks that the input is refused the documented way (exit 2, or a 4xx, or for a remote
answer an error naming the call) with a message naming the problem, that no traceback is shown,
that no store changed (a digest of everything the store holds, before and after) and that nothing
was minted (``emulator.mint_count``). Hypothesis draws the inputs, seeded (``derandomize``) and
bounded; the unmarked cases run few examples, the ``slow`` ones many.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import uuid

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from rotator import aws_lambda
from rotator.aws_lambda import RotationFailed, RotationSetupError
from rotator.core.record import SecretRecord
from rotator.jfrog import AccessClient
from tests.aws_lambda.conftest import harness, lambda_function  # noqa: F401 - the Lambda's fixtures
from tests.fixtures.daemon import ROOT, wait_until, write_config
from tests.fixtures.stores import STORE_NAME, STORES, write_raw
from tests.reliability import bad_input_strategies as bad
from tests.reliability.bad_input_env import assert_refused, cli, raw_http, seeded, snapshot
from tests.reliability.harness import check_config

SUITE = "bad-input"

FEW, MANY = 20, 400


def examples(fast: int, full: int):
    """Parametrize ``n``: a fast seeded subset unmarked, the full count marked slow."""
    return pytest.mark.parametrize("n", [pytest.param(fast, id="fast"),
                                         pytest.param(full, id="full", marks=pytest.mark.slow)])


class Env:
    """A good config with one file-store target holding a working token; ``run`` is the CLI with its
    output kept for invariant 4; ``finish`` checks invariants 1-4 after the case."""

    def __init__(self, emulator, tmp_path, make_store, capsys, ledger, tally) -> None:
        self.emulator, self.dir, self.capsys, self.ledger, self.tally = emulator, tmp_path, capsys, ledger, tally
        self.good = bad.base_config(emulator.url, str(tmp_path / "secrets"))
        self.path = tmp_path / "good.json"
        self.path.write_text(json.dumps(self.good))
        assert self.run("rotate", "-c", str(self.path), "--all").code == 0
        self.store = make_store("file", directory=str(tmp_path / "secrets"))

    def run(self, *argv: str):
        return cli(self.capsys, *argv, ledger=self.ledger)

    def digest(self) -> str:
        return snapshot(self.store, "jfrog/ci")

    def finish(self) -> None:
        check_config(self.path, self.emulator, self.tally, swept=False)
        self.ledger.emulator(self.emulator)
        self.ledger.check(self.tally)


@pytest.fixture
def env(emulator, monkeypatch, cli_env, tmp_path, make_store, capsys, ledger, tally):
    monkeypatch.setenv("JFROG_ADMIN_TOKEN", emulator.admin_token)
    emulator.create_user("ci")
    return Env(emulator, tmp_path, make_store, capsys, ledger, tally)


# -- configs ----------------------------------------------------------------------------------
@examples(FEW * 2, MANY * 2)
def test_a_bad_value_anywhere_in_the_config_is_refused_naming_it(n, tally, env, emulator, capsys):
    before, minted, seen = env.digest(), emulator.mint_count, 0

    @seeded(n)
    @given(bad.config_mutations(), st.booleans())
    def case(mutation, as_yaml):
        nonlocal seen
        seen += 1
        where, value, words = mutation
        data = bad.mutate(env.good, where, value)
        config = env.dir / "bad.yaml"
        config.write_text(yaml.safe_dump(data) if as_yaml else json.dumps(data))
        for command in (["check-config"], ["rotate", "--all"]):
            assert_refused(env.run(command[0], "-c", str(config), *command[1:]), *words)

    case()
    assert env.digest() == before and emulator.mint_count == minted
    env.finish()
    tally.add(examples=seen, checks=seen * 2, faults=seen)


@examples(FEW, MANY)
def test_a_config_bad_as_a_whole_is_refused(n, tally, env, emulator, capsys):
    """Alias bombs, deep nesting (YAML and JSON), duplicate keys, complex keys, an alias inside itself."""
    good = yaml.safe_dump(env.good, default_flow_style=None, width=10_000)
    assert "expiry: 7d" in good
    before, minted, seen = env.digest(), emulator.mint_count, 0

    @seeded(n)
    @given(bad.bad_yaml_texts(good))
    def case(drawn):
        nonlocal seen
        seen += 1
        text, words = drawn
        config = env.dir / "bad.yaml"
        config.write_text(text)
        assert_refused(env.run("rotate", "-c", str(config), "--all"), *words)

    case()
    assert env.digest() == before and emulator.mint_count == minted
    env.finish()
    tally.add(examples=seen, checks=seen, faults=seen)


BOMB = textwrap.dedent("""\
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    from rotator.cli import run
    sys.exit(run(["check-config", "-c", sys.argv[1]]))
    """)


def test_a_yaml_alias_bomb_is_refused_within_bounded_memory(tally, env, tmp_path):
    """Regression: ten levels of ten aliases once expanded to 10^10 values in an error message
    (14 GB). Run in a child limited to 1 GB: it must answer exit 2, quickly, naming the aliases."""
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    good = yaml.safe_dump(env.good, default_flow_style=None, width=10_000)
    config = tmp_path / "bomb.yaml"
    config.write_text("x-anchors:\n" + "\n".join("  " + line for line in lines) + "\n"
                      + good.replace("expiry: 7d", "expiry: *a9"))
    done = subprocess.run([sys.executable, "-c", BOMB, str(config)], capture_output=True, text=True, timeout=60,
                          cwd=str(ROOT))
    assert done.returncode == 2, done.stderr[-800:]
    assert "aliases" in done.stderr and "more than 2,000,000 values" in done.stderr, done.stderr[-800:]
    assert "Traceback" not in done.stderr and len(done.stderr) < 1000
    env.finish()
    tally.add(checks=1, faults=1)


def test_a_config_file_that_is_not_a_config_is_refused_in_bounded_memory(tally, env, capsys):
    """Regression: '-c' naming a binary file ended in 'unexpected error: UnicodeDecodeError' (exit 1), and one
    naming a huge file (a log, /dev/zero) was read whole into memory."""
    binary = env.dir / "binary.yaml"
    binary.write_bytes(b"jfrog: {url: \xff\xfe\x00\x81}\n")
    huge = env.dir / "huge.yaml"
    with huge.open("wb") as file:
        file.truncate(65 << 20)  # sparse: 65 MiB of zeros that take no disk
    assert_refused(env.run("check-config", "-c", str(binary)), "not UTF-8 text")
    assert_refused(env.run("rotate", "-c", str(huge), "--all"), "larger than 64 MiB")
    env.finish()
    tally.add(checks=2, faults=2)


def test_durations_take_ascii_digits_and_at_most_100_years(tally, env, capsys):
    """Regression: '٣d' (an Arabic-Indic three) loaded as 3 days, and 10^23 weeks loaded, then
    overflowed the first date computed from it."""
    for value, words in (("٣d", ["expiry", "must be a duration"]), ("99999999999999999999999w", ["at most 100 years"]),
                         (10 ** 12, ["at most 100 years"])):
        config = env.dir / "bad.json"
        config.write_text(json.dumps(bad.mutate(env.good, ("targets", 0, "token", "expiry"), value)))
        assert_refused(env.run("check-config", "-c", str(config)), *words)
    env.finish()
    tally.add(checks=3, faults=3)


def test_a_json_config_nested_deeper_than_the_recursion_limit_is_exit_2(tally, env, capsys):
    """Regression: a JSON config nested 100,000 levels deep ended in 'unexpected error: RecursionError' (exit 1)."""
    config = env.dir / "deep.json"
    config.write_text('{"jfrog": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert_refused(env.run("check-config", "-c", str(config)), "nested more than 64 levels")
    env.finish()
    tally.add(checks=1, faults=1)


def test_a_list_as_a_yaml_key_is_exit_2(tally, env, capsys):
    """Regression: '? [a, b]' as a key ended in 'unexpected error: TypeError: unhashable type' (exit 1)."""
    config = env.dir / "key.yaml"
    config.write_text("? [a, b]\n: 1\n" + yaml.safe_dump(env.good))
    assert_refused(env.run("check-config", "-c", str(config)), "line 1", "must be plain text")
    env.finish()
    tally.add(checks=1, faults=1)


@pytest.mark.parametrize("path, words", sorted(bad.BAD_PATHS.items()), ids=repr)
def test_a_target_path_the_store_cannot_hold_is_refused_at_load(tally, env, emulator, capsys, path, words):
    """Regression: '../x', '/abs', '' and 'a\\0b' passed check-config; the file store refused them only at
    the first rotation, as a store failure (exit 1)."""
    before, minted = env.digest(), emulator.mint_count
    config = env.dir / "bad.json"
    config.write_text(json.dumps(bad.mutate(env.good, ("targets", 0, "path"), path)))
    for command in (["check-config"], ["rotate", "--all"]):
        assert_refused(env.run(command[0], "-c", str(config), *command[1:]), "targets[0].path", words)
    assert env.digest() == before and emulator.mint_count == minted
    env.finish()
    tally.add(checks=2, faults=2)


@pytest.mark.parametrize("where, value, words", [
    (("daemon", "listen"), "127.0.0.1:99999", ["daemon.listen", "not a TCP port"]),
    (("daemon", "sweep_interval"), 0, ["daemon.sweep_interval", "more than 0s"]),
    (("jfrog", "timeout"), "0s", ["jfrog.timeout", "more than 0s"]),
    (("targets", 0, "schedule"), {"before_expiry": "8d"}, ["before_expiry", "not shorter than the token's lifetime"]),
], ids=["listen-port", "sweep-0", "timeout-0", "before-expiry-past-lifetime"])
def test_settings_that_load_but_cannot_work_are_refused(tally, env, capsys, where, value, words):
    """Regression: a port above 65535, a sweep every 0 s, a JFrog timeout of 0 s and a before_expiry
    window longer than the token lives (due at every check: a mint storm) all passed check-config."""
    config = env.dir / "bad.json"
    config.write_text(json.dumps(bad.mutate(env.good, where, value)))
    assert_refused(env.run("check-config", "-c", str(config)), *words)
    env.finish()
    tally.add(checks=1, faults=1)


@pytest.mark.parametrize("where, value, words", [
    (("jfrog", "url"), "http://[::1", ["jfrog.url", "not a valid URL"]),
    (("jfrog", "url"), "http://127.0.0.1:99999", ["jfrog.url", "Port out of range"]),
    (("jfrog", "url"), "https://host:abc", ["jfrog.url", "not a valid URL"]),
    (("backends", "store"), {"type": "vault", "url": "http://[::1"}, ["backends.store.url", "not a valid URL"]),
    (("backends", "store"), {"type": "vault", "url": "http://127.0.0.1:8200", "mount": "kv\x00"},
     ["backends.store.mount", "not a valid mount path"]),
    (("backends", "store"), {"type": "aws-secretsmanager", "region": "bad region!"},
     ["backends.store.region", "not an AWS region"]),
    (("backends", "store"), {"type": "aws-secretsmanager", "region": "us-east-1", "endpoint_url": "http://[::1"},
     ["backends.store.endpoint_url", "not a valid URL"]),
    (("backends", "store"), {"type": "file", "directory": "secrets\x00x"}, ["backends.store.directory", "control characters"]),
], ids=["jfrog-ipv6", "jfrog-port", "jfrog-port-text", "vault-ipv6", "vault-mount-nul", "aws-region", "aws-endpoint",
        "file-directory-nul"])
def test_urls_and_store_options_that_fail_at_the_first_call_are_refused_at_load(tally, env, capsys, where, value, words):
    """Regression: 'http://[::1' (jfrog.url, a Vault url, an AWS endpoint_url), an AWS region 'bad region!' and a
    file store directory with a NUL passed check-config and then ended in 'unexpected error: ValueError' (or
    InvalidRegionError), exit 1; a port of 99999 failed only at the first call."""
    config = env.dir / "bad.json"
    config.write_text(json.dumps(bad.mutate(env.good, where, value)))
    for command in (["check-config"], ["rotate", "--all"]):
        assert_refused(env.run(command[0], "-c", str(config), *command[1:]), *words)
    env.finish()
    tally.add(checks=2, faults=1)


def test_tls_verify_false_warns_once_naming_the_setting(tally, env, openbao, monkeypatch, caplog, capsys):
    """Regression: the warnings for ``tls_verify: false`` did not say which setting turned the check off."""
    monkeypatch.setenv("VAULT_TOKEN", openbao.root_token)
    data = bad.mutate(env.good, ("jfrog", "tls_verify"), False)
    data["backends"]["vault"] = {"type": "vault", "url": openbao.addr, "tls_verify": False}
    config = env.dir / "insecure.json"
    config.write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING):
        ran = env.run("rotate", "-c", str(config), "--all")
    assert ran.code == 0, ran.text[-500:]
    warned = [r.getMessage() for r in caplog.records if "verification" in r.getMessage()]
    assert len([m for m in warned if "OFF for" in m]) == 1 and len([m for m in warned if "vault:" in m]) == 1, warned
    assert all("tls_verify: false" in m for m in warned), warned
    env.finish()
    tally.add(checks=2, faults=1)


# -- command lines ----------------------------------------------------------------------------
@examples(FEW * 2, MANY * 2)
def test_a_bad_command_line_is_exit_2_naming_the_flag(n, tally, env, emulator, capsys):
    before, minted, seen = env.digest(), emulator.mint_count, 0

    @seeded(n)
    @given(bad.bad_argv(str(env.path)))
    def case(drawn):
        nonlocal seen
        seen += 1
        argv, words = drawn
        assert_refused(env.run(*argv), *words)

    case()
    assert env.digest() == before and emulator.mint_count == minted
    env.finish()
    tally.add(examples=seen, checks=seen, faults=seen)


@pytest.mark.parametrize("argv, words", [
    (["daemon", "-c", "{config}", "--shutdown-timeout=-5"], ["--shutdown-timeout must be 0 or more"]),
    (["emulator", "--port", "99999"], ["--port", "not a TCP port"]),
    (["emulator", "--port=-1"], ["--port", "not a TCP port"]),
    (["atc", "ci", "--url", "http://[::1", "--access-token", "x" * 24], ["not a valid URL"]),
    (["token", "list", "--url", "http://h:99999", "--access-token", "x" * 24], ["Port out of range"]),
], ids=["shutdown-negative", "emulator-port-high", "emulator-port-negative", "atc-url", "token-list-port"])
def test_flags_that_cannot_work_are_exit_2(tally, env, emulator, argv, words):
    """Regression: 'daemon --shutdown-timeout -5' started a daemon; 'emulator --port 99999' and
    'atc --url http://[::1' ended in 'unexpected error' (exit 1)."""
    minted = emulator.mint_count
    assert_refused(env.run(*[a.format(config=env.path) for a in argv]), *words)
    assert emulator.mint_count == minted
    env.finish()
    tally.add(checks=1, faults=1)


# -- stored values ----------------------------------------------------------------------------
def _config_for(kind, request, tmp_path, monkeypatch, emulator, path) -> str:
    from tests.fixtures.plugin import _store_options

    config = tmp_path / f"store-{uuid.uuid4().hex[:6]}.json"
    config.write_text(json.dumps({
        "jfrog": {"url": emulator.url, "access_token_env": "JFROG_ADMIN_TOKEN"},
        "backends": {STORE_NAME: _store_options(kind, request, tmp_path, monkeypatch)},
        "targets": [{"name": "ci", "backend": STORE_NAME, "path": path, "token": {"username": "ci", "expiry": "7d"}}]}))
    return str(config)


def _dead_token(emulator) -> tuple[str, str]:
    answer = emulator.create_token("ci", expires_in=14400, force_revocable=True)
    with AccessClient(emulator.url, access_token=emulator.admin_token) as admin:
        assert admin.revoke_token(answer["token_id"])
    return answer["access_token"], answer["token_id"]


STORED = {
    "broken-json": ('{"access_token": "abc", ', ["not valid JSON", "left untouched"]),
    "json-list": ("[1, 2, 3]", ["JSON list", "left untouched"]),
    "wrong-types": ('{"access_token": 5, "token_id": ["x"], "rotator": "x"}', ["access_token", "left untouched"]),
    "other-target": (None, ["belongs to target 'other'"]),
    "dead-token": (None, ["does not work", "left untouched"]),
    "binary": ("\x00\x01\x7f\xff\xfe garbage \x1b[2J", ["not a usable record", "left untouched"]),
}


def _stored_value(what: str, kind: str, emulator) -> str:
    text = STORED[what][0]
    if what == "other-target":
        token, token_id = _dead_token(emulator)
        return json.dumps({"access_token": token, "token_id": token_id,
                           "rotator": {"schema": 1, "target": "other", "generation": 3}})
    if what == "dead-token":  # a value someone else wrote (no token_id: not our record) with a revoked token
        token, _ = _dead_token(emulator)
        return json.dumps({"access_token": token, "note": "pasted by hand"})
    if kind.startswith("vault") and what in ("broken-json", "json-list", "binary"):
        return json.dumps({"blob": text})  # Vault holds JSON objects only: the value is an object of junk
    return text


@pytest.mark.parametrize("store_kind", ["file"] + [pytest.param(k, marks=pytest.mark.slow) for k in STORES[1:]])
@pytest.mark.parametrize("what", sorted(STORED))
def test_an_unusable_stored_value_is_exit_2_and_left_untouched(tally, store_kind, make_store, request, tmp_path,
                                                               monkeypatch, emulator, capsys, cli_env, ledger, what):
    """Regression: a stored value that is not a usable record made ``rotate`` and ``sweep`` exit 1 (a
    remote failure) instead of 2 (bad input); ``status`` called another target's record 'ok'."""
    monkeypatch.setenv("JFROG_ADMIN_TOKEN", emulator.admin_token)
    emulator.create_user("ci")
    store = make_store(store_kind)
    path = f"jfrog/ci-{uuid.uuid4().hex[:8]}"
    write_raw(store, path, _stored_value(what, store_kind, emulator))
    config = _config_for(store_kind, request, tmp_path, monkeypatch, emulator, path)
    before, minted = snapshot(store, path), emulator.mint_count
    words = STORED[what][1] if not (store_kind.startswith("vault") and what != "other-target"
                                   and what != "dead-token") else ["left untouched"]
    assert_refused(cli(capsys, "rotate", "-c", config, "--all", ledger=ledger), path, *words)
    assert_refused(cli(capsys, "sweep", "-c", config, "ci", ledger=ledger), path, *words)
    status = cli(capsys, "status", "-c", config, "--format", "json", ledger=ledger)
    assert "Traceback" not in status.text
    assert json.loads(status.out)[0]["state"] != "ok", status.out
    assert snapshot(store, path) == before and emulator.mint_count == minted
    if store_kind.startswith("vault"):
        ledger.secret(request.getfixturevalue("openbao").root_token)
    ledger.emulator(emulator)
    ledger.check(tally)
    tally.add(checks=3, faults=1)


@pytest.mark.parametrize("kind, n", [pytest.param("file", FEW, id="file-fast"),
                                     pytest.param("file", MANY, id="file-full", marks=pytest.mark.slow)]
                         + [pytest.param(k, MANY // 8, id=f"{k}-full", marks=pytest.mark.slow) for k in STORES[1:]])
def test_any_value_without_a_token_is_refused_and_kept(kind, n, tally, make_store, request, tmp_path, monkeypatch,
                                                      emulator, capsys, cli_env, ledger):
    monkeypatch.setenv("JFROG_ADMIN_TOKEN", emulator.admin_token)
    emulator.create_user("ci")
    store = make_store(kind)
    config = None
    seen = 0

    @seeded(n)
    @given(bad.unusable_values())
    def case(value):
        nonlocal seen, config
        seen += 1
        path = f"jfrog/ci-{uuid.uuid4().hex[:8]}"
        if kind.startswith("vault") and not isinstance(_json_or_none(value), dict):
            value = json.dumps({"blob": value})  # Vault holds JSON objects: one holding the junk
        write_raw(store, path, value)
        config = _config_for(kind, request, tmp_path, monkeypatch, emulator, path)
        before, minted = snapshot(store, path), emulator.mint_count
        assert_refused(cli(capsys, "rotate", "-c", config, "--all", ledger=ledger), path, "left untouched")
        assert snapshot(store, path) == before and emulator.mint_count == minted

    case()
    ledger.emulator(emulator)
    ledger.check(tally)
    tally.add(examples=seen, checks=seen, faults=seen)


def _json_or_none(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return None


# -- Lambda events ----------------------------------------------------------------------------
def _lambda_state(h, arn: str) -> tuple:
    return (json.dumps(h.stages(arn), sort_keys=True),
            h.sm.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"])


@examples(FEW, MANY)
def test_a_bad_lambda_event_is_refused_naming_the_field(n, tally, harness, ledger):  # noqa: F811 - the fixture
    arn, _ = harness.seeded_secret()
    token = harness.begin(arn)
    before, minted, seen = _lambda_state(harness, arn), harness.emulator.mint_count, 0
    odd = st.one_of(st.none(), st.integers(), st.lists(st.integers(), max_size=2), st.text(max_size=70),
                    st.sampled_from(["", "\x00", "x" * 5000, "not-a-uuid", "a:b*c", str(uuid.uuid4())]))
    fields = {"SecretId": st.one_of(st.just(arn), odd, st.just(arn + "-nope")),
              "ClientRequestToken": st.one_of(st.just(token), odd),
              "Step": st.one_of(st.sampled_from(aws_lambda.STEPS), odd, st.just("rotateSecret")),
              "RotationToken": odd}

    @seeded(n)
    @given(st.fixed_dictionaries({}, optional=fields).filter(
        lambda e: not (e.get("SecretId") == arn and e.get("ClientRequestToken") == token
                       and e.get("Step") in aws_lambda.STEPS)))
    def case(event):
        nonlocal seen
        seen += 1
        with pytest.raises((RotationSetupError, RotationFailed)) as refused:
            aws_lambda.handler(event, None)
        message = str(refused.value)
        ledger.text("Lambda error", message)
        assert len(message) < 2000 and "Traceback" not in message
        named = [name for name in ("SecretId", "ClientRequestToken", "Step", "RotationToken", "event", "secret",
                                   "version") if name in message]
        assert named, message[:300]

    case()
    assert _lambda_state(harness, arn) == before and harness.emulator.mint_count == minted
    ledger.emulator(harness.emulator)
    ledger.check(tally)
    tally.add(examples=seen, checks=seen, faults=seen)


@pytest.mark.parametrize("event, words", [
    ({"ClientRequestToken": "not-a-uuid"}, ["ClientRequestToken", "32 to 64"]),
    ({"ClientRequestToken": "jfrog-rotator:other:" + "0" * 30 + "*"}, ["ClientRequestToken", "32 to 64"]),
    ({"SecretId": "x" * 3000}, ["SecretId", "at most 2048"]),
    ({"Step": "rotateSecret"}, ["Step", "not one of"]),
    ({"SecretId": "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf"}, ["can't find"]),
], ids=["token-not-a-uuid", "token-with-a-tag", "huge-secret-id", "unknown-step", "no-such-secret"])
def test_lambda_event_fields_are_checked_before_anything_is_read(tally, harness, event, words):  # noqa: F811
    """Regression: a ClientRequestToken of any text (it becomes the rotation id in every minted
    token's description tag, ``jfrog-rotator:<target>:<id>``) and a SecretId of any length were taken."""
    arn, _ = harness.seeded_secret()
    token = harness.begin(arn)
    before, minted = _lambda_state(harness, arn), harness.emulator.mint_count
    with pytest.raises((RotationSetupError, RotationFailed)) as refused:
        aws_lambda.handler({"SecretId": arn, "ClientRequestToken": token, "Step": "createSecret", **event}, None)
    assert all(w in str(refused.value) for w in words), str(refused.value)[:300]
    assert len(str(refused.value)) < 1000
    assert _lambda_state(harness, arn) == before and harness.emulator.mint_count == minted
    tally.add(checks=1, faults=1)


@pytest.mark.parametrize("name, value", [("JFROG_URL", "http://[::1"), ("JFROG_URL", "https://acme.jfrog.io:99999"),
                                         ("SECRETS_MANAGER_ENDPOINT", "http://[fe80::1")])
def test_a_lambda_url_that_cannot_be_parsed_is_a_setup_error(tally, harness, name, value):  # noqa: F811
    """Regression: JFROG_URL or SECRETS_MANAGER_ENDPOINT with an open IPv6 bracket or a port of 99999 was
    taken, and the step then failed with a bare ValueError from deep inside requests or botocore."""
    arn, _ = harness.seeded_secret()
    token = harness.begin(arn)
    before, minted = _lambda_state(harness, arn), harness.emulator.mint_count
    harness.monkeypatch.setenv(name, value)
    with pytest.raises(RotationSetupError, match=f"{name}: .* is not a valid URL"):
        aws_lambda.handler({"SecretId": arn, "ClientRequestToken": token, "Step": "createSecret"}, None)
    assert _lambda_state(harness, arn) == before and harness.emulator.mint_count == minted
    tally.add(checks=1, faults=1)


# -- the operations endpoint and the HTTP trigger ----------------------------------------------
@pytest.fixture
def ops(daemon_env, tmp_path, start_daemon, openbao, monkeypatch, capsys, ledger, tally):
    """A daemon with one file target and one Vault target, both holding a fresh token (not due)."""
    monkeypatch.setenv("VAULT_TOKEN", openbao.root_token)
    vault_path = f"jfrog/alpha-{uuid.uuid4().hex[:6]}"
    config = write_config(tmp_path / "rotator.yaml", daemon_env, f"""\
        - {{name: alpha, backend: vault, path: {vault_path}, token: {{username: alpha, expiry: 7d}}, schedule: {{every: 1h}}}}
        - {{name: beta, backend: local, path: beta, token: {{username: beta, expiry: 7d}}, schedule: {{every: 1h}}}}
        """, backends=f"local: {{type: file, directory: ./secrets}}\nvault: {{type: vault, url: '{openbao.addr}', "
                      f"reconcile_interval: 1h}}")
    assert cli(capsys, "rotate", "-c", str(config), "--all", ledger=ledger).code == 0
    daemon = start_daemon(config)
    wait_until(lambda: raw_http(daemon.ops.url, b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n").status == 200,
               what="the daemon ready")
    from rotator.config import load_config
    loaded = load_config(config)
    stores = {name: loaded.backends[name] for name in ("local", "vault")}
    digest = lambda: (snapshot(stores["local"], "beta"), snapshot(stores["vault"], vault_path))  # noqa: E731

    def finish() -> None:
        for route in ("/status", "/metrics"):
            ledger.text(route, raw_http(daemon.ops.url, _request("GET", route)).body)
        ledger.secret(openbao.root_token)
        ledger.emulator(daemon_env)
        ledger.check(tally)
        check_config(loaded, daemon_env, tally, swept=False)

    yield type("Ops", (), {"url": daemon.ops.url, "digest": staticmethod(digest), "emulator": daemon_env,
                           "finish": staticmethod(finish)})
    loaded.close()


def _request(method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"] + [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


OPS_CASES = [
    ("POST", "/v1/trigger/alpha", {"Content-Length": "abc"}, b"", 400, "Content-Length"),
    ("POST", "/v1/trigger/alpha", {"Content-Length": "-5"}, b"", 400, "Content-Length"),
    ("GET", "/healthz", {"Content-Length": "1e3"}, b"", 400, "Content-Length"),
    ("POST", "/v1/trigger/alpha", {"Content-Length": "99999999999"}, b"abc", 413, "larger than"),
    ("POST", "/v1/trigger/alpha", {"Content-Length": str(2 << 20)}, b"x" * (2 << 20), 413, "larger than"),
    ("POST", "/v1/trigger/alpha", {"Transfer-Encoding": "chunked"}, b"5\r\nhello\r\n0\r\n\r\n", 411, "Content-Length"),
    ("PATCH", "/status", {}, b"", 405, "not allowed"),
    ("FOO", "/status", {}, b"", 405, "not allowed"),
    ("OPTIONS", "/v1/trigger/alpha", {}, b"", 405, "not allowed"),
    ("DELETE", "/nope", {}, b"", 404, "no such endpoint"),
    ("GET", "/../status", {}, b"", 404, "no such endpoint"),
    ("GET", "/%2e%2e/status", {}, b"", 404, "no such endpoint"),
    ("POST", "/v1/trigger/../../status", {"Content-Length": "0"}, b"", 404, "no target"),
    ("POST", "/v1/trigger/%2e%2e/alpha", {"Content-Length": "0"}, b"", 404, "no target"),
    ("POST", "/v1/trigger/alpha", {"Content-Length": "0"}, b"", 401, "X-Vault-Token"),
    ("POST", "/v1/trigger/alpha", {"X-Vault-Token": "\x01\x02abcdefgh", "Content-Length": "0"}, b"", 401, "not a Vault token"),
    ("POST", "/v1/trigger/alpha", {"X-Vault-Token": "a b c d e f g h", "Content-Length": "0"}, b"", 401, "not a Vault token"),
    ("POST", "/v1/trigger/alpha", {"X-Vault-Token": "x" * 6000, "Content-Length": "0"}, b"", 401, "not a Vault token"),
    ("POST", "/v1/trigger/alpha", {"X-Vault-Token": "hvs.garbage-token-of-nobody", "Content-Length": "0"}, b"", 403,
     "may not request"),
    ("POST", "/v1/trigger/beta", {"X-Vault-Token": "hvs.whatever", "Content-Length": "0"}, b"", 409, "not in a Vault"),
]


def test_bad_requests_to_the_operations_endpoint_get_a_4xx(tally, ops):
    """Regression: a non-numeric or negative Content-Length killed the handler (no answer, a traceback
    on stderr); a huge one held the handler reading; PATCH/HEAD/OPTIONS got http.server's 501 page;
    a Vault token with control characters was answered 502."""
    before, minted = ops.digest(), ops.emulator.mint_count
    for method, path, headers, body, status, words in OPS_CASES:
        answer = raw_http(ops.url, _request(method, path, headers, body))
        assert answer.status == status, f"{method} {path} {sorted(headers)}: {answer.status} {answer.body[:200]!r}"
        assert words in answer.json()["error"], answer.body[:300]
        assert raw_http(ops.url, _request("GET", "/healthz")).status == 200  # still serving
    head = raw_http(ops.url, _request("HEAD", "/healthz"))
    assert head.status == 405 and head.body == b""
    assert ops.digest() == before and ops.emulator.mint_count == minted
    ops.finish()
    tally.add(checks=len(OPS_CASES) + 1, faults=len(OPS_CASES) + 1)


@pytest.mark.parametrize("body", [b"[" * 60_000, b'{"reason": ' + b"[" * 30_000 + b"]" * 30_000 + b"}",
                                  b'{"reason": "' + b"r" * 60_000 + b'"}', b"\xff\xfe not json"],
                         ids=["deep-array", "deep-reason", "long-reason", "binary"])
def test_a_trigger_with_an_odd_body_is_accepted_without_a_reason(tally, ops, openbao, body):
    """Regression: a trigger body nested past Python's recursion limit answered 500 (and logged a traceback)
    instead of being taken as no reason."""
    answer = raw_http(ops.url, _request("POST", "/v1/trigger/alpha", {"X-Vault-Token": openbao.root_token,
                                                                      "Content-Length": str(len(body))}, body))
    assert answer.status == 202, answer.body[:300]
    assert answer.json()["accepted"] is True
    ops.finish()
    tally.add(checks=1, faults=1)


_methods = st.one_of(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE"]),
                     st.from_regex(r"[A-Z]{1,10}", fullmatch=True))
_segments = st.lists(st.one_of(st.sampled_from(["..", ".", "%2e%2e", "%2E%2E", "", "status", "v1", "trigger", "alpha",
                                                "healthz", "%00", "%2f", "~"]),
                               st.from_regex(r"[A-Za-z0-9._~%-]{1,12}", fullmatch=True)), min_size=1, max_size=6)
_lengths = st.one_of(st.none(), st.sampled_from(["abc", "-1", "1.5", "0x10", " ", "99999999999999999999", "+3"]),
                     st.integers(min_value=-10 ** 6, max_value=-1).map(str))


@examples(FEW * 2, MANY * 2)
def test_any_odd_request_is_answered_4xx_and_changes_nothing(n, tally, ops):
    before, minted, seen = ops.digest(), ops.emulator.mint_count, 0
    good = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/status")}

    @seeded(n)
    @given(_methods, _segments, _lengths, st.binary(max_size=64), st.text(max_size=40))
    def case(method, segments, length, body, token):
        nonlocal seen
        path = "/" + "/".join(segments)
        if (method, path) in good and length is None:
            return
        seen += 1
        headers = {"Content-Length": length} if length is not None else {"Content-Length": str(len(body))}
        if token:
            headers["X-Vault-Token"] = token.encode("utf-8", "replace").decode("latin-1").replace("\r", "").replace(
                "\n", "")
        answer = raw_http(ops.url, _request(method, path, headers, body))
        assert answer.status is not None and 400 <= answer.status < 500, \
            f"{method} {path!r} CL={length!r}: {answer.status} {answer.head[:100]!r}"

    case()
    assert raw_http(ops.url, _request("GET", "/healthz")).status == 200
    assert ops.digest() == before and ops.emulator.mint_count == minted
    ops.finish()
    tally.add(examples=seen, checks=seen, faults=seen)


# -- JFrog answering garbage -------------------------------------------------------------------
def _stored(env) -> tuple[str, str]:
    record = SecretRecord.loads((env.dir / "secrets" / "jfrog" / "ci.json").read_text())
    return record.token_id, record.access_token


@examples(FEW, MANY // 2)
def test_garbage_from_jfrog_on_create_fails_naming_the_call(n, tally, env, emulator, capsys):
    """Regression: an answer of null, [], {} or a token without an id went on to VERIFY with an empty
    token id (five tries); an expires_in of 'soon' ended in 'unexpected error: ValueError'; a body of
    megabytes was printed whole."""
    kept, minted, seen = _stored(env), emulator.mint_count, 0

    @seeded(n)
    @given(bad.garbage_bodies)
    def case(body):
        nonlocal seen
        seen += 1
        emulator.inject_fault("/access/api/v1/tokens", method="POST", status=200, body=body, count=1)
        ran = env.run("rotate", "-c", str(env.path), "--all")
        emulator.clear_faults()
        assert_refused(ran, "mint", "POST /access/api/v1/tokens", code=1, limit=6000)
        assert "attempt" not in ran.text, ran.text[-300:]  # refused at MINT, not retried at VERIFY
        assert _stored(env) == kept and emulator.mint_count == minted

    case()
    env.finish()
    tally.add(examples=seen, checks=seen, faults=seen)


@examples(6, MANY // 3)
def test_garbage_from_jfrog_on_verify_discards_the_new_token(n, tally, env, emulator, capsys):
    """Regression: a /tokens/me answer naming no token (null, [], {}, {"errors": "x"}) passed VERIFY."""
    kept, seen = _stored(env), 0

    @seeded(n)
    @given(bad.garbage_bodies.filter(lambda b: '"token_id"' not in b))
    def case(body):
        nonlocal seen
        seen += 1
        emulator.inject_fault("/access/api/v1/tokens/me", method="GET", status=200, body=body, count=1)
        ran = env.run("rotate", "-c", str(env.path), "--all")
        emulator.clear_faults()
        assert_refused(ran, "verify", code=1, limit=6000)
        assert _stored(env) == kept
        live = emulator.live_token_ids(description_prefix="jfrog-rotator:ci:")
        assert live == {kept[0]}, f"{len(live)} live tokens: the unverified one was not revoked"

    case()
    env.finish()
    tally.add(examples=seen, checks=seen, faults=seen)


@examples(6, MANY // 3)
def test_garbage_from_jfrog_on_list_fails_the_sweep_revoking_nothing(n, tally, env, emulator, capsys):
    """Regression: a token list whose entries are not objects ended in 'unexpected error: AttributeError';
    one that is no list at all ({"tokens": 5}) was taken as 'no tokens'."""
    kept, seen = _stored(env), 0
    live = emulator.live_token_ids(description_prefix="jfrog-rotator:")

    @seeded(n)
    @given(bad.garbage_bodies.filter(lambda b: '"tokens": [' not in b))
    def case(body):
        nonlocal seen
        seen += 1
        emulator.inject_fault("/access/api/v1/tokens", method="GET", status=200, body=body, count=1)
        ran = env.run("sweep", "-c", str(env.path))
        emulator.clear_faults()
        assert_refused(ran, "list tokens", code=1, limit=6000)
        assert _stored(env) == kept and emulator.live_token_ids(description_prefix="jfrog-rotator:") == live

    case()
    env.finish()
    tally.add(examples=seen, checks=seen, faults=seen)


@pytest.mark.parametrize("method, command", [("POST", "rotate"), ("GET", "sweep")])
def test_an_answer_nested_past_the_recursion_limit_is_not_json(tally, env, emulator, method, command):
    """Regression: a 200 answer '[[[[...' (100,000 deep) ended in 'unexpected error: RecursionError'."""
    kept = _stored(env)
    emulator.inject_fault("/access/api/v1/tokens", method=method, status=200, body="[" * 100_000)
    ran = env.run(command, "-c", str(env.path), *(["--all"] if command == "rotate" else []))
    assert_refused(ran, "answer is not JSON", code=1, limit=6000)
    assert _stored(env) == kept
    env.finish()
    tally.add(checks=1, faults=1)


def test_a_list_of_non_objects_from_jfrog_is_a_named_error(tally, env, emulator, capsys):
    emulator.inject_fault("/access/api/v1/tokens", method="GET", status=200, body='{"tokens": [5, "x", null]}')
    assert_refused(env.run("sweep", "-c", str(env.path)), "list tokens", "not a token list", code=1)
    env.finish()
    tally.add(checks=1, faults=1)


