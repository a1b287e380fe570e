"""Settings of the Secrets Manager rotation Lambda, read from its environment.

Every error is a :class:`RotationSetupError` whose message names the variable (or the key of the
stored record) that is wrong, and never contains a secret. Variables, all optional but ``JFROG_URL``:

==========================  ===================================================================
``JFROG_URL``               the JFrog Platform base URL (``https://acme.jfrog.io``)
``JFROG_AUTH``              what mints: ``aws-iam`` (the function's own IAM role, exchanged at
                            ``POST /access/api/v1/aws/token``), ``admin-secret`` (default when
                            ``JFROG_ADMIN_SECRET_ARN`` is set) or ``self`` (default otherwise)
``JFROG_ADMIN_SECRET_ARN``  a secret holding the minting credential (an admin or project-admin
                            token: the plain token, or JSON with ``access_token``); unset: each
                            token mints its successor (``self``)
``TOKEN_USERNAME``          user of the first token (later tokens keep the user they replace)
``TOKEN_SCOPE`` /           scope of the first token, verbatim, or as group names
``TOKEN_GROUPS``            (``g1,g2``); not both. Later tokens keep the scope they replace
``TOKEN_EXPIRY``            ``90s``, ``24h``, ``7d`` or seconds; ``0`` = never expires; unset: JFrog's default
``TOKEN_REFRESHABLE``,      ``true``/``false``
``TOKEN_REFERENCE``
``TOKEN_AUDIENCE``,         as ``jf atc --audience/--description/--project``
``TOKEN_DESCRIPTION``,
``TOKEN_PROJECT``
``REVOKE_PREVIOUS``         ``after-next`` (default), ``immediately`` or ``never``
``PREVIOUS_TOKEN_GRACE``    how long the daemon's sweep must leave a token the Lambda demoted
                            alone (default ``90d``; capped at the token's expiry)
``ORPHAN_GRACE``            age before an unknown tagged token is swept (default ``10m``)
``TEST_SECRET_TIMEOUT``     how long ``testSecret`` retries ``GET /tokens/me`` (default ``10s``, at most ``60s``)
``SECRETS_MANAGER_ENDPOINT`` Secrets Manager endpoint URL (default: the regional endpoint)
``JFROG_FORMAT``            what the secret holds for its consumers: ``record`` (our JSON record),
                            ``token``, ``dockerconfigjson``, ``username-password``, ``env`` or
                            ``template`` (:data:`rotator.core.shapes.FORMATS`); unset: our record,
                            or the shape an adopted secret already had
``JFROG_REGISTRY_HOSTS``    ``dockerconfigjson`` only: the registry hosts, ``h1,h2`` (default: the
                            host of ``JFROG_URL``)
``JFROG_TEMPLATE``          ``template`` only (and needed then): the text, with ``{access_token}``,
                            ``{username}``, ``{url}``, ``{token_id}``, ``{expires_at}``
==========================  ===================================================================

The stored record may override the token options per secret with a ``rotator.token`` object
(the keys of a target's ``token:`` in the daemon's config): :func:`token_overrides`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from rotator.core.options import ConfigError, Options, parse_duration, url_problem
from rotator.core.record import SecretRecord
from rotator.core.shapes import FORMATS, ShapeError, check_template
from rotator.core.token_spec import SpecError, TokenSpec, parse_groups

REVOKE_POLICIES = ("after-next", "immediately", "never")
AUTH_MODES = ("aws-iam", "admin-secret", "self")
MAX_TEST_TIMEOUT = 60
OVERRIDES_KEY = "rotator.token"

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_SCOPE_FIELDS = ("scope", "groups", "grant_admin")
# Which variable or key to name when TokenSpec.validate() refuses an option.
_SPEC_ENV = {"scope": "TOKEN_SCOPE", "groups": "TOKEN_GROUPS", "expiry": "TOKEN_EXPIRY",
             "description": "TOKEN_DESCRIPTION", "audience": "TOKEN_AUDIENCE", "username": "TOKEN_USERNAME"}


class RotationSetupError(ValueError):
    """The Lambda cannot run a step as set up: a bad setting, event or stored record.

    The message names the variable, event field or record key; it never holds a secret.
    """


@dataclass(frozen=True)
class LambdaSettings:
    jfrog_url: str
    admin_secret_arn: str | None = None
    token_defaults: TokenSpec = TokenSpec()
    revoke_previous: str = "after-next"
    previous_token_grace: int = 90 * 86400
    orphan_grace: int = 600
    test_timeout: float = 10.0
    secrets_manager_endpoint: str | None = None
    auth: str = "self"  # one of AUTH_MODES
    #: What consumers read (:data:`rotator.core.shapes.FORMATS`); ``None``: our record, or the
    #: shape an adopted secret had.
    format: str | None = None
    registry_hosts: tuple[str, ...] = ()
    template: str | None = None

    @property
    def minting(self) -> str:
        """``admin`` when an admin credential mints (a secret or the IAM role), else ``self``."""
        return "self" if self.auth == "self" else "admin"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LambdaSettings:
        env = _Env(os.environ if environ is None else environ)
        url = env.url("JFROG_URL", required=True)
        assert url is not None
        scope, groups = env.str("TOKEN_SCOPE"), env.str("TOKEN_GROUPS")
        if scope and groups:
            raise RotationSetupError("TOKEN_SCOPE and TOKEN_GROUPS are both set: give the scope verbatim "
                                     "or as groups, not both")
        expiry = env.duration("TOKEN_EXPIRY", None)
        defaults = TokenSpec(
            username=env.str("TOKEN_USERNAME"), scope=scope, groups=groups, expiry=expiry,
            refreshable=env.bool("TOKEN_REFRESHABLE", False), reference=env.bool("TOKEN_REFERENCE", False),
            audience=env.str("TOKEN_AUDIENCE"), description=env.str("TOKEN_DESCRIPTION"),
            project=env.str("TOKEN_PROJECT"),
        )
        check_spec(defaults, where="environment")
        test_timeout = env.duration("TEST_SECRET_TIMEOUT", 10)
        if test_timeout > MAX_TEST_TIMEOUT:
            raise RotationSetupError(f"TEST_SECRET_TIMEOUT must be at most {MAX_TEST_TIMEOUT}s "
                                     "(the Lambda timeout must cover it)")
        admin_secret_arn = env.str("JFROG_ADMIN_SECRET_ARN")
        return cls(
            jfrog_url=url.rstrip("/"),
            admin_secret_arn=admin_secret_arn,
            auth=_auth(env, admin_secret_arn),
            token_defaults=defaults,
            revoke_previous=env.choice("REVOKE_PREVIOUS", REVOKE_POLICIES, "after-next"),
            previous_token_grace=env.duration("PREVIOUS_TOKEN_GRACE", 90 * 86400),
            orphan_grace=env.duration("ORPHAN_GRACE", 600),
            test_timeout=float(test_timeout),
            secrets_manager_endpoint=env.url("SECRETS_MANAGER_ENDPOINT"),
            **_consumer_format(env),
        )


def _consumer_format(env: _Env) -> dict[str, Any]:
    """``JFROG_FORMAT``, ``JFROG_REGISTRY_HOSTS`` and ``JFROG_TEMPLATE``, checked together as a
    daemon target's ``format``, ``registry_hosts`` and ``template`` are (docs/aws-lambda.md)."""
    fmt = env.str("JFROG_FORMAT")
    if fmt is not None and fmt not in FORMATS:
        raise RotationSetupError(f"JFROG_FORMAT must be one of {', '.join(FORMATS)}, not {fmt!r}")
    hosts_text = env.str("JFROG_REGISTRY_HOSTS")
    hosts = tuple(h.strip() for h in (hosts_text or "").split(",") if h.strip())
    if hosts_text is not None and fmt != "dockerconfigjson":
        raise RotationSetupError("JFROG_REGISTRY_HOSTS only applies to JFROG_FORMAT=dockerconfigjson")
    if hosts_text is not None and (not hosts or not all(re.fullmatch(r"[^/\s]+", h) for h in hosts)):
        raise RotationSetupError("JFROG_REGISTRY_HOSTS must be registry host names separated by commas "
                                 f"(acme.jfrog.io,docker.acme.io), not {hosts_text!r}")
    template = env.raw("JFROG_TEMPLATE")
    if (template is None) != (fmt != "template"):
        raise RotationSetupError("JFROG_FORMAT=template needs JFROG_TEMPLATE, and JFROG_TEMPLATE needs "
                                 "JFROG_FORMAT=template")
    if template is not None:
        try:
            check_template(template)
        except ShapeError as exc:
            raise RotationSetupError(f"JFROG_TEMPLATE: {str(exc).removeprefix('template: ')}") from None
    return {"format": fmt, "registry_hosts": hosts, "template": template}


def _auth(env: _Env, admin_secret_arn: str | None) -> str:
    """``JFROG_AUTH``, defaulted from ``JFROG_ADMIN_SECRET_ARN``; contradictions are refused."""
    auth = env.choice("JFROG_AUTH", AUTH_MODES, "admin-secret" if admin_secret_arn else "self")
    if auth == "admin-secret" and not admin_secret_arn:
        raise RotationSetupError("JFROG_AUTH is admin-secret but JFROG_ADMIN_SECRET_ARN is not set")
    if auth != "admin-secret" and admin_secret_arn:
        raise RotationSetupError(f"JFROG_AUTH is {auth} but JFROG_ADMIN_SECRET_ARN is set: unset one of them "
                                 f"({'the IAM role mints' if auth == 'aws-iam' else 'each token mints its successor'}"
                                 ", no admin secret is read)")
    return auth


def token_spec(settings: LambdaSettings, current: SecretRecord | None) -> TokenSpec:
    """The options of the next token: environment defaults, then the user and scope of the token
    being replaced, then the record's ``rotator.token`` overrides. Validated (errors name the key)."""
    spec = settings.token_defaults
    if current is not None:
        if current.username:
            spec = replace(spec, username=current.username)
        if current.scope:
            spec = replace(spec, scope=current.scope, groups=None, grant_admin=None)
        overrides = token_overrides(current.rotator_extra.get("token"))
        if any(key in overrides for key in _SCOPE_FIELDS):
            spec = replace(spec, scope=None, groups=None, grant_admin=None)
        spec = replace(spec, **overrides)
    spec = spec.revocable_by_default()
    return check_spec(spec, where=OVERRIDES_KEY if current is not None else "environment")


def token_overrides(data: Any) -> dict[str, Any]:
    """``rotator.token`` of a stored record -> TokenSpec field values (only the keys given).

    Keys: ``username``, ``scope``, ``groups`` (list or ``g1,g2``), ``grant_admin``, ``expiry``
    (duration), ``refreshable``, ``reference``, ``audience``, ``description``, ``project``,
    ``force_revocable``. A wrong or unknown key raises :class:`RotationSetupError` naming it.
    """
    if data is None:
        return {}
    try:
        opts = Options(data, OVERRIDES_KEY)
        out: dict[str, Any] = {}
        for key in ("username", "scope", "audience", "description", "project"):
            if opts.has(key):
                out[key] = opts.str(key, None)
        for key in ("grant_admin", "refreshable", "reference", "force_revocable"):
            if opts.has(key):
                out[key] = opts.bool(key, None)
        if opts.has("expiry"):
            out["expiry"] = opts.duration("expiry", None)
        if opts.has("groups"):
            out["groups"] = _groups(opts)
        opts.finish()
    except ConfigError as exc:
        raise RotationSetupError(f"the stored record's {exc}") from None
    for key in ("refreshable", "reference"):
        if out.get(key) is None:
            out.pop(key, None)  # TokenSpec wants a bool there; null means "not given"
    return out


def check_spec(spec: TokenSpec, *, where: str) -> TokenSpec:
    try:
        return spec.validate()
    except SpecError as exc:
        key = _SPEC_ENV.get(exc.option, exc.option) if where == "environment" else f"{where}.{exc.option}"
        raise RotationSetupError(f"{key}: {exc.as_key_message()}") from None


def _groups(opts: Options) -> str | None:
    try:
        return parse_groups(opts.raw("groups", None))
    except ValueError as exc:
        raise opts.error("groups", str(exc)) from None


class _Env:
    """Typed reads of environment variables; errors name the variable, never echo a secret."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def str(self, name: str) -> str | None:
        value = self.environ.get(name, "").strip()
        return value or None

    def raw(self, name: str) -> str | None:
        """The value as it is (a template keeps its spaces and newlines); unset or empty: ``None``."""
        value = self.environ.get(name, "")
        return value if value.strip() else None

    def url(self, name: str, *, required: bool = False) -> str | None:
        value = self.str(name)
        if value is None:
            if required:
                raise RotationSetupError(f"{name} is not set: it must be the JFrog Platform URL, "
                                         "e.g. https://acme.jfrog.io")
            return None
        if not re.match(r"https?://[^/\s]+", value):
            raise RotationSetupError(f"{name} must be an http:// or https:// URL, not {value!r}")
        if problem := url_problem(value):  # an open IPv6 bracket or a bad port: said here, not at the first call
            raise RotationSetupError(f"{name}: {problem}")
        return value

    def bool(self, name: str, default: bool) -> bool:
        value = self.str(name)
        if value is None:
            return default
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise RotationSetupError(f"{name} must be true or false, not {value!r}")

    def duration(self, name: str, default: Any) -> Any:
        value = self.str(name)
        if value is None:
            return default
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise RotationSetupError(f"{name} {exc}") from None

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self.str(name) or default
        if value not in choices:
            raise RotationSetupError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
        return value


__all__ = [
    "AUTH_MODES",
    "LambdaSettings",
    "OVERRIDES_KEY",
    "REVOKE_POLICIES",
    "RotationSetupError",
    "token_overrides",
    "token_spec",
]
