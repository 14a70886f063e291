"""host.json's `functionTimeout`, applied as the Functions host applies it.

An invocation that runs past the limit fails with the host's own message ("Timeout value of
00:00:05 was exceeded by function: Functions.NAME"). What happens to the code still running is the
runner's business: a worker process is replaced (`devhost.workers.pool`); in the host's own
process a thread cannot be stopped, so it is written off (`FunctionThreads`) and its slot goes to
the next function. With no limit set, an invocation still running after `warn_after` seconds (5
minutes) logs one warning naming it, so a hung function is never silent.

The limit is wall time on the event loop, never the virtual clock: a function runs in real time
even when durable time is virtual.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

log = logging.getLogger("devhost.timeout")
T = TypeVar("T")
WARN_AFTER_SECONDS = 300.0  # a function still running this long without a limit is named
UNLIMITED = "-1"
_TIMESPAN = re.compile(r"(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,7}))?")


class FunctionTimedOut(Exception):
    """An invocation ran past functionTimeout; the message is the host's."""


def parse_timespan(text: str) -> float | None:
    """Seconds in a host.json timespan: `hh:mm:ss` or `d.hh:mm:ss` (fractions of a second
    allowed); None for "-1", no limit. Anything else raises ValueError saying what is allowed."""
    value = text.strip()
    if value == UNLIMITED:
        return None
    match = _TIMESPAN.fullmatch(value)
    if match is not None:
        days, hours, minutes, seconds, fraction = match.groups()
        if int(hours) < 24 and int(minutes) < 60 and int(seconds) < 60:
            total = (
                int(days or 0) * 86400
                + int(hours) * 3600
                + int(minutes) * 60
                + int(seconds)
                + float(f"0.{fraction or 0}")
            )
            if total > 0:
                return total
    raise ValueError(
        f"functionTimeout must be a timespan such as '00:05:00' (hh:mm:ss) or '1.00:00:00' "
        f"(d.hh:mm:ss), longer than zero, or '-1' for no limit; not {text!r}"
    )


@dataclass(frozen=True)
class FunctionTimeout:
    """How long an invocation may run (None: no limit), as host.json wrote it."""

    limit: float | None = None
    text: str = UNLIMITED
    warn_after: float = WARN_AFTER_SECONDS

    @classmethod
    def from_host_json(
        cls, host_json: dict, warn_after: float = WARN_AFTER_SECONDS
    ) -> FunctionTimeout:
        """The `functionTimeout` of host.json; ValueError for a value the host would refuse."""
        value = host_json.get("functionTimeout")
        if value is None:
            return cls(warn_after=warn_after)
        if not isinstance(value, str):
            raise ValueError(f"functionTimeout must be a string such as '00:05:00', not {value!r}")
        return cls(parse_timespan(value), value.strip(), warn_after)

    @property
    def seconds(self) -> float:
        """When an invocation is past its time: the limit, or else the warning's delay."""
        return self.warn_after if self.limit is None else self.limit

    def message(self, name: str) -> str:
        """What the Functions host says of an invocation past the limit."""
        return f"Timeout value of {self.text} was exceeded by function: Functions.{name}"

    def watch(self, name: str, on_expiry: Callable[[], None]) -> asyncio.TimerHandle:
        """Call `on_expiry` when the limit has passed; with no limit, warn once instead.
        Cancel the handle when the invocation ends."""
        loop = asyncio.get_running_loop()
        if self.limit is None:
            return loop.call_later(self.warn_after, self.warn, name)
        return loop.call_later(self.limit, on_expiry)

    def warn(self, name: str) -> None:
        """The one warning for an invocation still running past `warn_after`, with no limit."""
        log.warning(
            "Function 'Functions.%s' is still running after %s seconds; host.json sets no "
            "functionTimeout, so nothing stops it (on Azure the plan's limit would)",
            name,
            f"{self.warn_after:g}",
        )

    async def run(self, name: str, work: Awaitable[T]) -> T:
        """Await `work` within the limit; past it, FunctionTimedOut with the host's message."""
        if self.limit is None:
            warning = self.watch(name, lambda: None)
            try:
                return await work
            finally:
                warning.cancel()
        try:
            async with asyncio.timeout(self.limit) as scope:
                return await work
        except TimeoutError:
            if scope.expired():
                raise FunctionTimedOut(self.message(name)) from None
            raise


class FunctionThreads(ThreadPoolExecutor):
    """The host's threads for sync functions, `max_workers` of them busy at most.

    A thread held by a function past its timeout cannot be stopped: `write_off` counts it out
    and lets a new thread take its place, so the limit stays the number of threads at work.
    """

    def __init__(self, max_workers: int, thread_name_prefix: str = "") -> None:
        super().__init__(max_workers, thread_name_prefix)
        self.written_off = 0

    def write_off(self, name: str) -> None:
        """A thread is left to a function that timed out; another takes its place."""
        log.warning(
            "Function 'Functions.%s' timed out; its thread cannot be stopped in-process and is "
            "left running (worker processes would replace the process)",
            name,
        )
        # ThreadPoolExecutor starts threads up to `_max_workers`, under `_shutdown_lock`.
        with self._shutdown_lock:
            self.written_off += 1
            self._max_workers += 1
            if not self._shutdown:
                self._adjust_thread_count()


async def call_within(
    timeout: FunctionTimeout,
    threads: FunctionThreads | None,
    name: str,
    uses_thread: bool,
    work: Awaitable[T],
) -> T:
    """`timeout.run`, writing off the thread of a sync function that timed out."""
    try:
        return await timeout.run(name, work)
    except FunctionTimedOut:
        if uses_thread and threads is not None:
            threads.write_off(name)
        raise
