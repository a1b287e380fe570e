"""A local emulator of the JFrog Access token API, for tests, benchmarks and demos.

Built like moto: :mod:`.model` holds state and rules (with :mod:`.policy`, :mod:`.users`,
:mod:`.tokens`, :mod:`.oidc` and :mod:`.aws_iam`), :mod:`.routes` maps HTTP to the model, :mod:`.server` is the
HTTP/1.1 (optionally TLS/mTLS) transport. What it emulates, and how far, is in docs/emulator.md;
JFrog's own pages start at https://jfrog.com/help/r/jfrog-rest-apis/create-token.

Typical use::

    with Emulator() as emu:
        requests.post(f"{emu.url}/access/api/v1/tokens",
                      headers={"Authorization": f"Bearer {emu.admin_token}"},
                      json={"username": "ci", "scope": "applied-permissions/groups:readers"})
"""

from __future__ import annotations

import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterable, Mapping

from rotator.emulator.aws_iam import AwsIamExchange, AwsIdentity
from rotator.emulator.faults import FaultInjector, RecordedRequest, RequestLog
from rotator.emulator.jwt_signer import generate_signing_key
from rotator.emulator.model import AccessModel, ManualClock
from rotator.emulator.oidc import IdentityMapping, OidcIssuer, OidcProvider
from rotator.emulator.policy import AccessPolicy
from rotator.emulator.routes import AccessApp, ArtifactoryInfo, default_license
from rotator.emulator.server import EmulatorHTTPServer, make_server_ssl_context
from rotator.emulator.tokens import DEFAULT_AUDIENCE, TokenRecord, token_response
from rotator.emulator.users import ADMIN_SCOPE, USER_SCOPE, Principal, User
from rotator.emulator.validation import AccessError, TokenRequest

__all__ = [
    "AccessError",
    "AccessModel",
    "AccessPolicy",
    "ArtifactoryInfo",
    "AwsIdentity",
    "Emulator",
    "IdentityMapping",
    "ManualClock",
    "OidcIssuer",
    "OidcProvider",
    "Principal",
    "RecordedRequest",
    "TokenRecord",
    "User",
    "generate_signing_key",
    "make_server_ssl_context",
    "serve_forever",
]


class Emulator:
    """One emulated JFrog Platform (Access + a few Artifactory system endpoints).

    ``admin_token`` is minted at construction (non-expiring, scope ``applied-permissions/admin``,
    user ``admin_username``) unless a credential string is given, in which case that exact string
    authenticates as the admin. Neither counts in :attr:`mint_count` or :meth:`live_token_count`.
    ``clock`` (default ``time.time``) drives issuing and expiry: pass a :class:`ManualClock` to
    move time in tests.
    """

    def __init__(
        self,
        *,
        admin_username: str = "admin",
        policy: AccessPolicy | None = None,
        ssl_context=None,  # ssl.SSLContext | None; see make_server_ssl_context
        clock: Callable[[], float] | None = None,
        issuer_id: str | None = None,
        admin_token: str | None = None,
        version: str = "7.104.5",
        signing_key=None,  # an RSA private key to reuse; a fresh RSA-2048 key when None
    ) -> None:
        self.model = AccessModel(policy, clock=clock, issuer_id=issuer_id, signing_key=signing_key)
        self.model.add_user(admin_username, admin=True)
        if admin_token:
            record = self.model.register_static_token(admin_token, admin_username, ADMIN_SCOPE)
        else:
            record = self.model.issue(admin_username, TokenRequest(scope=ADMIN_SCOPE, expires_in=0), internal=True)
        self.admin_username = admin_username
        self.admin_token: str = record.access_token
        self.admin_token_generated = not admin_token
        self.artifactory = ArtifactoryInfo(version=version, license=default_license(self.model.instance_id))
        self.aws_iam = AwsIamExchange(self.model)
        self._app = AccessApp(self.model, self.artifactory, aws_iam=self.aws_iam)
        self._faults = FaultInjector()
        self._log = RequestLog()
        self._ssl_context = ssl_context
        self.server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> "Emulator":
        """Bind (a free port when ``port=0``) and serve in a background daemon thread."""
        if self.server is not None:
            raise RuntimeError("emulator already started")
        server = EmulatorHTTPServer((host, port), self._app, self._faults, self._log, self._ssl_context)
        bound_host, bound_port = server.server_address[:2]
        if bound_host in ("0.0.0.0", ""):  # wildcard bind: advertise (and poke) loopback
            bound_host = "127.0.0.1"
        scheme = "https" if self._ssl_context is not None else "http"
        self._url = f"{scheme}://{bound_host}:{bound_port}"
        self._poke_address = (bound_host, bound_port)
        self.server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.25}, name="jfrog-access-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close kept-alive connections, join the thread. Safe to call twice."""
        server, thread = self.server, self._thread
        if server is None:
            return
        self.server = self._thread = None
        stopper = threading.Thread(target=server.shutdown, daemon=True)
        stopper.start()
        # Wake the accept loop now rather than at its next poll (keeps test teardown fast).
        while stopper.is_alive():
            try:
                socket.create_connection(self._poke_address, timeout=0.5).close()
            except OSError:
                pass
            stopper.join(0.05)
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> "Emulator":
        return self if self.server is not None else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``http://127.0.0.1:41234``."""
        if self._url is None:
            raise RuntimeError("emulator not started")
        return self._url

    @property
    def version(self) -> str:
        return self.artifactory.version

    @version.setter
    def version(self, value: str) -> None:
        self.artifactory.version = value

    # ---- setup -----------------------------------------------------------------------------

    def create_user(
        self,
        name: str,
        *,
        admin: bool = False,
        groups: Iterable[str] = (),
        password: str | None = None,
        enabled: bool = True,
    ) -> User:
        """Create (or replace) a user; ``password`` enables Basic auth for it."""
        return self.model.add_user(name, admin=admin, groups=groups, password=password, enabled=enabled)

    def create_token(
        self,
        username: str,
        *,
        scope: str = USER_SCOPE,
        expires_in: int | None = None,
        refreshable: bool = False,
        include_reference_token: bool = False,
        description: str | None = None,
        audience: str | None = None,
        project_key: str | None = None,
        force_revocable: bool = False,
    ) -> dict:
        """Mint a token without HTTP or auth checks; same dict as the HTTP answer.

        Field validation (lengths, negative expiry) still applies; expiry caps do not. A missing
        user is created when the scope is ``applied-permissions/user``. Not counted in mint_count.
        """
        params = {
            "username": username,
            "scope": scope,
            "expires_in": expires_in,
            "refreshable": refreshable,
            "include_reference_token": include_reference_token,
            "description": description,
            "audience": audience,
            "project_key": project_key,
            "force_revocable": force_revocable,
        }
        record = self.model.issue(username, TokenRequest.from_params(params))
        return token_response(record)

    def add_oidc_provider(
        self,
        name: str,
        subject_tokens: Mapping[str, str] | None = None,
        *,
        provider_type: str = "GenericOidc",
        scope: str = USER_SCOPE,
        audience: str = DEFAULT_AUDIENCE,
        expires_in: int = 3600,
        issuer: OidcIssuer | None = None,
        identity_mappings: Iterable[IdentityMapping] = (),
    ) -> OidcProvider:
        """Accept ID tokens at ``POST /access/api/v1/oidc/token``: the exact ``subject_tokens``
        (ID token -> username), and the tokens ``issuer`` signed, mapped by ``identity_mappings``
        (checked for signature, issuer and expiry against this emulator's clock).

        Users named by an identity-scoped mapping are created if missing.
        """
        mappings = tuple(identity_mappings)
        provider = OidcProvider(name, dict(subject_tokens or {}), provider_type, scope, audience, expires_in,
                                issuer=issuer, identity_mappings=mappings, clock=self.model.now)
        if USER_SCOPE in scope.split():
            for username in {*provider.subject_tokens.values(), *(m.username for m in mappings)}:
                if self.model.get_user(username) is None:
                    self.model.add_user(username)
        self.model.add_oidc_provider(provider)
        return provider

    def add_aws_identity(
        self,
        access_key_id: str,
        secret_access_key: str,
        role_arn: str,
        username: str | None,
        session_token: str | None = None,
    ) -> AwsIdentity:
        """Accept requests signed with these (test) AWS keys at ``POST /access/api/v1/aws/token``,
        as role ``role_arn`` mapped to JFrog user ``username`` (``None``: the role is not mapped).

        A mapped user that does not exist is created (non-admin).
        """
        identity = AwsIdentity(access_key_id, secret_access_key, role_arn, username, session_token)
        if username is not None and self.model.get_user(username) is None:
            self.model.add_user(username)
        self.aws_iam.add(identity)
        return identity

    # ---- faults and recording --------------------------------------------------------------

    def inject_fault(
        self,
        path: str,
        *,
        method: str | None = None,
        status: int | None = 500,
        count: int = 1,
        retry_after: float | None = None,
        stall: float | None = None,
        body: str | None = None,
        kind: str | None = None,
    ) -> None:
        """The next ``count`` requests whose path starts with ``path`` (and whose method matches,
        if given) sleep ``stall`` seconds if set, then answer ``status`` with an Access error body
        (or ``body``) and ``Retry-After`` if given. ``status=None`` with a stall: stall, then serve.
        ``kind`` (then ``status`` is ignored): ``"reset"`` closes the connection without an answer;
        ``"lost"`` serves the request, then stalls and closes it (JFrog acted, the answer is lost);
        ``"revoked"`` serves it and answers a token revoked just before; ``"fake-jwt"`` answers 200
        with a made-up JWT-shaped token; ``"garbled"`` serves it and answers its body cut short
        (``rotator.emulator.faults.FAULT_KINDS``)."""
        self._faults.add(
            path, method=method, status=status, count=count, retry_after=retry_after, stall=stall, body=body,
            kind=kind,
        )

    def clear_faults(self) -> None:
        self._faults.clear()

    @property
    def faults_taken(self) -> int:
        """Requests that met an injected fault since :meth:`start` (counted when they arrive)."""
        return self._faults.taken

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request served so far, oldest first."""
        return self._log.snapshot()

    def clear_requests(self) -> None:
        self._log.clear()

    # ---- inspection ------------------------------------------------------------------------

    @property
    def mint_count(self) -> int:
        """Tokens minted through HTTP ``POST /access/api/v1/tokens`` (create and refresh)."""
        return self.model.mint_count

    def live_token_count(self, *, description_prefix: str | None = None, username: str | None = None) -> int:
        """Tokens neither revoked nor expired, excluding the admin token."""
        return self.model.live_token_count(description_prefix=description_prefix, username=username)

    def live_token_ids(self, *, description_prefix: str | None = None) -> set[str]:
        """The ids of the live tokens (neither revoked nor expired, the admin token excluded) whose
        description starts with ``description_prefix``: what an orphan check compares with the stores."""
        return self.model.live_token_ids(description_prefix=description_prefix)

    def connection_count(self) -> int:
        """TCP connections accepted since :meth:`start` (1 after many requests = keep-alive works)."""
        if self.server is None:
            raise RuntimeError("emulator not started")
        return self.server.accepted_count

    def is_token_active(self, token_id: str) -> bool:
        return self.model.is_token_active(token_id)

    def issued_values(self) -> list[str]:
        """Every access, reference and refresh token value issued so far, the admin token's too,
        revoked and expired ones included: what a test checks no output ever shows."""
        return self.model.issued_values()

    def authenticates(self, token_value: str) -> bool:
        """Would this bearer value (JWT, reference token or credential) be accepted now?"""
        return self.model.authenticates(token_value)


def serve_forever(
    host: str, port: int, admin_token: str | None = None, print_fn: Callable[[str], object] = print
) -> int:
    """Run an emulator in the foreground until Ctrl-C or SIGTERM (``jfrog-rotator emulator``).

    Prints one line with the URL. The admin token is printed (once, to stdout) only when it was
    generated here, because the user has no other way to learn it; a token passed in via
    ``admin_token`` is never echoed. Returns 0 after a clean stop.
    """
    emulator = Emulator(admin_token=admin_token).start(host, port)
    stopped = threading.Event()
    installed, previous = False, None
    try:
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: stopped.set())
        installed = True
    except ValueError:  # not the main thread: rely on KeyboardInterrupt / the caller
        pass
    try:
        print_fn(f"JFrog Access emulator listening on {emulator.url}")
        if emulator.admin_token_generated:
            print_fn(f"admin token: {emulator.admin_token}")
        sys.stdout.flush()  # a parent process reading our stdout through a pipe needs the line now
        while not stopped.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
        if installed:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
    return 0
