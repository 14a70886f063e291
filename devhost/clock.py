"""The engine's clock interface, and the real clock that implements it.

The engine asks a clock two things: what time it is, and to be called back at a moment (the
durable timers). A test clock (`devhost.testing.VirtualClock`) answers both from time that only
moves when a test says so; the engine cannot tell the difference.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol


class Wakeup(Protocol):
    """A callback booked with `Clock.call_at`; `cancel()` unbooks it."""

    def cancel(self) -> None: ...


class Clock:
    """Wall-clock time, and callbacks on the running event loop."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def call_at(self, moment: datetime, callback: Callable[[], None]) -> Wakeup:
        """Call `callback` on the running loop once `moment` has come (at once if it has)."""
        delay = max((moment - self.now()).total_seconds(), 0.0)
        return asyncio.get_running_loop().call_later(delay, callback)
