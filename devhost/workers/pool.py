"""The host's side of its language worker processes, as a `FunctionRunner`.

The pool wires three parts: `processes` (the workers' life: start, read, replace, end),
`routing` (which worker runs a call: lanes, sticky episodes, load) and `waiting` (activities
beyond maxConcurrentActivityFunctions wait in the host for a slot).

A worker that exits (os._exit in a function, a kill) is replaced at once, and what it was running
is sent again to a live worker, as the Functions host retries it (activities run at least once,
episodes and entity batches are pure until the host commits them), up to MAX_ATTEMPTS times;
then that invocation fails with the reason. HTTP calls are not retried (a request is not
idempotent): they answer 500 with the reason.

A call past host.json's functionTimeout (`overtime`) fails with the host's message and its
worker is replaced at once, as the Functions host recycles it; what else ran there is sent
again as after a crash, without counting as one of its attempts.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..app.app_index import FunctionIndex
from ..app.http_call import HttpAnswer, HttpCall
from ..engine.entities import EntityRequest
from ..engine.replay import EpisodeCall, ReplayResult
from ..engine.warm import WarmOrchestrations, WarmStats
from ..runner import ActivityDone, ActivityTask, EntityBatch, FunctionRunner
from ..settings import HostSettings
from ..taskhub.model import InstanceRecord
from .calls import Call, WorkerError, failure
from .overtime import CallTimeouts
from .processes import Exit, WorkerProcess, WorkerProcesses
from .protocol import (
    Answer,
    Crashed,
    GetWarmStats,
    RunActivity,
    RunEntityBatch,
    RunHttp,
    UnknownHistory,
)
from .routing import CallRouting, Routed, lane_of
from .waiting import ActivitySlots

log = logging.getLogger("devhost.workers")
MAX_ATTEMPTS = 3  # runs of one invocation before a worker's death fails it
START_SECONDS = 60  # how long a worker may take to load the app


class WorkerPool(FunctionRunner):
    """`count` worker processes, each with the app loaded."""

    def __init__(
        self,
        index: FunctionIndex,
        settings: HostSettings,
        count: int,
        client_json: Callable[[], str],
        on_written: Callable[[str, str], None] = lambda kind, target: None,
    ) -> None:
        super().__init__(index)
        self.settings = settings
        self.count = count
        self.client_json = client_json
        self.on_written = on_written
        self.processes = WorkerProcesses(
            settings, client_json, self._answered, self._exited, on_written
        )
        self.routing = CallRouting(self.processes, itertools.count(1))
        self.activities = ActivitySlots(
            lambda: self.settings.max_concurrent_activities, self._start_activity
        )
        self.overtime = CallTimeouts(settings.function_timeout, self._timed_out)
        # Each worker keeps its warm instances with these settings, on this same SDK.
        self._warm_line = WarmOrchestrations(
            settings.warm_instances, settings.verify_warm
        ).describe()
        self._started = asyncio.Event()  # a request may arrive while the workers load the app

    # -- lifecycle ---------------------------------------------------------------------------

    def launch(self) -> None:
        """Start the worker processes, which load the app meanwhile (`start` waits for them)."""
        if not self.processes.workers:
            has_http = bool(self.index.http)
            self.processes.launch(
                [lane_of(n, self.count, has_http) for n in range(1, self.count + 1)]
            )

    async def start(self) -> None:
        """Start the workers (unless launched) and wait until each has loaded the app."""
        self.launch()
        try:
            async with asyncio.timeout(START_SECONDS):
                for worker in self.processes.workers:
                    await worker.ready
        except BaseException:
            await self.stop()
            raise
        self._started.set()

    async def stop(self) -> None:
        """Ask each worker to stop, then kill those still running; pending calls are cancelled."""
        for worker in self.workers:
            for call in worker.calls.values():
                self.overtime.end(call)
        await self.processes.stop()

    @property
    def workers(self) -> list[WorkerProcess]:
        """The worker processes, in number order (a replaced one in its predecessor's place)."""
        return self.processes.workers

    @property
    def pids(self) -> list[int]:
        """The process ids of the live workers."""
        return [w.pid for w in self.workers if w.alive]

    def describe(self) -> str:
        return f"{self._warm_line}; functions run in {self.count} worker processes"

    def lanes(self) -> str:
        """How the workers share the work, for the banner."""
        http = sum(w.lane == "http" for w in self.workers)
        if not http:
            return "each runs every function" if self.count > 1 else "it runs every function"
        return (
            f"{http} for HTTP functions, {self.count - http} at low CPU priority for "
            "orchestrations, entities and activities"
        )

    # -- invocations -------------------------------------------------------------------------

    async def episode(self, call: EpisodeCall) -> ReplayResult:
        value = await self._invoke(self.routing.episode(call, whole=False))
        if isinstance(value, UnknownHistory):
            value = await self._invoke(self.routing.episode(call, whole=True))
        return value

    def discard(self, instance_id: str) -> None:
        self.routing.discard(instance_id)

    async def _entity_batch(
        self, record: InstanceRecord, requests: list[EntityRequest]
    ) -> EntityBatch:
        message = RunEntityBatch(self._call_id(), record, requests)
        call = Call("entity", record.name, message, record=record)
        return await self._invoke(Routed(self.routing.least_loaded(), call))

    def start_activity(
        self,
        name: str,
        input_json: str | None,
        done: ActivityDone,
        created: datetime,
        task: ActivityTask | None = None,
    ) -> None:
        call = Call("activity", name, RunActivity(self._call_id(), name, input_json), done=done)
        self.activities.add(call, created.timestamp())

    def _start_activity(self, activity: Call) -> bool:
        """Run an activity that has a slot; with no live worker it fails at once (no slot)."""
        try:
            worker = self.routing.least_loaded()
        except WorkerError as err:
            assert activity.done is not None
            activity.done(failure(activity, str(err)))
            return False
        self._dispatch(worker, activity)
        return True

    async def http(self, name: str, call: HttpCall) -> HttpAnswer:
        await self._started.wait()
        worker = self.routing.http_worker()
        return await self._invoke(
            Routed(worker, Call("http", name, RunHttp(self._call_id(), name, call)))
        )

    async def warm_stats(self) -> WarmStats:
        total = WarmStats()
        for worker in [w for w in self.workers if w.alive]:
            call = Call("stats", "", GetWarmStats(self._call_id()))
            stats = await self._invoke(Routed(worker, call))
            for name in ("warm", "replayed", "fell_back", "evicted"):
                setattr(total, name, getattr(total, name) + getattr(stats, name))
        return total

    def _call_id(self) -> int:
        return next(self.routing.call_ids)

    async def _invoke(self, target: Routed) -> Any:
        call = target.call
        call.future = asyncio.get_running_loop().create_future()
        self._dispatch(target.worker, call)
        value = await call.future
        if isinstance(value, Crashed):
            raise WorkerError(f"worker failed running '{call.name}':\n{value.details}")
        return value

    def _dispatch(self, worker: WorkerProcess, call: Call) -> None:
        worker.calls[call.message.call_id] = call
        if call.kind == "http":
            worker.http_calls += 1
        self.overtime.watch(worker, call)
        self.processes.send(worker, call.message)

    # -- answers and deaths ------------------------------------------------------------------

    def _answered(self, worker: WorkerProcess, answer: Answer) -> None:
        call = worker.calls.pop(answer.call_id, None)
        if call is not None:
            if call.kind == "http":
                worker.http_calls -= 1
            self._settle(call, answer.value)

    def _settle(self, call: Call, value: Any) -> None:
        self.overtime.end(call)
        if self.processes.stopping:
            return
        if call.kind == "activity":  # its slot goes to the next one waiting
            self.activities.finished()
        if call.done is not None:
            call.done(value)
        elif call.future is not None and not call.future.done():
            call.future.set_result(value)

    def _timed_out(self, worker: WorkerProcess, call: Call) -> None:
        """Past functionTimeout: the worker is replaced (what else it ran is sent again), then
        the call fails with the host's message and its slot goes to the replacement."""
        if worker.calls.get(call.message.call_id) is not call:
            return
        del worker.calls[call.message.call_id]
        if call.kind == "http":
            worker.http_calls -= 1
        message = self.settings.function_timeout.message(call.name)
        log.error("%s; worker %d (pid %d) is replaced", message, worker.number, worker.pid)
        self.processes.recycle(worker)
        self._settle(call, failure(call, message))

    def _exited(self, ended: Exit) -> None:
        """A worker ended: run again elsewhere what it was running, or fail it. A recycled
        worker's other calls are not at fault: their attempts are not counted."""
        worker = ended.worker
        for call in worker.calls.values():
            if ended.on_start:
                self._settle(call, failure(call, ended.start_failure))
                continue
            reason = f"worker process exited with code {ended.code} while running '{call.name}'"
            if call.kind == "http" or (call.attempts >= MAX_ATTEMPTS and not worker.recycled):
                self._settle(call, failure(call, reason))
                continue
            call.attempts += 0 if worker.recycled else 1
            if call.episode is not None:  # the new worker gets the whole history
                self.overtime.end(call)
                again = self.routing.episode(call.episode, whole=True)
                again.call.future, again.call.attempts = call.future, call.attempts
                self._dispatch(again.worker, again.call)
            else:
                self._dispatch(self.routing.least_loaded(), call)
        worker.calls.clear()
