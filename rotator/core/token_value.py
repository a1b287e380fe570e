"""The JFrog token held in a secret that is not (necessarily) one of our records: the admin
secret of the Lambda (``JFROG_ADMIN_SECRET_ARN``, docs/aws-lambda.md) and of
``jfrog.access_token_from`` (docs/configuration.md)."""

from __future__ import annotations

import json


def token_in(text: str | None) -> str | None:
    """The token in ``text``: the whole stripped value, or ``access_token`` (our records) / ``token``
    of a JSON object; ``None`` when there is none."""
    value = (text or "").strip()
    if value.startswith(("{", "[")):  # JSON; only an object can name its token
        try:
            data = json.loads(value)
        except ValueError:
            return None
        token = data.get("access_token") or data.get("token") if isinstance(data, dict) else None
        return token if isinstance(token, str) and token.strip() else None
    return value or None
