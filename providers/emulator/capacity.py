"""Capacity: how many requests a model serves at once, and what happens to the rest.

A profile's optional ``capacity`` section gives each model family a number of concurrent
slots (a request holds one from admission until its last byte is sent), a FIFO queue of
bounded length for requests that find every slot busy (their wait is added before the
response headers, so it lands in TTFB, TTFT and total alike), and the answer beyond the
queue: HTTP 529 ``overloaded_error`` or 429 ``rate_limit_error``, sent at once.

YAML (one setting for every family, each family its own pool)::

    capacity: {slots: 8, max_queue: 32, reject: overloaded}

or per family (substring of the model id, ``default`` for the rest; no entry = unlimited)::

    capacity:
      haiku: {slots: 16, max_queue: 64}
      default: {slots: 4, max_queue: 8, reject: rate_limited}
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

REJECT_KINDS = ("overloaded", "rate_limited")  # 529, 429
_LIMIT_KEYS = ("slots", "max_queue", "reject")


def match_family(entries: Mapping[str, Any], model_id: str) -> str | None:
    """The first key (not ``default``) that is a substring of ``model_id``, else ``default``."""
    lowered = model_id.lower()
    for key in entries:
        if key != "default" and key.lower() in lowered:
            return key
    return "default" if "default" in entries else None


@dataclass(frozen=True)
class CapacityLimit:
    """Concurrent slots, queue bound and the rejection kind of one model family."""

    slots: int
    max_queue: int = 0
    reject: str = "overloaded"

    def __post_init__(self) -> None:
        if self.slots < 1:
            raise ValueError(f"capacity.slots must be >= 1, got {self.slots}")
        if self.max_queue < 0:
            raise ValueError(f"capacity.max_queue must be >= 0, got {self.max_queue}")
        if self.reject not in REJECT_KINDS:
            raise ValueError(f"capacity.reject must be one of {', '.join(REJECT_KINDS)}, "
                             f"got {self.reject!r}")

    @classmethod
    def parse(cls, value: Any, where: str) -> CapacityLimit:
        if not isinstance(value, Mapping) or "slots" not in value:
            raise ValueError(f"{where}: expected {{slots, max_queue, reject}}, got {value!r}")
        extra = set(value) - set(_LIMIT_KEYS)
        if extra:
            raise ValueError(f"{where}: unknown keys {sorted(extra)}")
        return cls(int(value["slots"]), int(value.get("max_queue", 0)),
                   str(value.get("reject", "overloaded")))


@dataclass(frozen=True)
class CapacityProfile:
    """Limits per model family (empty: unlimited, the default)."""

    limits: dict[str, CapacityLimit] = field(default_factory=dict)

    @classmethod
    def parse(cls, value: Any, where: str = "capacity") -> CapacityProfile:
        if value is None:
            return cls()
        if not isinstance(value, Mapping):
            raise ValueError(f"{where}: expected a mapping, got {value!r}")
        if "slots" in value:
            return cls({"default": CapacityLimit.parse(value, where)})
        return cls({str(k): CapacityLimit.parse(v, f"{where}.{k}") for k, v in value.items()})


class CapacityPool:
    """Slots of one model family: FIFO hand-over, bounded queue. Lives on the server's loop."""

    def __init__(self, limit: CapacityLimit) -> None:
        self.limit = limit
        self.active = 0
        self.waiters: deque[asyncio.Future[None]] = deque()

    async def enter(self) -> bool:
        """Take a slot (waiting in line if all are busy); False when the queue is full."""
        if self.active < self.limit.slots and not self.waiters:
            self.active += 1
            return True
        if len(self.waiters) >= self.limit.max_queue:
            return False
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            self._abandon(waiter)
            raise
        return True

    def _abandon(self, waiter: asyncio.Future[None]) -> None:
        """A waiter gave up: leave the line, or pass on a slot it was handed meanwhile."""
        if waiter in self.waiters:
            self.waiters.remove(waiter)
        elif waiter.done() and not waiter.cancelled():
            self.leave()

    def leave(self) -> None:
        """Give the slot to the first in line, or free it."""
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.active -= 1


@dataclass
class Admission:
    """The outcome of arriving at a pool: admitted (after ``queue_ms``) or rejected."""

    pool: CapacityPool | None
    admitted: bool
    queue_ms: float = 0.0
    reject: str | None = None

    @property
    def queue_ns(self) -> int:
        return round(self.queue_ms * 1e6)

    def release(self) -> None:
        if self.pool is not None and self.admitted:
            self.pool.leave()
            self.pool = None


class Capacity:
    """The pools of one emulator, created on first use per model family."""

    def __init__(self, profile: CapacityProfile) -> None:
        self.profile = profile
        self.pools: dict[str, CapacityPool] = {}
        self.queued = 0
        self.rejected = 0

    def pool_for(self, model_id: str) -> CapacityPool | None:
        family = match_family(self.profile.limits, model_id)
        if family is None:
            return None
        if family not in self.pools:
            self.pools[family] = CapacityPool(self.profile.limits[family])
        return self.pools[family]

    async def admit(self, model_id: str) -> Admission:
        """Wait for a slot of ``model_id``'s family; an unlimited family admits at once."""
        pool = self.pool_for(model_id)
        if pool is None:
            return Admission(None, True)
        start = time.perf_counter_ns()
        must_wait = pool.active >= pool.limit.slots or bool(pool.waiters)
        if not await pool.enter():
            self.rejected += 1
            return Admission(None, False, reject=pool.limit.reject)
        self.queued += must_wait
        waited_ms = (time.perf_counter_ns() - start) / 1e6 if must_wait else 0.0
        return Admission(pool, True, waited_ms)

    def snapshot(self) -> dict[str, Any]:
        return {"queued": self.queued, "rejected": self.rejected,
                "active": {k: p.active for k, p in self.pools.items()},
                "waiting": {k: len(p.waiters) for k, p in self.pools.items()}}
