"""Starts a client scheduled for later: the instance waits, Pending, until its start time.

A Durable Task client may give a start time (`scheduledStartTimestamp`). The instance is created
at once (its record and start message are stored, so a client sees it Pending), and its first
episode runs once the clock passes that time. Nothing else is stored for the wait: the time is
in the stored start message, so after a restart the loaded instance books its wake-up again.
The 1.x SDK gives no start time, and its starts run at once, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ..clock import Clock
from ..taskhub.history import EventType, start_options
from .instances import Orchestration


class ScheduledStarts:
    """Holds back the first episode of instances whose start time has not come.

    The wake-up is kept on the `Orchestration` it wakes: an instance started again with the
    same id is a new object and books its own, and evicting an instance cancels its wake-up.
    """

    def __init__(self, clock: Clock, notify: Callable[[Orchestration], None]) -> None:
        self.clock = clock
        self.notify = notify

    def not_yet(self, orch: Orchestration) -> bool:
        """Whether the instance must wait for its start time; if so, a wake-up is booked then."""
        if orch.planner.started:
            return False
        due = self._start_time(orch)
        if due is None or due <= self.clock.now():
            return False
        if orch.start_wakeup is None:
            orch.start_wakeup = self.clock.call_at(due, lambda: self._due(orch))
        return True

    def _due(self, orch: Orchestration) -> None:
        orch.start_wakeup = None
        self.notify(orch)

    @staticmethod
    def _start_time(orch: Orchestration) -> datetime | None:
        """The start time of the current execution's start message, if it has one."""
        for message in orch.inbox:
            evt = message.event
            if (
                evt["EventType"] == EventType.ExecutionStarted
                and message.execution_id == orch.record.execution_id
            ):
                return start_options(evt).scheduled_start
        return None
