"""Where user code runs: the one seam between the host (engine, HTTP server) and the app.

The engine and the HTTP layer hand every invocation of user code to a `FunctionRunner`: an
orchestrator episode, a batch of entity operations, an activity, an HTTP function. Two runners
exist: `InProcessRunner` here (the host's own process: debuggable, the virtual clock's mode) and
`devhost.workers.pool.WorkerPool` (language worker processes, as the Functions host runs them).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime

from .app.app_index import FunctionIndex
from .app.http_call import JSON, HttpAnswer, HttpCall, call_http
from .app.invoke import ActivityOutcome, Invoker, run_activity, run_sync_activity
from .engine.entities import EntityRequest, OperationOutcome, run_operations
from .engine.replay import EpisodeCall, ReplayResult
from .engine.user_code import ActivityDone, ActivityTask
from .engine.warm import WarmOrchestrations, WarmStats
from .function_timeout import FunctionThreads, FunctionTimedOut, FunctionTimeout, call_within
from .taskhub.model import InstanceRecord

__all__ = ["ActivityDone", "ActivityTask", "EpisodeCall", "FunctionRunner", "InProcessRunner"]

log = logging.getLogger("devhost.runner")


def timed_out_activity(message: str) -> ActivityOutcome:
    """An activity past functionTimeout: a failed task for its orchestration."""
    return ActivityOutcome(ok=False, reason=message, details=message)


def timed_out_answer(message: str) -> HttpAnswer:
    """An HTTP function past functionTimeout answers 500, as the Functions host does."""
    return HttpAnswer(500, {"Content-Type": JSON}, json.dumps({"error": message}).encode())


@dataclass
class RunningActivity:
    """An activity in flight: its outcome reaches `done` once, whether it returns or times out."""

    done: ActivityDone
    watch: asyncio.TimerHandle | None = None
    started: float | None = None  # time.monotonic() on its thread, once a thread took it
    settled: bool = False

    def settle(self, outcome: ActivityOutcome) -> None:
        if self.settled:  # it timed out before: what it returned at last is dropped
            return
        self.settled = True
        if self.watch is not None:
            self.watch.cancel()
        self.done(outcome)


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
        self,
        name: str,
        input_json: str | None,
        done: ActivityDone,
        created: datetime,
        task: ActivityTask | None = None,
    ) -> None:
        """Run an activity of the index; `done` is called on the loop with its outcome.
        `created` is when the orchestration that calls it was created; `task` is the task it
        runs for (a Durable Task worker tells the activity; a Functions app is not told).

        A callback rather than a coroutine: results of a burst of activities reach the loop in
        one wake-up, with no task of their own.
        """

    @abstractmethod
    async def http(self, name: str, call: HttpCall) -> HttpAnswer:
        """Call an HTTP function; a function that raises answers 500."""

    @abstractmethod
    async def warm_stats(self) -> WarmStats:
        """How episodes ran (warm, replayed), summed over wherever they ran."""

    def waiting_for(self, instance_id: str) -> str | None:
        """What the instance's work waits for outside the engine, as a sentence (a worker that
        can run it); None when it waits for nothing of the kind, as this process's runners."""
        return None


class InProcessRunner(FunctionRunner):
    """Functions in the host's own process: episodes synchronous on the loop, sync activities
    on the executor, async ones on the loop within `max_activities`.

    Activities and HTTP functions run within `timeout` (host.json's functionTimeout). A sync
    function past it keeps its thread, which cannot be stopped: `threads` (the invoker's
    executor) writes that thread off and starts another in its place.
    """

    def __init__(
        self,
        index: FunctionIndex,
        invoker: Invoker,
        max_activities: int = 20,
        warm: WarmOrchestrations | None = None,
        timeout: FunctionTimeout | None = None,
        threads: FunctionThreads | None = None,
    ) -> None:
        super().__init__(index)
        self.invoker = invoker
        self.warm = warm if warm is not None else WarmOrchestrations()
        self.timeout = timeout or FunctionTimeout()
        self.threads = threads
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
        # No await inside: the episode holds the loop, as a CPU-bound call does anyway. So it
        # cannot be stopped at its limit; one that took longer fails once it has returned.
        started = time.monotonic()
        result = self.warm.run(
            self.index.orchestrators[call.name].user_function,
            call.instance_id,
            call.history,
            call.new_events,
            call.parent_instance_id,
            call.input_json,
        )
        if self._over_limit(started):
            return ReplayResult(actions=[], is_done=True, error=self.timeout.message(call.name))
        return result

    def _over_limit(self, started: float) -> bool:
        limit = self.timeout.limit
        return limit is not None and time.monotonic() - started > limit

    def discard(self, instance_id: str) -> None:
        self.warm.discard(instance_id)

    async def _entity_batch(
        self, record: InstanceRecord, requests: list[EntityRequest]
    ) -> EntityBatch:
        handle = self.index.entities[record.name.lower()].user_function
        state, started = record.entity_state, time.monotonic()
        outcomes = run_operations(handle, record, requests)  # on the loop, as an episode
        if self._over_limit(started):  # the batch fails; the state is as it was before it
            reason = json.dumps(self.timeout.message(record.name))
            return EntityBatch(state, [OperationOutcome(r, True, reason) for r in requests])
        return EntityBatch(record.entity_state, outcomes)

    def start_activity(
        self,
        name: str,
        input_json: str | None,
        done: ActivityDone,
        created: datetime,
        task: ActivityTask | None = None,
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
        running = RunningActivity(done)

        def run() -> ActivityOutcome:
            running.started = time.monotonic()  # no wake-up of the loop: _overdue reads it
            return run_sync_activity(self.invoker, info, input_json)

        future = self.invoker.executor.submit(run)
        running.watch = loop.call_later(self.timeout.seconds, self._overdue, name, running)
        future.add_done_callback(
            lambda finished: self._finished_in_thread(loop, running.settle, finished.result())
        )

    def _overdue(self, name: str, running: RunningActivity) -> None:
        """The activity's time may be up: its limit counts from when a thread took it (waiting
        for a thread is waiting for a concurrency slot). Past the limit it fails now, and its
        thread, which runs on, is written off so that another takes its slot; with no limit,
        one warning names it."""
        if running.settled or self._stopped:
            return
        seconds = self.timeout.seconds
        ran = 0.0 if running.started is None else time.monotonic() - running.started
        if running.started is None or ran < seconds:
            loop = asyncio.get_running_loop()
            running.watch = loop.call_later(seconds - ran, self._overdue, name, running)
        elif self.timeout.limit is None:
            self.timeout.warn(name)
        else:
            if self.threads is not None:
                self.threads.write_off(name)
            running.settle(timed_out_activity(self.timeout.message(name)))

    async def _run_async_activity(
        self, name: str, input_json: str | None, done: ActivityDone
    ) -> None:
        async with self._activity_slots:
            work = run_activity(self.invoker, self.index.activities[name], input_json)
            try:
                outcome = await self.timeout.run(name, work)
            except FunctionTimedOut as err:
                outcome = timed_out_activity(str(err))
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
        info = self.index.http[name]
        work = call_http(self.invoker, info, call)
        try:
            return await call_within(self.timeout, self.threads, name, not info.is_async, work)
        except FunctionTimedOut as err:
            log.error("%s", err)
            return timed_out_answer(str(err))

    async def warm_stats(self) -> WarmStats:
        return self.warm.stats
