"""Durable timers in memory: the store keeps them in history; this fires them when due."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from datetime import datetime

from ..clock import Clock, Wakeup

TimerKey = tuple[str, str, int]  # instance id, execution id, timer id


class TimerService:
    """A heap of due times, with one wake-up booked on the clock for the earliest of them."""

    def __init__(self, clock: Clock, on_fire: Callable[[TimerKey, datetime], None]) -> None:
        self._clock = clock
        self._on_fire = on_fire
        self._heap: list[tuple[datetime, int, TimerKey]] = []
        self._live: dict[TimerKey, datetime] = {}
        self._order = itertools.count()
        self._wakeup: Wakeup | None = None
        self._wakeup_at: datetime | None = None

    def arm(self, key: TimerKey, due: datetime) -> None:
        self._live[key] = due
        heapq.heappush(self._heap, (due, next(self._order), key))
        if self._wakeup_at is None or due < self._wakeup_at:
            self._book(due)

    def cancel(self, key: TimerKey) -> None:
        self._live.pop(key, None)

    def cancel_instance(self, instance_id: str) -> None:
        for key in [k for k in self._live if k[0] == instance_id]:
            del self._live[key]

    def close(self) -> None:
        """Stop waking up (the engine is stopping); armed timers stay in history."""
        if self._wakeup is not None:
            self._wakeup.cancel()
        self._wakeup = self._wakeup_at = None

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

    def _book(self, due: datetime) -> None:
        if self._wakeup is not None:
            self._wakeup.cancel()
        self._wakeup_at = due
        self._wakeup = self._clock.call_at(due, self._wake)

    def _wake(self) -> None:
        self._wakeup = self._wakeup_at = None
        self.fire_due(self._clock.now())
        due = self.next_due()
        if due is not None:
            self._book(due)
