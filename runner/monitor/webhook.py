"""Firing and resolved burn-rate alerts, posted in Alertmanager's webhook JSON (version 4), so
a receiver written for Alertmanager takes latlab's alerts unchanged."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt of an alert still firing


@dataclass(frozen=True)
class AlertEvent:
    """One alert instance: its labels identify it, the annotations say why."""

    labels: Mapping[str, str]
    summary: str

    @property
    def fingerprint(self) -> str:
        text = json.dumps(dict(sorted(self.labels.items())))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _alert(event: AlertEvent, status: str, starts: str, ends: str) -> dict[str, Any]:
    return {"status": status, "labels": dict(event.labels),
            "annotations": {"summary": event.summary}, "startsAt": starts, "endsAt": ends,
            "generatorURL": "", "fingerprint": event.fingerprint}


def payload(alerts: list[dict[str, Any]], status: str, receiver: str) -> dict[str, Any]:
    """Alertmanager's webhook body for ``alerts`` (each from :func:`_alert`)."""
    common = set.intersection(*(set(a["labels"].items()) for a in alerts)) if alerts else set()
    return {"version": "4", "groupKey": f'{{}}:{{monitor="{receiver}"}}', "truncatedAlerts": 0,
            "status": status, "receiver": receiver, "groupLabels": {"monitor": receiver},
            "commonLabels": dict(common), "commonAnnotations": {}, "externalURL": "",
            "alerts": alerts}


@dataclass
class AlertTracker:
    """What fired in the last evaluation; each evaluation gives the bodies to post."""

    receiver: str
    started: dict[str, tuple[AlertEvent, str]] = field(default_factory=dict)

    def update(self, firing: Iterable[AlertEvent]) -> list[dict[str, Any]]:
        """Bodies for newly firing and newly resolved alerts (none when nothing changed)."""
        now = _now()
        current = {e.fingerprint: e for e in firing}
        new = [e for key, e in current.items() if key not in self.started]
        gone = [self.started.pop(k) for k in list(self.started) if k not in current]
        for event in new:
            self.started[event.fingerprint] = (event, now)
        bodies = []
        if new:
            bodies.append(payload([_alert(e, "firing", now, ZERO_TIME) for e in new],
                                  "firing", self.receiver))
        if gone:
            bodies.append(payload([_alert(e, "resolved", s, now) for e, s in gone],
                                  "resolved", self.receiver))
        return bodies


def post(url: str, body: Mapping[str, Any], timeout_s: float = 5.0) -> str | None:
    """POST one body; None when delivered, else why not (the monitor warns and goes on)."""
    try:
        response = httpx.post(url, json=dict(body), timeout=timeout_s)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if response.is_success else f"HTTP {response.status_code}"
