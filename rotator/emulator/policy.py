"""The token settings of the emulated platform (``access.config``), checked once at construction.

JFrog's page: https://jfrog.com/help/r/jfrog-rest-apis/recommended-configurations; how the
emulator applies each knob is in docs/emulator.md.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class AccessPolicy:
    """The ``access.config`` token knobs.

    * ``default_expiry``: lifetime when ``expires_in`` is omitted; 0 = non-expiring.
    * ``max_expiry``: 0 = not set. Non-admins are capped at ``max_expiry`` when set, otherwise at
      ``default_expiry`` (the CLI/docs rule), and may not ask for non-expiring tokens while any cap
      applies. Admins are never capped. ``max_expiry`` must be >= ``default_expiry`` when set.
    * ``allow_refreshable``: when False, ``refreshable`` is silently ignored.
    * ``revocable_expiry_threshold``: tokens living shorter than this are not revocable unless
      created with ``force_revocable``.
    * ``persistency_threshold``: ``persistent-expiry-threshold``
      (https://jfrog.com/help/r/jfrog-platform-administration-documentation/persistency-threshold):
      tokens living shorter than this are never stored, so listing, getting and revoking them by
      id find nothing (they still authenticate until they expire); 0 stores every token. Like
      Access at start-up, a value above a positive ``revocable_expiry_threshold`` is lowered to it
      (https://jfrog.com/help/r/jfrog-platform-administration-documentation/relationship-between-the-two-thresholds).
    * ``refresh_grace``: ``token.refresh-expiry``: seconds after expiry during which a token can
      still be refreshed (and may authenticate its own refresh request).
    * ``allow_basic_token_creation``: "Enable Token Generation via API" for username+password.
    * ``track_last_used``: report ``last_used`` in token listings (7.108.3+, off by default).
    * ``artifactory_anonymous_access``: let unauthenticated calls read ``api/system/version``.
    """

    default_expiry: int = 31_536_000
    max_expiry: int = 0
    allow_refreshable: bool = True
    revocable_expiry_threshold: int = 21_600
    persistency_threshold: int = 10_800
    refresh_grace: int = 86_400
    allow_basic_token_creation: bool = False
    track_last_used: bool = False
    artifactory_anonymous_access: bool = False

    def __post_init__(self) -> None:
        for name in ("default_expiry", "max_expiry", "revocable_expiry_threshold", "persistency_threshold",
                     "refresh_grace"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.max_expiry and self.default_expiry > self.max_expiry:
            raise ValueError("max_expiry must be >= default_expiry (or 0)")
        if 0 < self.revocable_expiry_threshold < self.persistency_threshold:
            self.persistency_threshold = self.revocable_expiry_threshold  # an unstored token cannot be revocable

    def persists(self, lifetime: int) -> bool:
        """Whether Access stores a token of this lifetime (0: non-expiring, always stored)."""
        return lifetime == 0 or lifetime >= self.persistency_threshold

    @property
    def non_admin_cap(self) -> int:
        """Longest lifetime a non-admin may request; 0 means unlimited (non-expiring allowed)."""
        return self.max_expiry or self.default_expiry
