"""The orchestrations live on this host, in memory, and the records of those that finished here.

Every live instance is in memory from start-up on (the engine loads them all), so an instance
is read from the store at most once: a load races no one, because one loader or creator of an
id runs at a time (`lock`). Scheduling an instance's episodes is asked for here (`notify`) and
done by the episodes' part, handed in as `process`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from ..app.app_index import FunctionIndex
from ..clock import Clock, Wakeup
from ..store.base import TaskHubStore
from ..taskhub.history import EventType
from ..taskhub.model import InstanceRecord, Message
from .background import Background
from .finished import FinishedRecords
from .messages import restart_message
from .planner import Planner
from .replay import HistoryCache, ReplayResult, build_context, run_orchestrator
from .timers import TimerService
from .user_code import UserCode


@dataclass
class Orchestration:
    """An active instance in memory: its history, its inbox and the planner's view."""

    record: InstanceRecord
    planner: Planner
    history: HistoryCache = field(default_factory=HistoryCache)
    inbox: list[Message] = field(default_factory=list)
    scheduled: bool = False
    busy: bool = False
    force_episode: bool = False
    start_wakeup: Wakeup | None = None  # booked while a scheduled start waits for its time
    # Histories of the last executions that continued as new (memory only, for the dashboard).
    generations: list[list[dict[str, Any]]] = field(default_factory=list)

    @classmethod
    def new(cls, record: InstanceRecord) -> Orchestration:
        return cls(record=record, planner=Planner(record.instance_id, record.execution_id))

    def cancel_start_wakeup(self) -> None:
        if self.start_wakeup is not None:
            self.start_wakeup.cancel()
            self.start_wakeup = None


@dataclass
class InstanceLock:
    """A lock per instance id, kept while anyone holds or waits for it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class LiveInstances:
    """The table of live orchestrations: load, hold, schedule, evict; and who waits on them."""

    def __init__(
        self,
        index: FunctionIndex,
        store: TaskHubStore,
        clock: Clock,
        runner: UserCode,
        timers: TimerService,
        background: Background,
        process: Callable[[Orchestration], Coroutine[Any, Any, None]],
    ) -> None:
        self.index = index
        self.store = store
        self.clock = clock
        self.runner = runner
        self.timers = timers
        self.background = background
        self.finished = FinishedRecords()
        self._process = process
        self._active: dict[str, Orchestration] = {}
        self._locks: dict[str, InstanceLock] = {}
        self._watchers: dict[str, list[asyncio.Future]] = {}

    def get(self, instance_id: str) -> Orchestration | None:
        """The instance if it is in memory (no store read)."""
        return self._active.get(instance_id)

    def live_ids(self) -> list[str]:
        """The orchestrations in memory that have not finished."""
        return [i for i, o in self._active.items() if not o.record.runtime_status.is_terminal]

    def holds(self, orch: Orchestration) -> bool:
        """Whether `orch` is still the instance in memory for its id (not evicted, not
        replaced by a new start)."""
        return self._active.get(orch.record.instance_id) is orch

    def start(self, record: InstanceRecord) -> Orchestration:
        """A new execution in memory, in place of an earlier one of the same id (whose timers
        are cancelled)."""
        instance_id = record.instance_id
        earlier = self._active.pop(instance_id, None)
        if earlier is not None:
            self.timers.cancel_instance(instance_id)
            earlier.cancel_start_wakeup()
        orch = self._active[instance_id] = Orchestration.new(record)
        return orch

    def notify(self, orch: Orchestration) -> None:
        """Schedule the instance's episodes, unless they are scheduled or running already."""
        if orch.scheduled or orch.busy:
            return
        orch.scheduled = True
        self.background.spawn(self._process(orch))

    def deliver(self, orch: Orchestration, message: Message) -> None:
        orch.inbox.append(message)
        self.notify(orch)

    def evict(self, orch: Orchestration) -> None:
        """The instance has finished: out of memory, its timers, start wake-up and warm state
        dropped."""
        instance_id = orch.record.instance_id
        self.timers.cancel_instance(instance_id)
        orch.cancel_start_wakeup()
        self.runner.discard(instance_id)
        if self._active.get(instance_id) is orch:
            del self._active[instance_id]

    def history(self, instance_id: str) -> list[dict[str, Any]] | None:
        """The history of an instance in memory; None if it is not."""
        orch = self._active.get(instance_id)
        return list(orch.history.events) if orch is not None else None

    def generations(self, instance_id: str) -> list[list[dict[str, Any]]]:
        orch = self._active.get(instance_id)
        return [list(history) for history in orch.generations] if orch else []

    # -- loading -----------------------------------------------------------------------------

    async def load(self, instance_id: str) -> Orchestration | None:
        """The live instance in memory, read from the store if needed; None if finished/unknown."""
        orch = self._active.get(instance_id)
        if orch is not None:
            return orch
        async with self.lock(instance_id):
            orch = self._active.get(instance_id)
            if orch is None:
                orch = await self._read(instance_id)
                if orch is not None:
                    self._active[instance_id] = orch
        return orch

    @contextlib.asynccontextmanager
    async def lock(self, instance_id: str) -> AsyncIterator[None]:
        """One loader or creator of an instance at a time: a load that raced a creation would
        read half of it and then commit beside the creator, under a stale ETag."""
        entry = self._locks.setdefault(instance_id, InstanceLock())
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if not entry.users:
                del self._locks[instance_id]

    @contextlib.asynccontextmanager
    async def lock_all(self, instance_ids: list[str]) -> AsyncIterator[None]:
        """`lock` of many ids (a group being purged), taken in sorted order so that two holders
        of overlapping groups cannot each wait for the other."""
        async with contextlib.AsyncExitStack() as held:
            for instance_id in sorted(set(instance_ids)):
                await held.enter_async_context(self.lock(instance_id))
            yield

    async def _read(self, instance_id: str) -> Orchestration | None:
        """Rebuild a live instance from the store: its state, history and unconsumed inbox."""
        loaded = await self.store.load(instance_id)
        if loaded is None or loaded[0].runtime_status.is_terminal:
            return None
        record, history, inbox = loaded
        orch = Orchestration.new(record)
        orch.history.extend(history)
        in_history = {e["MessageId"] for e in history if "MessageId" in e}
        orch.inbox = [m for m in inbox if m.message_id not in in_history]
        started = any(e["EventType"] == EventType.ExecutionStarted for e in history)
        if not started and not any(
            m.event["EventType"] == EventType.ExecutionStarted for m in orch.inbox
        ):
            orch.inbox.insert(0, restart_message(self.clock.now(), record))
        replay = self._dry_replay(orch) if history else None
        orch.planner.rebuild(history, replay)
        return orch

    def _dry_replay(self, orch: Orchestration) -> ReplayResult | None:
        info = self.index.orchestrators.get(orch.record.name)
        if info is None:
            return None
        context = build_context(
            orch.history, [], orch.record.instance_id, parent_id(orch.record), orch.record.input
        )
        return run_orchestrator(info.user_function, context)

    # -- waiting for a status ----------------------------------------------------------------

    def watch(self, instance_id: str) -> asyncio.Future:
        """A future set at the instance's next commit."""
        waiter = asyncio.get_running_loop().create_future()
        self._watchers.setdefault(instance_id, []).append(waiter)
        return waiter

    def committed(self, instance_id: str) -> None:
        """The instance's record changed: wake whoever watches it."""
        for waiter in self._watchers.pop(instance_id, ()):
            if not waiter.done():
                waiter.set_result(None)


def parent_id(record: InstanceRecord) -> str | None:
    parent = record.parent
    return parent["OrchestrationInstance"]["InstanceId"] if parent else None
