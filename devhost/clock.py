"""Clocks: the real one, and a virtual one that only moves when a test advances it."""

from __future__ import annotations

from datetime import UTC, datetime


class Clock:
    """The engine's only source of time: orchestration timestamps, timers, created times."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class VirtualClock(Clock):
    """Time stands still until `set` moves it forward; timers fire as the engine advances it."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        if moment > self._now:
            self._now = moment
