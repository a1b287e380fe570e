"""Hypothesis strategies of the bad-input suite: a bad value at one place of a good config (with
the words its error must hold), YAML texts that are bad as a whole, bad command lines, stored
values that are not usable records, and garbage JFrog answers."""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import strategies as st

MAX_DURATION = 100 * 365 * 86400  # rotator.core.options.MAX_DURATION: the longest duration a key takes

TARGET = "ci"

DURATION_KEYS = [("jfrog", "timeout"), ("daemon", "sweep_interval"), ("daemon", "misfire_grace"),
                 ("targets", 0, "overlap"), ("targets", 0, "orphan_grace"), ("targets", 0, "token", "expiry")]
STRING_KEYS = [("targets", 0, "name"), ("targets", 0, "backend"), ("targets", 0, "strategy"), ("targets", 0, "path"),
               ("jfrog", "url"), ("targets", 0, "token", "username"), ("daemon", "log_format")]
BOOL_KEYS = [("jfrog", "tls_verify"), ("targets", 0, "adopt"), ("targets", 0, "token", "refreshable")]
MAPPINGS = [(), ("jfrog",), ("daemon",), ("targets", 0), ("targets", 0, "token"), ("backends", "store")]


def base_config(jfrog_url: str, directory: str) -> dict[str, Any]:
    """A config that loads: one file store, one target."""
    return {"jfrog": {"url": jfrog_url, "access_token_env": "JFROG_ADMIN_TOKEN"},
            "backends": {"store": {"type": "file", "directory": directory}},
            "daemon": {"sweep_interval": "1h"},
            "targets": [{"name": TARGET, "backend": "store", "path": "jfrog/ci", "overlap": "1h",
                         "token": {"username": "ci", "expiry": "7d"}}]}


def _is_duration(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 0 <= value <= MAX_DURATION
    return isinstance(value, str) and re.fullmatch(r"\s*[0-9]+\s*[smhdw]?\s*", value) is not None \
        and len(value) <= 60


_json_leaf = st.one_of(st.booleans(), st.integers(), st.text(max_size=8))
_json_small = st.recursive(_json_leaf, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                               st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                           max_leaves=6)

bad_durations = st.one_of(
    st.text(max_size=24),
    st.integers(max_value=-1),
    st.integers(min_value=MAX_DURATION + 1, max_value=10 ** 30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["٣d", "³", "７d", "1e3", "1.5h", "1 week", "-1s", "9" * 100_000, "1" * 30 + "w", "0x10"]),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
    st.booleans(),
).filter(lambda v: not _is_duration(v))

wrong_types = st.one_of(st.booleans(), st.lists(_json_leaf, max_size=3), st.dictionaries(st.text(max_size=4), _json_leaf,
                                                                                        max_size=2))
not_bools = st.one_of(st.integers(), st.text(max_size=8), st.lists(st.booleans(), max_size=2))

BAD_PATHS = {"": "empty", "/": "empty", "/abs/x": "start with /", "../x": ". or ..", "a/../b": ". or ..",
             "./a": ". or ..", "a/./b": ". or ..", "a/..": ". or ..", "a\x00b": "control characters",
             "a\nb": "control characters", "p" * 600: "longer than 512"}


@st.composite
def config_mutations(draw) -> tuple[tuple, Any, list[str]]:
    """(where, value, words): put ``value`` at ``where`` (a key path; the last part may be new) and
    the error must hold ``words``."""
    kind = draw(st.sampled_from(["duration", "zero", "string", "bool", "unknown", "huge", "unicode-name", "path"]))
    if kind == "duration":
        where = draw(st.sampled_from(DURATION_KEYS))
        return where, draw(bad_durations), [str(where[-1]), "must"]
    if kind == "zero":
        where = draw(st.sampled_from([("jfrog", "timeout"), ("daemon", "sweep_interval")]))
        return where, draw(st.sampled_from([0, "0s", "0"])), [str(where[-1]), "more than 0s"]
    if kind == "string":
        where = draw(st.sampled_from(STRING_KEYS))
        return where, draw(wrong_types), [str(where[-1]), "must be a string"]
    if kind == "bool":
        where = draw(st.sampled_from(BOOL_KEYS))
        return where, draw(not_bools), [str(where[-1]), "must be true or false"]
    if kind == "unknown":
        place = draw(st.sampled_from(MAPPINGS))
        key = "zz" + draw(st.text(min_size=1, max_size=12))
        return (*place, key), draw(_json_small), ["unknown key"]
    if kind == "huge":
        size = draw(st.integers(min_value=2_000, max_value=400_000))
        where, value, words = draw(st.sampled_from([
            (("targets", 0, "name"), "n" * size, ["name", "is not valid"]),
            (("targets", 0, "token", "description"), "d" * size, ["description", "at most 1024"]),
            (("targets", 0, "strategy"), "s" * size, ["strategy", "must be one of"]),
        ]))
        return where, value, words
    if kind == "unicode-name":
        name = draw(st.text(min_size=1, max_size=12).filter(lambda s: not re.fullmatch(r"[A-Za-z0-9._-]+", s)))
        return ("targets", 0, "name"), name, ["name", "is not valid"]
    value = draw(st.sampled_from(sorted(BAD_PATHS)))
    return ("targets", 0, "path"), value, ["path", BAD_PATHS[value]]


def mutate(config: dict, where: tuple, value: Any) -> dict:
    data = json.loads(json.dumps(config))
    node = data
    for part in where[:-1]:
        node = node[part]
    node[where[-1]] = value
    return data


@st.composite
def bad_yaml_texts(draw, good: str) -> tuple[str, list[str]]:
    """A whole YAML text that must be refused, around the good config ``good``, and the words."""
    kind = draw(st.sampled_from(["alias-bomb", "deep", "duplicate", "complex-key", "self-alias", "deep-json"]))
    if kind == "alias-bomb":
        width, depth = draw(st.tuples(st.integers(3, 12), st.integers(6, 12)).filter(lambda wd: wd[0] ** wd[1] > 3e6))
        lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
        lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, depth)]
        where = draw(st.sampled_from(["top", "groups"]))
        if where == "groups":
            bomb = "\n".join(f"  {line}" for line in lines)
            text = f"x-anchors:\n{bomb}\n" + good.replace("expiry: 7d", f"expiry: 7d, groups: *a{depth - 1}")
        else:
            text = "\n".join(lines) + "\n" + good
        return text, ["aliases", "more than"]
    if kind == "deep":
        depth = draw(st.integers(65, 3000))
        return good + "x: " + "[" * depth + "]" * depth + "\n", ["nest"]
    if kind == "deep-json":
        depth = draw(st.integers(65, 200_000))
        return '{"jfrog": ' + "[" * depth + "]" * depth + "}", ["nested more than"]
    if kind == "duplicate":
        key = draw(st.sampled_from(["jfrog", "backends", "targets"]))
        return good + f"{key}: {{}}\n", ["duplicate key", key]
    if kind == "complex-key":
        return good + "? [a, b]\n: 1\n", ["plain text"]
    return "loop: &l [1, *l]\n" + good, ["refers to"]


# -- command lines ----------------------------------------------------------------------------
COMMANDS = ("rotate", "status", "sweep", "check-config")


@st.composite
def bad_argv(draw, config: str) -> tuple[list[str], list[str]]:
    """A command line that must exit 2, and the words of its message."""
    kind = draw(st.sampled_from(["flag", "parallel", "format", "target", "both", "command", "no-config",
                                 "missing-config", "shutdown", "port", "url"]))
    if kind == "shutdown":
        value = draw(st.one_of(st.floats(max_value=-1e-9).map(repr), st.sampled_from(["inf", "nan", "-0.5", "abc", ""])))
        return ["daemon", "-c", config, f"--shutdown-timeout={value}"], ["--shutdown-timeout"]
    if kind == "port":
        value = draw(st.one_of(st.integers(max_value=-1), st.integers(min_value=65536)).map(str)
                     | st.text(min_size=1, max_size=6).filter(lambda s: not _int_like(s)))
        return ["emulator", f"--port={value}"], ["--port"]
    if kind == "url":
        url = draw(st.sampled_from(["http://[::1", "https://h:99999", "http://h:abc", "http://[fe80::1"]))
        command = draw(st.sampled_from([["atc", "ci"], ["token", "create"], ["token", "list"]]))
        return [*command, "--url", url, "--access-token", "x" * 24], ["not a valid URL"]
    command = draw(st.sampled_from(COMMANDS))
    if kind == "flag":
        flag = "--zz" + draw(st.from_regex(r"[a-z-]{1,10}", fullmatch=True))
        return [command, "-c", config, flag], ["unrecognized arguments", flag]
    if kind == "parallel":
        command = draw(st.sampled_from(["rotate", "sweep"]))
        value = draw(st.one_of(st.integers(max_value=0).map(str),
                               st.text(min_size=1, max_size=8).filter(lambda s: not _int_like(s))))
        return [command, "-c", config, "--all", "--parallel", value], ["--parallel"]
    if kind == "format":
        command = draw(st.sampled_from(["rotate", "status", "sweep"]))
        value = draw(st.text(min_size=1, max_size=8).filter(lambda s: s not in ("text", "json", "table")))
        return [command, "-c", config, "--format", value], ["--format"]
    if kind == "target":
        command = draw(st.sampled_from(["rotate", "status", "sweep"]))
        name = draw(st.from_regex(r"[a-z][a-z0-9_-]{0,12}", fullmatch=True).filter(lambda s: s != TARGET))
        return [command, "-c", config, name], ["unknown target", name]
    if kind == "both":
        command = draw(st.sampled_from(["rotate", "sweep"]))
        return [command, "-c", config, "--all", TARGET], ["not both"]
    if kind == "command":
        word = draw(st.from_regex(r"[a-z][a-z-]{2,12}", fullmatch=True).filter(
            lambda s: s not in COMMANDS and s not in _OTHER_COMMANDS))
        return [word], ["invalid choice", word]
    if kind == "no-config":
        return [command, "--all"] if command in ("rotate", "sweep") else [command], ["-c/--config"]
    return [command, "-c", config + ".missing"], ["cannot read the config file"]


_OTHER_COMMANDS = {"token", "daemon", "trigger", "emulator", "demo", "atc", "version", "help", "config", "server",
                   "access-token-create", "check", "tokens", "jf"}


def _int_like(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


# -- stored values that are not usable --------------------------------------------------------
_no_token_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                           st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12))
_no_token_json = st.recursive(_no_token_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)


@st.composite
def unusable_values(draw) -> str:
    """A stored value with no JFrog token in it: broken JSON, JSON of any other shape, a record
    whose fields have wrong types, bytes that are not text."""
    kind = draw(st.sampled_from(["json", "broken", "record-types", "binary"]))
    if kind == "json":
        return json.dumps(draw(_no_token_json))
    if kind == "broken":
        text = json.dumps(draw(st.dictionaries(st.text(max_size=6), _no_token_leaf, min_size=1, max_size=4)))
        return text[: draw(st.integers(1, max(1, len(text) - 1)))]
    if kind == "record-types":
        return json.dumps({"access_token": draw(st.one_of(st.integers(), st.lists(st.integers(), max_size=2),
                                                          st.none(), st.just(""))),
                           "token_id": draw(_no_token_leaf), "rotator": draw(_no_token_json)})
    return draw(st.binary(min_size=1, max_size=40)).decode("latin-1")


# -- JFrog answering garbage -------------------------------------------------------------------
garbage_bodies = st.one_of(
    st.sampled_from(["", "null", "[]", "{}", "5", '"str"', "not json", "<html>502 Bad Gateway</html>", "\xff\xfe",
                     '{"tokens": 5}', '{"errors": "x"}', "[" * 5000, "{" * 5000, "x" * 300_000]),
    _json_small.map(json.dumps),
    st.fixed_dictionaries({}, optional={"access_token": _json_leaf, "token_id": _json_leaf,
                                        "expires_in": st.one_of(_json_leaf, st.floats(allow_nan=False)),
                                        "scope": _json_leaf, "token_type": _json_leaf}).map(json.dumps),
)
