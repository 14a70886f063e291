"""The app's timer, queue and blob triggers, started and stopped with the host.

Queue and blob triggers need the storage account their binding names (`connection`, by default
`AzureWebJobsStorage`); with none set they are named at start as not runnable, and the rest of
the app runs. Timers need nothing but the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from ..app.app_index import FunctionIndex, FunctionInfo
from ..app.load_errors import AppLoadError
from ..app.queue_options import QueueOptions
from ..app.storage_account import StorageAccounts
from ..clock import Clock
from .blob import BlobListener, BlobPattern
from .ncrontab import ScheduleError
from .queue import QueueListener, queue_name_of
from .timer import ScheduleStatusStore, TimerTriggers

log = logging.getLogger("devhost.triggers")

Invoke = Callable[..., Any]
STORAGE = "AzureWebJobsStorage"


class TriggerListeners:
    """Every non-HTTP, non-durable trigger of an app."""

    def __init__(
        self,
        index: FunctionIndex,
        clock: Clock,
        invoke: Invoke,
        accounts: StorageAccounts,
        executor: Executor,
        host_json: dict[str, Any],
        host_id: str,
    ) -> None:
        self.executor = executor
        self.not_runnable: dict[str, str] = {}
        self.queues: list[QueueListener] = []
        self.blobs: list[BlobListener] = []
        try:
            options = QueueOptions.from_host_json(host_json)
        except ValueError as err:
            raise AppLoadError(f"host.json: extensions.queues: {err}") from None
        for info in index.queues.values():
            account = self._account(info, accounts)
            if account is not None:
                self.queues.append(QueueListener(info, account, options, invoke, self.run_blocking))
        for info in index.blobs.values():
            try:
                BlobPattern(str(info.trigger.get("path", "")))
            except ValueError as err:
                raise AppLoadError(f"function {info.name}: {err}") from None
            account = self._account(info, accounts)
            if account is not None:
                self.blobs.append(BlobListener(info, account, host_id, invoke, self.run_blocking))
        default = accounts.get(STORAGE) if accounts.has(STORAGE) else None
        try:
            self.timers = TimerTriggers(
                index.timers,
                clock,
                invoke,
                ScheduleStatusStore(default, host_id),
                self.run_blocking,
            )
        except ScheduleError as err:
            raise AppLoadError(f"timer schedule: {err}") from None
        self._tasks: list[asyncio.Task] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def _account(self, info: FunctionInfo, accounts: StorageAccounts):
        setting = info.trigger.connection
        if accounts.has(setting):
            return accounts.get(setting)
        self.not_runnable[info.name] = (
            f"not runnable: the storage account setting {setting!r} is not set "
            "(AzureWebJobsStorage, e.g. Azurite)"
        )
        return None

    async def run_blocking(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(fn, *args, **kwargs))

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for listener in (*self.queues, *self.blobs):
            self._tasks.append(asyncio.create_task(listener.run()))
        await self.timers.start()

    async def stop(self) -> None:
        await self.timers.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def written(self, kind: str, target: str) -> None:
        """An output binding wrote here (from any thread): wake the listeners of that place."""
        if self._loop is None:
            return
        for listener in self.queues if kind == "queue" else self.blobs:
            if (kind == "queue" and listener.queue_name == target) or (
                kind == "blob" and target.startswith(f"{listener.pattern.container}/")
            ):
                self._loop.call_soon_threadsafe(listener.wake)

    def describe(self, info: FunctionInfo) -> str:
        """The trigger as `func start` lists it."""
        if info.name in self.not_runnable:
            return f"{info.trigger_type} ({self.not_runnable[info.name]})"
        if info.trigger_type == "timerTrigger":
            return self.timers.describe(info)
        if info.trigger_type == "queueTrigger":
            return f"queueTrigger (queue {queue_name_of(info)})"
        pattern = BlobPattern(str(info.trigger.get("path", "")))
        return f"blobTrigger (container {pattern.container}, path {pattern.path})"
