"""Captured request bodies (``workload.capture_bodies``): the one provider-neutral form of a
request kept in a row's ``request_body`` and replayed by ``workload=replay``.

Only what makes the call (``model``, ``max_tokens``, ``system``, ``tools``, ``messages``) is
kept, as JSON, with every secret value and key-shaped string masked (core/secrets.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from latlab.runner.core.secrets import redact

BODY_KEYS = ("model", "max_tokens", "system", "tools", "messages")


def body_json(body: Mapping[str, Any]) -> str:
    """The kept keys of ``body`` (missing ones null), as redacted JSON."""
    return redact(json.dumps({k: body.get(k) for k in BODY_KEYS}, ensure_ascii=False)) or ""
