"""Keep credentials out of everything latlab writes.

Secrets reach latlab only through the environment and credential files. Whatever a
provider echoes back (an error body quoting a header, an exception message) passes
through ``redact`` before it is written (``clip`` redacts, then truncates): every value of a
secret-named environment variable, every credential latlab resolved and sends (``remember``:
a custom ``provider.api_key_env``, AWS keys from any source, OAuth tokens), any piece of 8 or
more characters of one of those, and anything shaped like a known key becomes ``[REDACTED]``.

``CREDENTIAL_NAME`` (the end of a key, header, variable or query parameter name) is the one
list of credential-looking names: config keys, overrides and URL queries are refused by it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

from latlab.runner.core.protocol import DUMMY_KEY

CREDENTIAL_NAME = re.compile(
    r"(api[_-]?key|apikey|secret|secret[_-]?key|access[_-]?key|session[_-]?key|private[_-]?key"
    r"|token|password|passwd|pwd|credentials?|authorization|auth|signature|sig|bearer|cookie)$",
    re.IGNORECASE)
SECRET_ENV_NAME = re.compile(r"(KEY|SECRET|TOKEN|PASSWORD|CREDENTIAL|AUTH|BEARER)", re.IGNORECASE)
KEY_SHAPES = re.compile(
    r"(sk-ant-[A-Za-z0-9_\-]{8,}|sk-[A-Za-z0-9_\-]{16,}|(?:AKIA|ASIA)[A-Z0-9]{12,}"
    r"|Bearer\s+[A-Za-z0-9._\-~+/=]{8,}|ya29\.[A-Za-z0-9._\-]{8,}|ABSK[A-Za-z0-9+/=]{16,})")
NOT_SECRET_ENV = re.compile(r"_(FILE|PATH|DIR|SOCK|URL|HOST|PORT|REGION|PROFILE|NAME|ID|ENV)$",
                            re.IGNORECASE)
MASK = "[REDACTED]"
MIN_PIECE = 8
ERROR_CHARS = 300
_known: set[str] = set()


# What latlab itself sends to the emulator or a keyless local server: no secret, and its
# pieces ("emulator") are ordinary words that must never be refused or masked.
PLACEHOLDERS = frozenset({DUMMY_KEY, "dummy-secret"})


def remember(*values: object) -> None:
    """Credentials latlab resolved and will send: redacted wherever they appear, whatever
    environment variable or file they came from (this process; workers remember their own)."""
    _known.update(v for v in values if isinstance(v, str) and len(v) >= MIN_PIECE
                  and v not in PLACEHOLDERS)


def remember_endpoints(endpoints: Iterable[Any]) -> None:
    """The key and the credentials (AWS secret key and session token, a bearer token) of
    every endpoint a run sends to, whatever variable or file they were read from."""
    for endpoint in endpoints:
        if getattr(endpoint, "emulated", False):
            continue
        creds: Any = getattr(endpoint, "credentials", None)
        frozen = creds.get_frozen_credentials() if hasattr(creds, "get_frozen_credentials") \
            else creds
        remember(getattr(endpoint, "api_key", None), getattr(frozen, "secret_key", None),
                 getattr(frozen, "token", None))


def is_secret_env(name: str, value: str) -> bool:
    """A secret-named variable holding a value, not a path or a setting about credentials
    (``AWS_SHARED_CREDENTIALS_FILE``, ``SSH_AUTH_SOCK``, ``AWS_ACCESS_KEY_ID``)."""
    return (bool(SECRET_ENV_NAME.search(name)) and not NOT_SECRET_ENV.search(name)
            and len(value) >= MIN_PIECE and not value.startswith(("/", "~", "./")))


def secret_values() -> list[str]:
    """Remembered credentials and values of secret-named environment variables (8+
    characters), longest first."""
    values = {v for k, v in os.environ.items() if is_secret_env(k, v)}
    return sorted(values | _known, key=len, reverse=True)


def _pieces(values: Iterable[str]) -> dict[str, list[str]]:
    """Every 8-character window of every secret → the secrets it occurs in."""
    windows: dict[str, list[str]] = {}
    for value in values:
        for i in range(len(value) - MIN_PIECE + 1):
            windows.setdefault(value[i:i + MIN_PIECE], []).append(value)
    return windows


def _longest_piece(text: str, start: int, candidates: list[str]) -> int:
    """Length of the longest piece of a candidate secret that starts ``text[start:]``."""
    best = MIN_PIECE
    for value in candidates:
        at = value.find(text[start:start + MIN_PIECE])
        while at >= 0:
            length = MIN_PIECE
            while (start + length < len(text) and at + length < len(value)
                   and text[start + length] == value[at + length]):
                length += 1
            best = max(best, length)
            at = value.find(text[start:start + MIN_PIECE], at + 1)
    return best


def _mask_pieces(text: str, values: Iterable[str]) -> str:
    windows = _pieces(values)
    if not windows:
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        candidates = windows.get(text[i:i + MIN_PIECE])
        if candidates is None:
            out.append(text[i])
            i += 1
            continue
        out.append(MASK)
        i += _longest_piece(text, i, candidates)
    return "".join(out)


def redact(text: str | None, values: list[str] | None = None) -> str | None:
    """``text`` with every known secret, any 8+ character piece of one, and every
    key-shaped string masked."""
    if not text:
        return text
    text = _mask_pieces(text, secret_values() if values is None else values)
    return KEY_SHAPES.sub(MASK, text)


def clip(text: str, limit: int = ERROR_CHARS) -> str:
    """An error message to store: redacted first, then cut to ``limit`` characters (cutting
    first could leave a secret's head or tail that no longer matches the whole secret)."""
    return (redact(text) or "")[:limit]
