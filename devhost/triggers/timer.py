"""Timer triggers: each function's next occurrence, fired when the clock reaches it.

Time comes only from the `Clock`: one wake-up is booked with `Clock.call_at` for the earliest
occurrence, as the engine books its durable timers, so on a test's virtual clock the functions
fire in order with the durable timers as the test advances time.

As the host, devhost keeps each schedule's status (last and next occurrence) in the storage
account, under `azure-webjobs-hosts/timers/<host id>/<function>/status`, when the schedule is
a minute or longer apart (or `useMonitor` says so): a host that starts after a missed
occurrence runs the function at once with `IsPastDue` true. `runOnStartup` runs it once at start.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import azure.functions as func
from azure.functions import meta

from ..app.app_index import FunctionInfo
from ..app.binding_expressions import expand_settings
from ..clock import Clock, Wakeup
from .ncrontab import Schedule, ScheduleError, parse_schedule
from .timer_status import ScheduleStatusStore

log = logging.getLogger("devhost.timer")

MONITOR_MIN_INTERVAL = timedelta(minutes=1)

Invoke = Callable[[FunctionInfo, Any], Awaitable[Any]]


def schedule_of(info: FunctionInfo) -> Schedule:
    """The function's schedule, `%SETTING%` expanded; a bad one raises ScheduleError."""
    return parse_schedule(expand_settings(str(info.trigger.get("schedule", ""))))


def timer_request(past_due: bool, last: datetime | None, next_: datetime) -> func.TimerRequest:
    """The TimerRequest the function gets, decoded by the library's own converter."""
    status = {
        "Last": (last or datetime.min).isoformat(),
        "Next": next_.isoformat(),
        "LastUpdated": (last or next_).isoformat(),
    }
    payload = {"Schedule": {"AdjustForDST": True}, "ScheduleStatus": status, "IsPastDue": past_due}
    converter = meta.get_binding_registry().get("timerTrigger")
    return converter.decode(meta.Datum(json.dumps(payload), "json"), trigger_metadata=None)


@dataclass
class TimerEntry:
    info: FunctionInfo
    schedule: Schedule
    next: datetime
    last: datetime | None = None
    monitored: bool = False


def _next(entry: TimerEntry) -> datetime:
    return entry.next


class TimerTriggers:
    """The app's timer functions on one clock."""

    def __init__(
        self,
        functions: dict[str, FunctionInfo],
        clock: Clock,
        invoke: Invoke,
        status: ScheduleStatusStore,
        run_blocking: Callable[..., Awaitable[Any]],
    ) -> None:
        self.clock = clock
        self.invoke = invoke
        self.status = status
        self.run_blocking = run_blocking  # status I/O goes to the executor, off the loop
        now = clock.now()
        self.entries = []
        for info in functions.values():
            try:
                schedule = schedule_of(info)
            except ScheduleError as err:
                raise ScheduleError(f"function {info.name}: {err}") from None
            first = schedule.next_after(now)
            use_monitor = info.trigger.get("useMonitor")
            monitored = (
                schedule.next_after(first) - first >= MONITOR_MIN_INTERVAL
                if use_monitor is None
                else str(use_monitor).lower() == "true"
            )
            self.entries.append(TimerEntry(info, schedule, first, monitored=monitored))
        self._wakeup: Wakeup | None = None
        self._firing: set[asyncio.Task] = set()

    async def start(self) -> None:
        """Past-due and run-on-startup invocations, then a wake-up booked on the clock for the
        earliest occurrence (a test's virtual clock calls it when the test advances time)."""
        now = self.clock.now()
        for entry in self.entries:
            known = (
                await self.run_blocking(self.status.load, entry.info.name)
                if entry.monitored
                else None
            )
            missed = known is not None and datetime.fromisoformat(known["Next"]) < now
            on_startup = str(entry.info.trigger.get("runOnStartup", False)).lower() == "true"
            if missed or on_startup:
                await self._fire(entry, past_due=bool(missed), scheduled=False)
            elif entry.monitored:
                await self._save(entry)
        self._book()

    async def stop(self) -> None:
        if self._wakeup is not None:
            self._wakeup.cancel()
        for task in list(self._firing):
            task.cancel()
        await asyncio.gather(*self._firing, return_exceptions=True)

    @property
    def busy(self) -> bool:
        return bool(self._firing)

    async def wait_idle(self) -> None:
        """Until no timer function that came due is still running."""
        while self._firing:
            await asyncio.wait(set(self._firing))

    def next_due(self) -> datetime | None:
        return min((e.next for e in self.entries), default=None)

    async def fire_due(self, now: datetime) -> int:
        """Run every function whose occurrence has come, earliest first; how many ran."""
        fired = 0
        while (entry := min(self.entries, key=_next, default=None)) and entry.next <= now:
            await self._fire(entry, past_due=False)
            fired += 1
        return fired

    async def _fire(self, entry: TimerEntry, past_due: bool, scheduled: bool = True) -> None:
        """Run the function; a scheduled run moves on to the next occurrence, a start-up run
        (runOnStartup, or a missed occurrence) leaves the coming one in place."""
        due = entry.next
        request = timer_request(past_due, entry.last, due)
        try:
            await self.invoke(entry.info, request)
        except Exception:
            log.exception("Timer function '%s' failed", entry.info.name)
        entry.last = self.clock.now()
        if scheduled:
            entry.next = entry.schedule.next_after(max(due, entry.last))
        if entry.monitored:
            await self._save(entry)

    async def _save(self, entry: TimerEntry) -> None:
        now = self.clock.now()
        status = {
            "Last": (entry.last or now).isoformat(),
            "Next": entry.next.isoformat(),
            "LastUpdated": now.isoformat(),
        }
        try:
            await self.run_blocking(self.status.save, entry.info.name, status)
        except Exception:  # noqa: BLE001 - a lost status only costs a past-due run
            log.warning("Timer '%s': could not save its schedule status", entry.info.name)

    def _book(self) -> None:
        due = self.next_due()
        self._wakeup = None if due is None else self.clock.call_at(due, self._wake)

    def _wake(self) -> None:
        task = asyncio.get_running_loop().create_task(self._fire_and_book())
        self._firing.add(task)
        task.add_done_callback(self._firing.discard)

    async def _fire_and_book(self) -> None:
        await self.fire_due(self.clock.now())
        self._book()

    def describe(self, info: FunctionInfo) -> str:
        entry = next(e for e in self.entries if e.info is info)
        when = f"{entry.next:%Y-%m-%d %H:%M:%S}Z"
        return f"timerTrigger (schedule {entry.schedule.expression}, next {when})"
