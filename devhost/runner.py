"""Where user code runs: the one seam between the host (engine, HTTP server) and the app.

The engine and the HTTP layer hand every invocation of user code to a `FunctionRunner`: an
orchestrator episode, a batch of entity operations, an activity, an HTTP function. Two runners
exist: `InProcessRunner` here (the host's own process: debuggable, the virtual clock's mode) and
`devhost.workers.pool.WorkerPool` (language worker processes, as the Functions host runs them).
"""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime

from .app.app_index import FunctionIndex
from .app.http_call import HttpAnswer, HttpCall, call_http
from .app.invoke import ActivityOutcome, Invoker, run_activity
from .engine.entities import EntityRequest, OperationOutcome, run_operations
from .engine.replay import EpisodeCall, ReplayResult
from .engine.user_code import ActivityDone
from .engine.warm import WarmOrchestrations, WarmStats
from .taskhub.model import InstanceRecord

__all__ = ["ActivityDone", "EpisodeCall", "FunctionRunner", "InProcessRunner"]


@dataclass
class EntityBatch:
    """What a batch of operations left: the entity's state afterwards and each outcome."""

    state: str | None
    outcomes: list[OperationOutcome] = field(default_factory=list)


class FunctionRunner(ABC):
    """Runs the app's functions for the engine (as its `UserCode`) and the HTTP layer."""

    def __init__(self, index: FunctionIndex) -> None:
        self.index = index

    @abstractmethod
    def launch(self) -> None:
        """Begin starting (worker processes start loading the app); `start` finishes it."""

    @abstractmethod
    async def start(self) -> None:
        """Ready to run functions (worker processes started)."""

    @abstractmethod
    async def stop(self) -> None:
        """No function runs after this; results still due are dropped."""

    @abstractmethod
    def describe(self) -> str:
        """One line for the log: where functions run, and how orchestrations replay."""

    @abstractmethod
    async def episode(self, call: EpisodeCall) -> ReplayResult:
        """Run one episode of an orchestrator (its name is in the index)."""

    @abstractmethod
    def discard(self, instance_id: str) -> None:
        """The instance has finished: forget what is kept for its next episode."""

    async def entity_batch(
        self, record: InstanceRecord, requests: list[EntityRequest]
    ) -> list[OperationOutcome]:
        """Apply the operations in order to `record.entity_state`, as `run_operations` does."""
        if record.name.lower() not in self.index.entities:
            return run_operations(None, record, requests)
        batch = await self._entity_batch(record, requests)
        record.entity_state = batch.state
        return batch.outcomes

    @abstractmethod
    async def _entity_batch(
        self, record: InstanceRecord, requests: list[EntityRequest]
    ) -> EntityBatch: ...

    @abstractmethod
    def start_activity(
        self, name: str, input_json: str | None, done: ActivityDone, created: datetime
    ) -> None:
        """Run an activity of the index; `done` is called on the loop with its outcome.
        `created` is when the orchestration that calls it was created.

        A callback rather than a coroutine: results of a burst of activities reach the loop in
        one wake-up, with no task of their own.
        """

    @abstractmethod
    async def http(self, name: str, call: HttpCall) -> HttpAnswer:
        """Call an HTTP function; a function that raises answers 500."""

    @abstractmethod
    async def warm_stats(self) -> WarmStats:
        """How episodes ran (warm, replayed), summed over wherever they ran."""


class InProcessRunner(FunctionRunner):
    """Functions in the host's own process: episodes synchronous on the loop, sync activities
    on the executor, async ones on the loop within `max_activities`."""

    def __init__(
        self,
        index: FunctionIndex,
        invoker: Invoker,
        max_activities: int = 20,
        warm: WarmOrchestrations | None = None,
    ) -> None:
        super().__init__(index)
        self.invoker = invoker
        self.warm = warm if warm is not None else WarmOrchestrations()
        self._activity_slots = asyncio.Semaphore(max_activities)
        self._tasks: set[asyncio.Task] = set()
        self._finished: list[tuple[ActivityDone, ActivityOutcome]] = []  # from executor threads
        self._finished_lock = threading.Lock()
        self._drain_scheduled = False
        self._stopped = False

    def describe(self) -> str:
        return self.warm.describe()

    def launch(self) -> None:
        """Nothing to start: the app is loaded in this process."""

    async def start(self) -> None:
        self._stopped = False

    async def stop(self) -> None:
        self._stopped = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def episode(self, call: EpisodeCall) -> ReplayResult:
        # No await inside: the episode holds the loop, as a CPU-bound call does anyway.
        return self.warm.run(
            self.index.orchestrators[call.name].user_function,
            call.instance_id,
            call.history,
            call.new_events,
            call.parent_instance_id,
            call.input_json,
        )

    def discard(self, instance_id: str) -> None:
        self.warm.discard(instance_id)

    async def _entity_batch(
        self, record: InstanceRecord, requests: list[EntityRequest]
    ) -> EntityBatch:
        handle = self.index.entities[record.name.lower()].user_function
        outcomes = run_operations(handle, record, requests)
        return EntityBatch(record.entity_state, outcomes)

    def start_activity(
        self, name: str, input_json: str | None, done: ActivityDone, created: datetime
    ) -> None:
        info = self.index.activities[name]
        if info.is_async:
            task = asyncio.create_task(self._run_async_activity(name, input_json, done))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        # Sync activities go straight to the executor, whose size is the concurrency limit: its
        # threads keep working while an episode holds the loop, so results pile up for the next
        # episode; they come back through one wake-up of the loop per burst.
        loop = asyncio.get_running_loop()
        future = self.invoker.submit_activity(info, input_json)
        future.add_done_callback(
            lambda finished: self._finished_in_thread(loop, done, finished.result())
        )

    async def _run_async_activity(
        self, name: str, input_json: str | None, done: ActivityDone
    ) -> None:
        async with self._activity_slots:
            outcome = await run_activity(self.invoker, self.index.activities[name], input_json)
        if not self._stopped:
            done(outcome)

    def _finished_in_thread(
        self, loop: asyncio.AbstractEventLoop, done: ActivityDone, outcome: ActivityOutcome
    ) -> None:
        """Called on an executor thread: queue the result, waking the loop once per burst."""
        with self._finished_lock:
            self._finished.append((done, outcome))
            if self._drain_scheduled:
                return
            self._drain_scheduled = True
        loop.call_soon_threadsafe(self._drain_finished)

    def _drain_finished(self) -> None:
        with self._finished_lock:
            results = self._finished
            self._finished = []
            self._drain_scheduled = False
        if self._stopped:
            return
        for done, outcome in results:
            done(outcome)

    async def http(self, name: str, call: HttpCall) -> HttpAnswer:
        return await call_http(self.invoker, self.index.http[name], call)

    async def warm_stats(self) -> WarmStats:
        return self.warm.stats
