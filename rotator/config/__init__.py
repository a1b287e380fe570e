"""The YAML configuration (docs/configuration.md) as typed objects.

Every error names the file, the key path and what is wrong, e.g.
``rotator.yaml: targets[2].token.expiry: must be a duration like 90s, 15m, 24h, 7d``.
Unknown keys are errors. Secrets are referenced (``*_env``, ``*_file``, ``server_id``), never
read from the file unless the user insists with an explicit ``*_insecure_inline`` key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from backends.base import DocumentStore, LazyLayout, LeaderLease, SecretBackend, create_backend
from rotator.config.credentials import (
    MINTING_CREDENTIALS,
    AwsIamSettings,
    OidcSettings,
    StoredTokenSettings,
    aws_iam_settings,
    check_stored_token,
    oidc_settings,
    stored_token_settings,
)
from rotator.core.options import ConfigError, Options, SecretRef, has_control_characters, parse_duration, url_problem
from rotator.core.shapes import FORMATS, ShapeError, check_template
from rotator.core.target import (
    DEFAULT_ORPHAN_GRACE,
    DEFAULT_OVERLAP,
    MAX_OUTPUTS,
    STRATEGIES,
    TARGET_NAME,
    TARGET_NAME_HINT,
    Output,
    Schedule,
    Target,
)
from rotator.core.token_spec import SpecError, TokenSpec, parse_groups
from rotator.engine.records import PERSISTENCY_THRESHOLD


@dataclass(frozen=True)
class JFrogSettings:
    """How to reach the JFrog Platform and with which (admin) credential."""

    url: str
    token: SecretRef
    server_id: str | None = None
    oidc: OidcSettings | None = None
    access_token_from: StoredTokenSettings | None = None
    ca_bundle: str | None = None
    client_cert_path: str | None = None
    client_cert_key_path: str | None = None
    tls_verify: bool = True
    timeout: int = 30
    aws_iam: AwsIamSettings | None = None
    #: The platform's ``persistent-expiry-threshold``: shorter tokens cannot be listed or revoked.
    persistency_threshold: int = PERSISTENCY_THRESHOLD

    @property
    def has_credential(self) -> bool:
        return self.token.is_set() or bool(self.server_id) or self.oidc is not None \
            or self.access_token_from is not None or self.aws_iam is not None


DEFAULT_LEASE_PATH = "jfrog-rotator/leader"
DEFAULT_LEASE_TTL = 15
MIN_LEASE_TTL = 2


@dataclass(frozen=True)
class LeaderSettings:
    """``daemon.leader``: the replicas elect one leader through a lease in the store ``backend``
    (docs/daemon.md, "Running several replicas")."""

    backend: str
    path: str = DEFAULT_LEASE_PATH
    ttl: int = DEFAULT_LEASE_TTL
    replica_id: str | None = None


@dataclass(frozen=True)
class DaemonSettings:
    listen: str | None = None
    sweep_interval: int = 3600
    max_workers: int = 4
    misfire_grace: int = 300
    log_format: str | None = None
    leader: LeaderSettings | None = None  # off: every daemon acts on every target


@dataclass
class Config:
    source: Path
    jfrog: JFrogSettings
    daemon: DaemonSettings
    backends: dict[str, SecretBackend]
    targets: list[Target]
    #: Each backend's configured ``type`` (``vault``, ``aws-secretsmanager``, ``file`` or a plugin's).
    backend_types: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_name: dict[str, Target] = {t.name: t for t in self.targets}

    def target(self, name: str) -> Target:
        return self.by_name[name]

    def close(self) -> None:
        for backend in self.backends.values():
            backend.close()


def load_config(path: str | Path) -> Config:
    """Read and validate ``path``; :class:`ConfigError` on the first problem found."""
    source = Path(path)
    try:
        with source.open("rb") as file:
            raw = file.read(MAX_CONFIG_BYTES + 1)  # bounded: '-c /dev/zero' or a log file must not fill memory
    except OSError as exc:
        raise ConfigError(str(source), "", f"cannot read the config file: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(str(source), "", f"the config file is larger than {MAX_CONFIG_BYTES >> 20} MiB: is it "
                                           "the right file?")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(str(source), "", f"not UTF-8 text (byte {exc.start}): is it the right file?") from None
    return parse_config(text, source)


#: The largest config file read (a JSON config of 10,000 targets is about 2 MiB).
MAX_CONFIG_BYTES = 64 << 20


def parse_config(text: str, source: Path) -> Config:
    data = _load_yaml(text, str(source))
    root = Options(data, "", str(source))
    jfrog = _jfrog(root.mapping("jfrog"))
    daemon = _daemon(root.mapping("daemon", None))
    backends_opts = root.mapping("backends")
    if not backends_opts.data:
        raise root.error("backends", "at least one backend is required")
    backends: dict[str, SecretBackend] = {}
    types: dict[str, str] = {}
    try:
        for name in backends_opts.data:
            options = backends_opts.mapping(str(name))
            backends[str(name)] = create_backend(str(name), options)
            types[str(name)] = str(options.data["type"])
        check_stored_token(root, jfrog.access_token_from, backends)
        _check_leader(root, daemon.leader, backends, types)
        targets = _targets(root, backends, jfrog)
        root.finish()
    except BaseException:
        for backend in backends.values():
            backend.close()
        raise
    return Config(source=source, jfrog=jfrog, daemon=daemon, backends=backends, targets=targets, backend_types=types)


#: At most this many values once every YAML alias is expanded (a config of 10,000 targets holds
#: about 300,000), and at most this deep: an alias bomb ("billion laughs") or a file nested a
#: thousand levels deep is refused before anything walks it.
MAX_CONFIG_VALUES = 2_000_000
MAX_CONFIG_DEPTH = 64


def _load_yaml(text: str, source: str) -> Any:
    """YAML, or JSON (a subset of YAML) through the much faster json module when the file is an
    object: generated configs with thousands of targets load in a fraction of the time."""
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
        except json.JSONDecodeError as exc:
            raise ConfigError(source, "", f"not valid JSON at line {exc.lineno}, column {exc.colno}: "
                                          f"{exc.msg}") from None
        except _DuplicateKey as exc:
            raise ConfigError(source, "", f"not valid JSON: duplicate key {exc.args[0]!r}") from None
        except RecursionError:
            raise ConfigError(source, "", f"nested more than {MAX_CONFIG_DEPTH} levels deep") from None
        return _bounded(data, source)
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        raise ConfigError(source, "", f"not valid YAML at {where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(source, "", f"not valid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(source, "", f"nested more than {MAX_CONFIG_DEPTH} levels deep") from None
    return _bounded(data, source)


def _bounded(data: Any, source: str) -> Any:
    """``data`` if it holds at most :data:`MAX_CONFIG_VALUES` values with every alias expanded (a
    shared list or mapping counts once per place it appears, measured once) and nests at most
    :data:`MAX_CONFIG_DEPTH` levels; else :class:`ConfigError`. Iterative: no recursion limit."""
    if not isinstance(data, (dict, list)):
        return data
    sizes: dict[int, int] = {}
    stack: list[list[Any]] = [[data, _children(data), 1]]
    active = {id(data)}
    while stack:
        frame = stack[-1]
        for child in frame[1]:
            if not isinstance(child, (dict, list)):
                frame[2] += 1
                continue
            if id(child) in sizes:
                frame[2] += sizes[id(child)]
                if frame[2] > MAX_CONFIG_VALUES:
                    break
                continue
            if id(child) in active:
                raise ConfigError(source, "", "a YAML alias refers to a mapping or list that contains it")
            if len(stack) >= MAX_CONFIG_DEPTH:
                raise ConfigError(source, "", f"nested more than {MAX_CONFIG_DEPTH} levels deep")
            active.add(id(child))
            stack.append([child, _children(child), 1])
            break
        else:
            stack.pop()
            active.discard(id(frame[0]))
            sizes[id(frame[0])] = frame[2]
            if stack:
                stack[-1][2] += frame[2]
        if frame[2] > MAX_CONFIG_VALUES or (stack and stack[-1][2] > MAX_CONFIG_VALUES):
            raise ConfigError(source, "", f"holds more than {MAX_CONFIG_VALUES:,} values once its YAML aliases "
                                          "are expanded (an alias repeats all it points at): refusing to load it")
    return data


def _children(node: Any) -> Any:
    return (part for pair in node.items() for part in pair) if isinstance(node, dict) else iter(node)


class _DuplicateKey(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


class _StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The safe loader (libyaml's when available: ~20x faster on big configs) refusing duplicate
    keys, which YAML would otherwise silently resolve to the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            # Keys are compared as written (cheap); a list or mapping as a key (``? [a, b]``) is refused.
            if not isinstance(key_node, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be plain text, not a list or mapping", key_node.start_mark)
            key = key_node.value
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _jfrog(opts: Options) -> JFrogSettings:
    server_id = opts.str("server_id", None)
    token = opts.secret("access_token", "JFrog admin token")
    url = opts.str("url", None, pattern=r"https?://\S+", hint="must start with http:// or https://")
    if not url and not server_id:
        raise opts.error("url", "is required (or give server_id to use a JFrog CLI server)")
    if url and (problem := url_problem(url)):
        raise opts.error("url", problem)
    given = [key for key in MINTING_CREDENTIALS if opts.has(key)]
    if len(given) > 1:
        raise opts.error(given[1], f"give only one credential that mints, not both {given[0]} and {given[1]} "
                                   f"(one of {', '.join(MINTING_CREDENTIALS)})")
    aws_iam = aws_iam_settings(opts.mapping("aws_iam", None)) if opts.has("aws_iam") else None
    settings = JFrogSettings(
        url=url or "",
        token=token,
        server_id=server_id,
        oidc=oidc_settings(opts.mapping("oidc")) if opts.has("oidc") else None,
        access_token_from=stored_token_settings(opts.mapping("access_token_from")) if opts.has("access_token_from")
        else None,
        ca_bundle=opts.str("ca_bundle", None),
        client_cert_path=opts.str("client_cert_path", None),
        client_cert_key_path=opts.str("client_cert_key_path", None),
        tls_verify=opts.bool("tls_verify", True),
        timeout=opts.duration("timeout", 30),
        aws_iam=aws_iam,
        persistency_threshold=opts.duration("persistency_threshold", PERSISTENCY_THRESHOLD),
    )
    if settings.timeout <= 0:
        raise opts.error("timeout", "must be more than 0s")
    if settings.client_cert_key_path and not settings.client_cert_path:
        raise opts.error("client_cert_key_path", "needs client_cert_path")
    opts.finish()
    return settings


def _daemon(opts: Options) -> DaemonSettings:
    listen = opts.str("listen", None, pattern=r"\[?[0-9A-Za-z.:-]+\]?:\d{1,5}", hint="use HOST:PORT")
    if listen is not None and int(listen.rpartition(":")[2]) > 65535:
        raise opts.error("listen", f"port {listen.rpartition(':')[2]} is not a TCP port (0 to 65535)")
    settings = DaemonSettings(
        listen=listen,
        sweep_interval=opts.duration("sweep_interval", 3600),
        max_workers=opts.int("max_workers", 4, minimum=1),
        misfire_grace=opts.duration("misfire_grace", 300),
        log_format=opts.str("log_format", None, choices=("text", "json")),
        leader=_leader(opts.mapping("leader")) if opts.has("leader") else None,
    )
    if settings.sweep_interval <= 0:
        raise opts.error("sweep_interval", "must be more than 0s")
    opts.finish()
    return settings


def _leader(opts: Options) -> LeaderSettings:
    ttl = opts.duration("ttl", DEFAULT_LEASE_TTL)
    if ttl < MIN_LEASE_TTL:
        raise opts.error("ttl", f"must be at least {MIN_LEASE_TTL}s (the lease is renewed every third of it)")
    path = opts.str("path", DEFAULT_LEASE_PATH, pattern=r"(?!\.{1,2}(/|$))[A-Za-z0-9._-]+(/(?!\.{1,2}(/|$))[A-Za-z0-9._-]+)*",
                    hint="a store path like jfrog-rotator/leader")
    settings = LeaderSettings(
        backend=opts.str("backend"),
        path=path,
        ttl=ttl,
        replica_id=opts.str("replica_id", None, pattern=r"[A-Za-z0-9._:@-]{1,64}",
                            hint="letters, digits and . _ : @ -, at most 64"),
    )
    opts.finish()
    return settings


def _check_leader(root: Options, leader: LeaderSettings | None, backends: Mapping[str, SecretBackend],
                  types: Mapping[str, str]) -> None:
    """``daemon.leader.backend`` names a store that can hold a lease (one a KV v1 mount refuses at start)."""
    if leader is None:
        return
    where = Options({}, "daemon.leader", root.source)
    backend = backends.get(leader.backend)
    if backend is None:
        raise where.error("backend", f"no backend named {leader.backend!r} (defined: {', '.join(backends)})")
    if not isinstance(backend, LeaderLease):
        raise where.error("backend", f"backend {leader.backend!r} (type {types.get(leader.backend)}) cannot hold a "
                                     "leader lease: use a vault (KV v2), aws-secretsmanager or file backend")


def _targets(root: Options, backends: Mapping[str, SecretBackend], jfrog: JFrogSettings) -> list[Target]:
    items = root.list("targets")
    if not items:
        raise root.error("targets", "at least one target is required")
    targets: list[Target] = []
    names: set[str] = set()
    seen: dict[tuple[str, str], str] = {}
    for index, item in enumerate(items):
        opts = Options(item, root.path("targets") + f"[{index}]", root.source)
        target = _target(opts, backends, jfrog)
        if target.name in names:
            raise opts.error("name", f"duplicate target name {target.name!r}")
        names.add(target.name)
        for where, output in _output_places(opts, target):
            key = (output.backend, output.path)
            if key in seen:
                raise ConfigError(opts.source, where, f"{output.key} is already used by target {seen[key]!r}")
            seen[key] = target.name
        targets.append(target)
    return targets


_BAD_SEGMENT = re.compile(r"(^|/)\.{1,2}(/|$)")


def _store_path(opts: Options, default: str | None) -> str:
    """A target's (or output's) ``path``: a relative store path like ``jfrog/ci``, refused here (exit 2)
    rather than by the store at the first rotation: empty, absolute, ``.``/``..`` parts, control
    characters, or longer than a store accepts (AWS: 512)."""
    path = opts.str("path") if default is None else opts.str("path", default)
    problem = ("is empty" if not path.strip("/") else
               "must not start with / (a store path like jfrog/ci)" if path.startswith("/") else
               "must not have . or .. parts" if _BAD_SEGMENT.search(path) else
               "must not hold control characters" if has_control_characters(path) else
               "is longer than 512 characters" if len(path) > 512 else None)
    if problem:
        raise opts.error("path", problem)
    return path


def _output_places(opts: Options, target: Target) -> list[tuple[str, str]]:
    """Where each output of ``target`` was given (its key path) and the output: the primary first."""
    if opts.has("backend"):
        primary = opts.path("path")
        others = [opts.path("outputs") + f"[{i}].path" for i in range(len(target.outputs))]
    else:  # outputs alone: the first is the primary
        primary = opts.path("outputs") + "[0].path"
        others = [opts.path("outputs") + f"[{i + 1}].path" for i in range(len(target.outputs))]
    return list(zip([primary, *others], [target.primary, *target.outputs]))


def _target(opts: Options, backends: Mapping[str, SecretBackend], jfrog: JFrogSettings) -> Target:
    name = opts.str("name", pattern=TARGET_NAME, hint=TARGET_NAME_HINT)
    strategy = opts.str("strategy", "recreate", choices=STRATEGIES)
    outputs = _outputs(opts, name, strategy, backends) if opts.has("outputs") else []
    if opts.has("backend") or not outputs:
        backend = opts.str("backend")
        if backend not in backends:
            raise opts.error("backend", f"no backend named {backend!r} (defined: {', '.join(backends)})")
        primary = Output(backend, _store_path(opts, name), **_consumer_format(opts, strategy))
    else:  # outputs alone: the first one is the primary
        for key in ("path", "format", "registry_hosts", "template"):
            if opts.has(key):
                raise opts.error(key, f"target {name!r} has no backend of its own: give {key} in its first output "
                                      "(the primary), or give backend and path here")
        primary, outputs = outputs[0], outputs[1:]
    _check_fanout(opts, name, primary, outputs)
    token = _token(opts.mapping("token", None))
    if strategy == "refresh" and not token.refreshable:
        raise opts.error("strategy", "refresh needs token.refreshable: true")
    fallback = opts.bool("fallback_to_recreate", True)
    needs_admin = strategy == "recreate" or (strategy == "refresh" and fallback)
    if needs_admin and not jfrog.has_credential:
        raise ConfigError(opts.source, "jfrog.access_token_env",
                          f"target {name!r} (strategy {strategy}) needs an admin credential: set "
                          f"access_token_env, access_token_file, server_id, oidc, access_token_from or aws_iam")
    schedule = _schedule(opts.mapping("schedule", None), token)
    target = Target(
        name=name,
        backend=primary.backend,
        path=primary.path,
        token=token,
        strategy=strategy,
        schedule=schedule,
        overlap=opts.duration("overlap", DEFAULT_OVERLAP),
        fallback_to_recreate=fallback,
        orphan_grace=opts.duration("orphan_grace", DEFAULT_ORPHAN_GRACE),
        adopt=opts.bool("adopt", True),
        format=primary.format,
        registry_hosts=primary.registry_hosts,
        template=primary.template,
        outputs=tuple(outputs),
    )
    opts.finish()
    return target


def _outputs(opts: Options, name: str, strategy: str, backends: Mapping[str, SecretBackend]) -> list[Output]:
    """``outputs:``: where else the target's token is written (docs/configuration.md, "Fan-out")."""
    items = opts.list("outputs")
    if not items:
        raise opts.error("outputs", f"target {name!r}: give at least one output, or leave outputs out")
    if strategy == "refresh":
        raise opts.error("outputs", f"target {name!r}: strategy refresh cannot fan out: a refresh ends the previous "
                                    "token at once, so an output not written yet would hold a dead token (use "
                                    "strategy recreate or self)")
    found = []
    for index, item in enumerate(items):
        out = Options(item, opts.path("outputs") + f"[{index}]", opts.source)
        backend = out.str("backend")
        path = _store_path(out, None)
        where = f"target {name!r}, output {backend}:{path}"
        if backend not in backends:
            raise out.error("backend", f"{where}: no backend named {backend!r} (defined: {', '.join(backends)})")
        output = Output(backend, path, **_consumer_format(out, strategy))
        if output.format not in (None, "record") and _metadata_apart(backends[backend]) is False:
            raise out.error("format", f"{where}: format {output.format} needs metadata beside the value, which "
                                      f"backend {backend!r} does not keep (a Vault KV v1 mount keeps it only inside "
                                      "our record): use a KV v2 mount, or format: record")
        out.finish()
        found.append(output)
    return found


def _check_fanout(opts: Options, name: str, primary: Output, outputs: list[Output]) -> None:
    if len(outputs) > MAX_OUTPUTS:
        raise opts.error("outputs", f"target {name!r}: at most {MAX_OUTPUTS} outputs besides the primary, "
                                    f"not {len(outputs)}")
    seen = {(primary.backend, primary.path): "the primary"}
    offset = 0 if opts.has("backend") else 1
    for index, output in enumerate(outputs):
        key = (output.backend, output.path)
        if key in seen:
            what = "is the target's primary output" if seen[key] == "the primary" else f"is already {seen[key]}"
            raise ConfigError(opts.source, opts.path("outputs") + f"[{index + offset}].path",
                              f"target {name!r}, output {output.key}: {what} (each output needs its own store path)")
        seen[key] = f"outputs[{index + offset}]"


def _metadata_apart(backend: SecretBackend) -> bool | None:
    """Whether ``backend`` keeps metadata beside any value, as far as is known offline (``None``:
    the store will tell at the first read, which refuses before anything is minted)."""
    if not isinstance(backend, DocumentStore):
        return False
    if isinstance(backend, LazyLayout) and not backend.layout_known():
        return None
    return backend.keeps_metadata_apart()


def _consumer_format(opts: Options, strategy: str) -> dict[str, Any]:
    """``format``, ``registry_hosts`` and ``template``: what consumers read (docs/configuration.md)."""
    fmt = opts.str("format", None, choices=FORMATS)
    hosts = opts.list("registry_hosts", [])
    if hosts and fmt != "dockerconfigjson":
        raise opts.error("registry_hosts", "only applies to format: dockerconfigjson")
    if not all(isinstance(h, str) and h and "/" not in h for h in hosts):
        raise opts.error("registry_hosts", "must be a list of host names (acme.jfrog.io)")
    template = opts.str("template", None)
    if (template is None) != (fmt != "template"):
        raise opts.error("template" if fmt == "template" else "format",
                         "format: template needs a template, and a template needs format: template")
    if template is not None:
        try:
            check_template(template)
        except ShapeError as exc:
            raise opts.error("template", str(exc).removeprefix("template: ")) from None
    if strategy == "refresh" and fmt not in (None, "record"):
        raise opts.error("format", f"strategy refresh needs format: record (the refresh token is kept in the "
                                   f"record, and a {fmt} document has no place for it)")
    return {"format": fmt, "registry_hosts": tuple(hosts), "template": template}


def _token(opts: Options) -> TokenSpec:
    try:
        groups = parse_groups(opts.raw("groups", None))
    except ValueError as exc:
        raise opts.error("groups", str(exc)) from None
    expiry = opts.raw("expiry", None)
    if expiry is not None:
        try:
            expiry = parse_duration(expiry)
        except ValueError as exc:
            raise opts.error("expiry", str(exc)) from None
    spec = TokenSpec(
        username=opts.str("username", None),
        project=opts.str("project", None),
        scope=opts.str("scope", None),
        groups=groups,
        grant_admin=opts.bool("grant_admin", None) if opts.has("grant_admin") else None,
        expiry=expiry,
        refreshable=opts.bool("refreshable", False),
        description=opts.str("description", None),
        audience=opts.str("audience", None),
        reference=opts.bool("reference", False),
        force_revocable=opts.bool("force_revocable", None),
    ).revocable_by_default()
    opts.finish()
    try:
        spec.validate()
    except SpecError as exc:
        raise opts.error(exc.option, exc.as_key_message()) from None
    return spec


def _schedule(opts: Options, token: TokenSpec) -> Schedule:
    kinds = [k for k in ("every", "cron", "before_expiry") if opts.has(k)]
    if len(kinds) > 1:
        raise opts.error(kinds[1], f"give only one of every, cron, before_expiry (found {', '.join(kinds)})")
    kind = kinds[0] if kinds else ("before_expiry" if token.expiry != 0 else "every")
    jitter = opts.duration("jitter", 0)
    timezone = opts.str("timezone", "UTC")
    if kind == "every":
        every = opts.duration("every", 7 * 86400)
        if every <= 0:
            raise opts.error("every", "must be more than 0s")
        schedule = Schedule("every", every=every, jitter=jitter)
    elif kind == "cron":
        cron = opts.str("cron")
        _check_cron(opts, cron, timezone)
        schedule = Schedule("cron", cron=cron, timezone=timezone, jitter=jitter)
    else:
        if token.expiry == 0:
            raise opts.error("before_expiry", "needs a token that expires (token.expiry is 0 = never)")
        raw = opts.raw("before_expiry", "25%")
        schedule = _before_expiry(opts, raw, jitter, token.expiry)
    if timezone != "UTC" and kind != "cron":
        raise opts.error("timezone", "only applies to a cron schedule")
    opts.finish()
    return schedule


def _before_expiry(opts: Options, raw: Any, jitter: int, expiry: int | None) -> Schedule:
    seconds, fraction = opts.share_or_duration("before_expiry", raw)
    if seconds is not None and expiry and seconds >= expiry:
        raise opts.error("before_expiry", f"{seconds}s is not shorter than the token's lifetime (token.expiry "
                                          f"{expiry}s): every check would find it due and mint again")
    return Schedule("before_expiry", before_expiry_seconds=seconds, before_expiry_fraction=fraction, jitter=jitter)


def _check_cron(opts: Options, cron: str, timezone: str) -> None:
    import zoneinfo

    from apscheduler.triggers.cron import CronTrigger

    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise opts.error("timezone", f"unknown time zone {timezone!r}") from None
    try:
        CronTrigger.from_crontab(cron, timezone=timezone)
    except ValueError as exc:
        raise opts.error("cron", f"not a valid crontab line ({exc})") from None
