"""Keep credentials out of everything latlab writes.

Secrets reach latlab only through the environment and credential files. Whatever a
provider echoes back (an error body quoting a header, an exception message) passes
through ``redact`` before it is written: every value of a secret-named environment
variable, and anything shaped like a known key, becomes ``[REDACTED]``.
"""

from __future__ import annotations

import os
import re

SECRET_ENV_NAME = re.compile(r"(KEY|SECRET|TOKEN|PASSWORD|CREDENTIAL)", re.IGNORECASE)
KEY_SHAPES = re.compile(
    r"(sk-ant-[A-Za-z0-9_\-]{8,}|sk-[A-Za-z0-9_\-]{16,}|(?:AKIA|ASIA)[A-Z0-9]{12,}"
    r"|Bearer\s+[A-Za-z0-9._\-]{8,}|ya29\.[A-Za-z0-9._\-]{8,})")
MASK = "[REDACTED]"


def secret_values() -> list[str]:
    """Values of secret-named environment variables (8+ characters), longest first."""
    values = {v for k, v in os.environ.items() if SECRET_ENV_NAME.search(k) and len(v) >= 8}
    return sorted(values, key=len, reverse=True)


def redact(text: str | None, values: list[str] | None = None) -> str | None:
    """``text`` with every known secret value and key-shaped string masked."""
    if not text:
        return text
    for value in secret_values() if values is None else values:
        text = text.replace(value, MASK)
    return KEY_SHAPES.sub(MASK, text)
