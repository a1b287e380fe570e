"""Read the HTTP environment once per session instead of on every request.

A default :class:`requests.Session` looks up proxy variables and ``~/.netrc`` on every request
(about 1 ms each) and lets ``$REQUESTS_CA_BUNDLE`` override a session's ``verify`` setting, even
``False`` (psf/requests#3829). Sessions that talk to one base URL do it once here instead.
"""

from __future__ import annotations

import logging
import os
import threading

import requests


def pin_environment(session: requests.Session, url: str) -> None:
    """Apply the proxy settings for ``url`` now and stop per-request environment lookups.

    ``~/.netrc`` is never consulted afterwards: credentials come from our configuration only.
    """
    session.trust_env = False
    session.proxies = {**requests.utils.get_environ_proxies(url), **(session.proxies or {})}


def default_verify() -> bool | str:
    """What requests would verify with by default: ``$REQUESTS_CA_BUNDLE``, ``$CURL_CA_BUNDLE``, or True."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True


_warned_verify_off: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


def warn_verify_off(logger: logging.Logger, setting: str, url: str, message: str, *args: object) -> None:
    """Log ``message``, a warning that TLS verification is off, once per process for ``setting`` and
    ``url`` (a daemon makes new clients at each reload; the warning said once is enough)."""
    with _warned_lock:
        if (setting, url) in _warned_verify_off:
            return
        _warned_verify_off.add((setting, url))
    logger.warning(message, *args)
