"""A clock for tests: time stands still until the test moves it, and callbacks booked on it run
as it passes their moments. The engine sees only the `Clock` interface."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..clock import Clock


@dataclass
class _Booking:
    callback: Callable[[], None]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class VirtualClock(Clock):
    """`now()` is `start` until `move_to` moves it; `call_at` books callbacks on that time.

    Args:
        start: the time it shows until moved (default: the wall clock's time at creation).
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)
        self._booked: list[tuple[datetime, int, _Booking]] = []
        self._order = itertools.count()

    def now(self) -> datetime:
        return self._now

    def call_at(self, moment: datetime, callback: Callable[[], None]) -> _Booking:
        booking = _Booking(callback)
        heapq.heappush(self._booked, (moment, next(self._order), booking))
        return booking

    def next_wakeup(self) -> datetime | None:
        """The earliest moment a callback is booked for, or None."""
        while self._booked and self._booked[0][2].cancelled:
            heapq.heappop(self._booked)
        return self._booked[0][0] if self._booked else None

    def move_to(self, moment: datetime) -> int:
        """Move forward to `moment` (never back), running the callbacks due on the way in order,
        each at its own moment; how many ran."""
        ran = 0
        while (due := self.next_wakeup()) is not None and due <= moment:
            _, _, booking = heapq.heappop(self._booked)
            self._now = max(self._now, due)
            booking.callback()
            ran += 1
        self._now = max(self._now, moment)
        return ran


def step_of(
    delta: timedelta | None, days: float, hours: float, minutes: float, seconds: float
) -> timedelta:
    """How far an `advance(...)` call moves: a timedelta, or days, hours, minutes, seconds."""
    return (delta or timedelta()) + timedelta(
        days=days, hours=hours, minutes=minutes, seconds=seconds
    )


async def advance_through(
    clock: VirtualClock, step: timedelta, settle: Callable[[], Awaitable[None]]
) -> None:
    """Move the clock `step` forward, firing timers in order of their due times and letting
    the work they start settle after each, so that no timer is passed over."""
    target = clock.now() + step
    await settle()
    while (due := clock.next_wakeup()) is not None and due <= target:
        clock.move_to(due)
        await settle()
    clock.move_to(target)
