"""Durable timers in memory: the store keeps them in history; this fires them when due."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from ..clock import Clock

TimerKey = tuple[str, str, int]  # instance id, execution id, timer id


class Schedule(Protocol):
    """Timed work outside the engine on the same clock (timer triggers), advanced with it."""

    def next_due(self) -> datetime | None: ...

    async def fire_due(self, now: datetime) -> int: ...


class TimerService:
    """A heap of due times. On the real clock a task sleeps until the earliest one; on the
    virtual clock nothing fires until the engine advances time."""

    def __init__(self, clock: Clock, on_fire: Callable[[TimerKey, datetime], None]) -> None:
        self._clock = clock
        self._on_fire = on_fire
        self._heap: list[tuple[datetime, int, TimerKey]] = []
        self._live: dict[TimerKey, datetime] = {}
        self._order = itertools.count()
        self._changed = asyncio.Event()

    def arm(self, key: TimerKey, due: datetime) -> None:
        self._live[key] = due
        heapq.heappush(self._heap, (due, next(self._order), key))
        self._changed.set()

    def cancel(self, key: TimerKey) -> None:
        self._live.pop(key, None)

    def cancel_instance(self, instance_id: str) -> None:
        for key in [k for k in self._live if k[0] == instance_id]:
            del self._live[key]

    def next_due(self) -> datetime | None:
        while self._heap:
            due, _, key = self._heap[0]
            if self._live.get(key) == due:
                return due
            heapq.heappop(self._heap)
        return None

    def fire_due(self, now: datetime) -> int:
        """Fire every timer due by `now`, earliest first; how many fired."""
        fired = 0
        while (due := self.next_due()) is not None and due <= now:
            _, _, key = heapq.heappop(self._heap)
            del self._live[key]
            self._on_fire(key, due)
            fired += 1
        return fired

    async def run(self) -> None:
        """Real-clock loop: wake at the earliest due time, or when an earlier timer is armed."""
        while True:
            self._changed.clear()
            due = self.next_due()
            if due is None:
                await self._changed.wait()
                continue
            delay = (due - self._clock.now()).total_seconds()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), delay)
                continue
            self.fire_due(self._clock.now())
