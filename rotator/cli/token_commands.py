"""The library calls behind ``jfrog-rotator token create | list | revoke`` (the ``jf atc`` drop-in)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from rotator.core.options import url_problem
from rotator.core.token_spec import TokenSpec, parse_expiry
from rotator.jfrog.client import AccessClient, TokenResponse
from rotator.jfrog.errors import JFrogConfigError
from rotator.jfrog.servers import ConnectionFlags, ServerDetails, resolve_server

NO_URL = "no JFrog Platform URL specified, either via the --url flag or as part of the server configuration"
TOKEN_MANDATORY = "authenticating with access token is currently mandatory for creating access tokens"


@dataclass(frozen=True)
class TLSOptions:
    ca_bundle: str | None = None
    insecure: bool = False


def platform_details(flags: ConnectionFlags) -> ServerDetails:
    """Resolve the server like ``jf`` and insist on a URL (jf's own error text)."""
    details = resolve_server(flags)
    if not details.url:
        raise JFrogConfigError(NO_URL)
    if problem := url_problem(details.url):  # an open IPv6 bracket or a bad port: exit 2, not 'unexpected error'
        raise JFrogConfigError(f"the JFrog Platform URL {problem}")
    return details


def client_for(details: ServerDetails, tls: TLSOptions = TLSOptions()) -> AccessClient:
    if not details.access_token:
        raise JFrogConfigError(TOKEN_MANDATORY)
    return AccessClient(
        details.url,
        access_token=details.access_token,
        client_cert=details.client_cert_path or None,
        client_key=details.client_cert_key_path or None,
        ca_bundle=tls.ca_bundle,
        verify=not tls.insecure,
        verify_setting="--insecure-tls",
    )


def create_token(
    flags: ConnectionFlags,
    spec: TokenSpec,
    *,
    username_arg: str | None = None,
    expiry_text: str | None = None,
    tls: TLSOptions = TLSOptions(),
) -> TokenResponse:
    """``jf atc [USERNAME]``: the checks of jfrog-cli ``general/token/cli.go``, in its order.

    URL, then access token, then scope flags, then ``--expiry`` (given as text, parsed like jf),
    then the length limits; nothing is sent before all of them pass.
    """
    details = platform_details(flags)
    if not details.access_token:
        raise JFrogConfigError(TOKEN_MANDATORY)
    spec.check_scope_options()
    spec = replace(
        spec,
        username=(username_arg if username_arg is not None else details.user) or None,
        expiry=parse_expiry(expiry_text) if expiry_text is not None else spec.expiry,
    ).validate()
    with client_for(details, tls) as client:
        return client.create_token(spec.request_body())


def list_tokens(flags: ConnectionFlags, tls: TLSOptions = TLSOptions(), **filters: Any) -> list[dict[str, Any]]:
    with client_for(platform_details(flags), tls) as client:
        return client.list_tokens(**filters)


def revoke_token(flags: ConnectionFlags, token_id: str, tls: TLSOptions = TLSOptions()) -> bool:
    with client_for(platform_details(flags), tls) as client:
        return client.revoke_token(token_id)
