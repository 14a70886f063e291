"""The durable engine: runs episodes, activities and timers, and answers the client's requests.

Work is dispatched the moment it becomes ready: an activity's result, a timer's firing or a raised
event puts a message in the instance's inbox and schedules the instance; an instance that is
already in an episode picks the message up in its next one, so every ready event of a busy
instance is handed to the orchestrator in one replay.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import functools
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from ..app.app_index import FunctionIndex
from ..app.invoke import ActivityOutcome, failed_activity
from ..clock import Clock
from ..store.base import (
    InstanceExistsError,
    StorageRequestError,
    StorageUnavailableError,
    TaskHubStore,
    clear_deadline,
    current_deadline,
)
from ..taskhub.errors import EngineError
from ..taskhub.history import EventType, event, execution_started, format_time
from ..taskhub.model import (
    EpisodeCommit,
    InstanceQuery,
    InstanceRecord,
    Message,
    RuntimeStatus,
    is_entity_id,
    record_from_start,
)
from ..taskhub.rules import (
    MAX_CUSTOM_STATUS_CHARS,
    MAX_PAYLOAD_CHARS,
    check_entity_id,
    check_instance_id,
    check_name,
    check_payload,
    payload_too_large,
)
from .entities import (
    EntityRequest,
    OperationOutcome,
    remember,
    request_message,
    response_message,
    scheduler_id,
)
from .finished import FinishedRecords
from .planner import Outcome, PendingTask, Planner, WaitingOn, Work
from .replay import EpisodeCall, HistoryCache, ReplayResult, build_context, run_orchestrator
from .timers import TimerKey, TimerService

if TYPE_CHECKING:
    from ..runner import FunctionRunner

log = logging.getLogger("devhost.engine")
GENERATIONS_KEPT = 5  # earlier executions of a continue-as-new loop kept for the dashboard
P = ParamSpec("P")
R = TypeVar("R")

CONTROL_EVENTS = frozenset(
    {EventType.ExecutionTerminated, EventType.ExecutionSuspended, EventType.ExecutionResumed}
)


def client_operation(
    method: Callable[P, Awaitable[R]],
) -> Callable[P, Coroutine[Any, Any, R]]:
    """A client request: it waits until recovery has run (within the caller's deadline)."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        engine = args[0]
        assert isinstance(engine, Engine)
        await engine.until_ready()
        return await method(*args, **kwargs)

    return wrapper


def failure_line(
    instance_id: str, function: str, kind: str, reason: str, task_id: int | None = None
) -> str:
    """The line the Durable Functions extension logs when a function fails."""
    line = (
        f"{instance_id}: Function '{function} ({kind})' failed with an error. "
        f"Reason: {reason}. IsReplay: False. State: Failed."
    )
    return line if task_id is None else f"{line} TaskEventId: {task_id}"


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
    # Histories of the last executions that continued as new (memory only, for the dashboard).
    generations: list[list[dict[str, Any]]] = field(default_factory=list)


@dataclass
class InstanceLock:
    """A lock per instance id, kept while anyone holds or waits for it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


@dataclass
class EntityRuntime:
    """An entity in memory: its state row and the requests waiting for it."""

    record: InstanceRecord
    inbox: list[Message] = field(default_factory=list)
    scheduled: bool = False
    busy: bool = False


def new_id() -> str:
    return uuid.uuid4().hex


def to_json_text(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


class Engine:
    def __init__(
        self,
        index: FunctionIndex,
        store: TaskHubStore,
        clock: Clock,
        runner: FunctionRunner,
        max_orchestrations: int = 20,
    ) -> None:
        self.index = index
        self.store = store
        self.clock = clock
        self.runner = runner  # where user code runs: this process or worker processes
        self._active: dict[str, Orchestration] = {}
        self._entities: dict[str, EntityRuntime] = {}
        self._entity_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()
        self._episode_slots = asyncio.Semaphore(max_orchestrations)
        self._timers = TimerService(clock, self._on_timer)
        self._instance_locks: dict[str, InstanceLock] = {}
        self._watchers: dict[str, list[asyncio.Future]] = {}
        self._entity_calls: dict[str, asyncio.Future[OperationOutcome]] = {}
        self._running_activities = 0  # started and not yet handed to their instance
        self._drained: asyncio.Future | None = None
        self._ready = asyncio.Event()
        self._offline = False  # client operations only: work is stored, never run here
        self._finished_records = FinishedRecords()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the store, then resume every live instance; client requests wait until then.

        The host listens before this runs, so an activity resumed here that calls the host
        through the durable client finds it answering.
        """
        log.info(self.runner.describe())
        await self.store.open()
        for instance_id in await self.store.active_instances():
            if is_entity_id(instance_id):
                self._notify_entity(await self._entity(instance_id))
                continue
            orch = await self._load(instance_id)
            if orch is not None:
                self._resume_work(orch)
                self._notify(orch)
        self._ready.set()

    async def open_for_clients(self) -> None:
        """Open the store for client operations only (the `durable` CLI with no host running).

        Starts, events and control messages are stored as a host stores them; nothing runs
        here: the host that next opens the hub resumes them.
        """
        self._offline = True
        await self.store.open()
        self._ready.set()

    async def until_ready(self) -> None:
        """Until start() has resumed the hub; past the caller's deadline, StorageUnavailable."""
        if self._ready.is_set():
            return
        deadline = current_deadline()
        if deadline is None:
            await self._ready.wait()
            return
        try:
            await asyncio.wait_for(self._ready.wait(), max(deadline - time.monotonic(), 0))
        except TimeoutError:
            raise StorageUnavailableError(
                "The host is still starting (waiting for its task hub storage)"
            ) from None

    async def stop(self) -> None:
        self._timers.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.store.close()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Background work: it runs without the deadline of the request that caused it."""
        if self._offline:
            coro.close()
            return
        if current_deadline() is None:  # the engine's own work: no deadline to drop
            task = asyncio.create_task(coro)
        else:
            context = contextvars.copy_context()
            context.run(clear_deadline)
            task = asyncio.create_task(coro, context=context)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("engine task failed", exc_info=task.exception())

    async def wait_idle(self) -> None:
        """Until no episode, activity or delivery is under way (timers may still be pending)."""
        while self._tasks or self._running_activities:
            if self._tasks:
                await asyncio.wait(set(self._tasks))
                continue
            self._drained = self._drained or asyncio.get_running_loop().create_future()
            await self._drained

    # -- client operations -----------------------------------------------------------------

    @client_operation
    async def start_new(self, name: str, instance_id: str | None, input_json: str | None) -> str:
        if instance_id is not None:
            check_instance_id(instance_id)
        if name not in self.index.orchestrators:
            raise EngineError(
                400,
                f"The function '{name}' doesn't exist, is disabled, "
                "or is not an orchestrator function.",
            )
        check_payload("input", input_json)
        instance_id = instance_id or new_id()
        start = self._start_message(instance_id, name, input_json, parent=None)
        start.stored = True
        record = record_from_start(start, self.clock.now())
        async with self._instance_lock(instance_id):
            try:
                await self.store.create_instance(record, start)
            except InstanceExistsError:
                raise EngineError(
                    409,
                    f"An orchestration instance with the id '{instance_id}' is already running.",
                ) from None
            self._finished_records.forget(instance_id)
            old = self._active.pop(instance_id, None)
            if old is not None:
                self._timers.cancel_instance(instance_id)
            orch = Orchestration(record=record, planner=Planner(instance_id, record.execution_id))
            self._active[instance_id] = orch
        orch.inbox.append(start)
        self._notify(orch)
        return instance_id

    def _start_message(
        self, instance_id: str, name: str, input_json: str | None, parent: dict | None
    ) -> Message:
        execution_id = new_id()
        evt = execution_started(
            self.clock.now(), name, instance_id, execution_id, input_json, parent
        )
        evt["MessageId"] = message_id = new_id()
        return Message(message_id, instance_id, evt, execution_id)

    @client_operation
    async def raise_event(self, instance_id: str, name: str, input_json: str | None) -> None:
        check_instance_id(instance_id)
        check_name("Event", name)
        check_payload("event data", input_json)
        await self._send_control(
            instance_id, event(EventType.EventRaised, self.clock.now(), Name=name, Input=input_json)
        )

    @client_operation
    async def terminate(self, instance_id: str, reason: str) -> None:
        check_instance_id(instance_id)
        await self._send_control(
            instance_id, event(EventType.ExecutionTerminated, self.clock.now(), Input=reason)
        )

    @client_operation
    async def suspend(self, instance_id: str, reason: str) -> None:
        check_instance_id(instance_id)
        await self._send_control(
            instance_id,
            event(EventType.ExecutionSuspended, self.clock.now(), Reason=reason),
            allowed={RuntimeStatus.Running, RuntimeStatus.Pending},
        )

    @client_operation
    async def resume(self, instance_id: str, reason: str) -> None:
        check_instance_id(instance_id)
        await self._send_control(
            instance_id,
            event(EventType.ExecutionResumed, self.clock.now(), Reason=reason),
            allowed={RuntimeStatus.Suspended},
        )

    async def _send_control(
        self,
        instance_id: str,
        evt: dict[str, Any],
        allowed: set[RuntimeStatus] | None = None,
    ) -> None:
        """Store a message for a live instance: 404 if unknown, 410 if it has finished, and 409
        if it is in a status the operation refuses (as the runtime refuses suspending twice)."""
        orch = await self._load(instance_id)
        if orch is None:
            record = await self.store.get_instance(instance_id)
            if record is None or not record.runtime_status.is_terminal:  # none, or not yet
                raise EngineError(404, f"No instance with ID '{instance_id}' found.")
            raise EngineError(
                410, f"Instance '{instance_id}' has already finished ({record.runtime_status})."
            )
        if allowed is not None:
            status = _status_after_inbox(orch)
            if status not in allowed:
                verb = "suspend" if evt["EventType"] == EventType.ExecutionSuspended else "resume"
                raise EngineError(
                    409, f"Cannot {verb} orchestration instance in the {status} state."
                )
        evt["MessageId"] = message_id = new_id()
        message = Message(message_id, instance_id, evt, stored=True)
        await self.store.send([message])
        orch.inbox.append(message)
        self._notify(orch)

    @client_operation
    async def rewind(self, instance_id: str, reason: str) -> None:
        check_instance_id(instance_id)
        await self._rewind(instance_id, reason)

    async def _rewind(self, instance_id: str, reason: str) -> None:
        """Take a failed instance back to before its failures and run the failed work again.

        As the runtime: 410 for an instance that finished otherwise, 409 for a live one."""
        record = await self.get_record(instance_id)
        if record is None:
            raise EngineError(404, f"No instance with ID '{instance_id}' found.")
        if record.runtime_status != RuntimeStatus.Failed:
            raise EngineError(
                410 if record.runtime_status.is_terminal else 409,
                "The rewind operation is only supported on failed orchestration instances.",
            )
        failures = {
            EventType.TaskFailed,
            EventType.SubOrchestrationInstanceFailed,
            EventType.ExecutionCompleted,
        }
        history = await self.store.get_history(instance_id)
        for evt in history:
            if evt["EventType"] == EventType.SubOrchestrationInstanceFailed:
                child = next(
                    (
                        e
                        for e in history
                        if e["EventType"] == EventType.SubOrchestrationInstanceCreated
                        and e["EventId"] == evt["TaskScheduledId"]
                    ),
                    None,
                )
                if child is not None:
                    await self._rewind_child(child["InstanceId"], reason)
        kept = [e for e in history if e["EventType"] not in failures]
        record.runtime_status = RuntimeStatus.Running
        record.output = None
        record.last_updated_time = self.clock.now()
        self._finished_records.forget(instance_id)
        await self.store.replace_history(record, kept)
        orch = await self._load(instance_id)
        if orch is not None:
            orch.force_episode = True
            self._resume_work(orch)
            self._notify(orch)

    async def _rewind_child(self, instance_id: str, reason: str) -> None:
        with contextlib.suppress(EngineError):  # the child already left the failed state
            await self._rewind(instance_id, reason)

    @client_operation
    async def restart(self, instance_id: str, with_new_id: bool) -> str:
        check_instance_id(instance_id)
        record = await self.store.get_instance(instance_id)
        if record is None:
            raise EngineError(404, f"No instance with ID '{instance_id}' found.")
        target = new_id() if with_new_id else instance_id
        return await self.start_new(record.name, target, record.input)

    @client_operation
    async def get_status(self, instance_id: str) -> InstanceRecord | None:
        """The status row a client asks for, after checking the id as the runtime does."""
        check_instance_id(instance_id)
        return await self.get_record(instance_id)

    async def get_record(self, instance_id: str) -> InstanceRecord | None:
        """From memory for an instance held here or that finished here: this host holds the
        hub's lease, and a held record is replaced only after its commit, so it is the stored
        one. Else a store read."""
        held = self._active.get(instance_id) or self._entities.get(instance_id)
        if held is not None:
            return held.record.copy()
        finished = self._finished_records.get(instance_id)
        if finished is not None:
            return finished
        return await self.store.get_instance(instance_id)

    async def get_history(self, instance_id: str) -> list[dict[str, Any]]:
        orch = self._active.get(instance_id)
        if orch is not None:
            return list(orch.history.events)
        return await self.store.get_history(instance_id)

    @client_operation
    async def waiting_on(self, instance_id: str) -> WaitingOn | None:
        """What a live orchestration waits for (timers, events, tasks); None if it is not live."""
        if is_entity_id(instance_id):
            return None
        orch = await self._load(instance_id)
        return orch.planner.waiting_on() if orch is not None else None

    @client_operation
    async def query(
        self, query: InstanceQuery, top: int | None, continuation: str | None
    ) -> tuple[list[InstanceRecord], str | None]:
        return await self.store.query(query, top, continuation)

    def generations(self, instance_id: str) -> list[list[dict[str, Any]]]:
        """Histories of the executions before the current one that continued as new, oldest
        first: the last GENERATIONS_KEPT, remembered in memory while the instance runs here."""
        orch = self._active.get(instance_id)
        return [list(history) for history in orch.generations] if orch else []

    @client_operation
    async def count_by_status(self, query: InstanceQuery) -> dict[str, int]:
        """How many instances (entities too) match the query, by runtime status."""
        return await self.store.count_by_status(query)

    @client_operation
    async def purge(self, instance_ids: list[str]) -> int:
        """Delete finished instances; live ones are left alone."""
        finished = []
        for instance_id in instance_ids:
            check_instance_id(instance_id)
            record = await self.get_record(instance_id)
            if record is not None and record.runtime_status.is_terminal:
                finished.append(instance_id)
                self._finished_records.forget(instance_id)
        return await self.store.purge(finished)

    # -- entities ----------------------------------------------------------------------------

    def _entity_function(self, name: str):
        info = self.index.entities.get(name.lower())
        return info.user_function if info else None

    @client_operation
    async def signal_entity(
        self, name: str, key: str, operation: str, input_json: str | None
    ) -> None:
        await self._send_request(name, key, EntityRequest(new_id(), operation, True, input_json))

    @client_operation
    async def call_entity(
        self, name: str, key: str, operation: str, input_json: str | None
    ) -> OperationOutcome:
        """Send an operation as a call from outside, and wait until it is applied and stored."""
        request = EntityRequest(new_id(), operation, False, input_json)
        outcome = self._entity_calls[request.id] = asyncio.get_running_loop().create_future()
        try:
            await self._send_request(name, key, request)
            return await outcome
        finally:
            self._entity_calls.pop(request.id, None)

    async def _send_request(self, name: str, key: str, request: EntityRequest) -> None:
        check_entity_id(name, key)
        if self._entity_function(name) is None:
            raise EngineError(404, f"No entity function named '{name}' exists.")
        if not request.operation:
            raise EngineError(400, "An entity signal needs an operation (op=...).")
        check_payload("operation input", request.input)
        await self._send_to_entity(
            request_message(scheduler_id(name, key), request, self.clock.now())
        )

    @client_operation
    async def read_entity(self, name: str, key: str) -> InstanceRecord | None:
        """The entity's record if it has state; None if it has none (or never existed)."""
        check_entity_id(name, key)
        entity_id = scheduler_id(name, key)
        runtime = self._entities.get(entity_id)
        record = runtime.record if runtime else await self.store.get_instance(entity_id)
        return record.copy() if record is not None and record.entity_state is not None else None

    @client_operation
    async def entity_queue(self, name: str, key: str) -> list[EntityRequest]:
        """The operations sent to an entity and not yet applied, oldest first."""
        check_entity_id(name, key)
        entity_id = scheduler_id(name, key)
        runtime = self._entities.get(entity_id)
        if runtime is not None:
            messages = runtime.inbox
        else:
            loaded = await self.store.load(entity_id)
            messages = loaded[2] if loaded else []
        return [EntityRequest.from_message(m) for m in messages]

    async def _entity(self, entity_id: str) -> EntityRuntime:
        """The entity in memory, read from the store, or created on its first request."""
        runtime = self._entities.get(entity_id)
        if runtime is not None:
            return runtime
        async with self._entity_lock:
            runtime = self._entities.get(entity_id)
            if runtime is None:
                loaded = await self.store.load(entity_id)
                if loaded is None:
                    now = self.clock.now()
                    record = InstanceRecord(
                        entity_id,
                        entity_id[1:].partition("@")[0],
                        RuntimeStatus.Running,
                        now,
                        now,
                        "entity",
                    )
                    await self.store.ensure_entity(record)
                    runtime = EntityRuntime(record)
                else:
                    runtime = EntityRuntime(loaded[0], loaded[2])
                self._entities[entity_id] = runtime
        return runtime

    async def _send_to_entity(self, message: Message) -> None:
        runtime = await self._entity(message.instance_id)
        await self.store.send([message])
        runtime.inbox.append(message)
        self._notify_entity(runtime)

    def _notify_entity(self, runtime: EntityRuntime) -> None:
        if runtime.scheduled or runtime.busy or not runtime.inbox:
            return
        runtime.scheduled = True
        self._spawn(self._process_entity(runtime))

    async def _process_entity(self, runtime: EntityRuntime) -> None:
        """Every waiting request in one batch, one operation at a time, then one commit."""
        runtime.scheduled = False
        runtime.busy = True
        try:
            while runtime.inbox:
                batch = list(runtime.inbox)
                record = runtime.record.copy()
                seen = set(record.recent_requests)
                requests = []
                for message in batch:
                    request = EntityRequest.from_message(message)
                    if request.id not in seen:
                        seen.add(request.id)
                        requests.append(request)
                outcomes = await self.runner.entity_batch(record, requests)
                for outcome in outcomes:
                    if outcome.is_error:
                        log.error(
                            "%s: Function '%s (Entity)' failed '%s' operation %s with an error. "
                            "Reason: %s. IsReplay: False. State: Failed.",
                            record.instance_id,
                            record.name,
                            outcome.request.operation,
                            outcome.request.id,
                            outcome.result,
                        )
                now = self.clock.now()
                record.last_updated_time = now
                remember(record, [r.id for r in requests])
                responses = [m for m in (response_message(o, now) for o in outcomes) if m]
                if responses:
                    await self.store.send(responses)
                consumed = [m.message_id for m in batch]
                await self.store.commit(EpisodeCommit(record, [], consumed, status_changed=True))
                runtime.record = record
                done = set(consumed)
                runtime.inbox = [m for m in runtime.inbox if m.message_id not in done]
                for outcome in outcomes:
                    caller = self._entity_calls.get(outcome.request.id)
                    if caller is not None and not caller.done():
                        caller.set_result(outcome)
                for message in responses:
                    self._route(message)
        finally:
            runtime.busy = False
        self._notify_entity(runtime)

    # -- loading and recovery ----------------------------------------------------------------

    async def _load(self, instance_id: str) -> Orchestration | None:
        """The live instance in memory, read from the store if needed; None if finished/unknown."""
        orch = self._active.get(instance_id)
        if orch is not None:
            return orch
        async with self._instance_lock(instance_id):
            orch = self._active.get(instance_id)
            if orch is None:
                orch = await self._read(instance_id)
                if orch is not None:
                    self._active[instance_id] = orch
        return orch

    @contextlib.asynccontextmanager
    async def _instance_lock(self, instance_id: str) -> AsyncIterator[None]:
        """One loader or creator of an instance at a time: a load that raced a creation would
        read half of it and then commit beside the creator, under a stale ETag."""
        entry = self._instance_locks.setdefault(instance_id, InstanceLock())
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if not entry.users:
                del self._instance_locks[instance_id]

    async def _read(self, instance_id: str) -> Orchestration | None:
        """Rebuild a live instance from the store: its state, history and unconsumed inbox."""
        loaded = await self.store.load(instance_id)
        if loaded is None or loaded[0].runtime_status.is_terminal:
            return None
        record, history, inbox = loaded
        orch = Orchestration(record=record, planner=Planner(instance_id, record.execution_id))
        orch.history.extend(history)
        in_history = {e["MessageId"] for e in history if "MessageId" in e}
        orch.inbox = [m for m in inbox if m.message_id not in in_history]
        started = any(e["EventType"] == EventType.ExecutionStarted for e in history)
        if not started and not any(
            m.event["EventType"] == EventType.ExecutionStarted for m in orch.inbox
        ):
            orch.inbox.insert(0, self._restart_message(record))
        replay = self._dry_replay(orch) if history else None
        orch.planner.rebuild(history, replay)
        return orch

    def _restart_message(self, record: InstanceRecord) -> Message:
        """The start of an execution whose start message was not kept (continue-as-new)."""
        evt = execution_started(
            self.clock.now(),
            record.name,
            record.instance_id,
            record.execution_id,
            record.input,
            record.parent,
        )
        return Message(new_id(), record.instance_id, evt, record.execution_id)

    def _dry_replay(self, orch: Orchestration) -> ReplayResult | None:
        info = self.index.orchestrators.get(orch.record.name)
        if info is None:
            return None
        context = build_context(
            orch.history, [], orch.record.instance_id, _parent_id(orch.record), orch.record.input
        )
        return run_orchestrator(info.user_function, context)

    def _resume_work(self, orch: Orchestration) -> None:
        """After a restart or a rewind: run open activities again, re-arm timers, start children."""
        self._start_work(orch, orch.planner.pending_work(), ensure_children=True)

    # -- dispatch ------------------------------------------------------------------------------

    def _notify(self, orch: Orchestration) -> None:
        if orch.scheduled or orch.busy:
            return
        orch.scheduled = True
        self._spawn(self._process(orch))

    async def _process(self, orch: Orchestration) -> None:
        async with self._episode_slots:
            orch.scheduled = False
            orch.busy = True
            try:
                while await self._step(orch):
                    pass
            except StorageRequestError as err:
                await self._fail_unstorable(orch, err)
            finally:
                orch.busy = False

    async def _fail_unstorable(self, orch: Orchestration, err: StorageRequestError) -> None:
        """Storage refused an episode for good: fail the instance rather than leave it stuck."""
        record = orch.record.copy()
        now = self.clock.now()
        record.last_updated_time = now
        commit = EpisodeCommit(
            record,
            [event(EventType.OrchestratorStarted, now)],
            [m.message_id for m in orch.inbox if m.stored],
        )
        self._finish(commit, Outcome("Failed", error=f"its state could not be stored: {err}"), now)
        try:
            await self._commit(orch, commit)
        except StorageRequestError:
            log.exception("Instance '%s' could not be stored, even as failed", record.instance_id)
            self._evict(orch)

    async def _step(self, orch: Orchestration) -> bool:
        """One unit of progress for an instance; False when nothing can be done now."""
        record = orch.record
        if self._active.get(record.instance_id) is not orch:
            return False
        if record.runtime_status.is_terminal:
            self._evict(orch)
            return False
        control = next((m for m in orch.inbox if m.event["EventType"] in CONTROL_EVENTS), None)
        if control is not None:
            await self._apply_control(orch, control)
            return True
        if record.runtime_status == RuntimeStatus.Suspended:
            return False
        selection = orch.planner.select(orch.inbox)
        if not selection.events and not orch.force_episode:
            if selection.consumed:
                await self._commit(orch, EpisodeCommit(record.copy(), [], selection.consumed))
            return False
        orch.force_episode = False
        await self._episode(orch, selection.events, selection.consumed)
        return True

    async def _apply_control(self, orch: Orchestration, message: Message) -> None:
        record = orch.record.copy()
        now = self.clock.now()
        record.last_updated_time = now
        kind = message.event["EventType"]
        events = [message.event]
        consumed = [message.message_id]
        if kind == EventType.ExecutionTerminated:
            reason = message.event.get("Input")
            record.runtime_status = RuntimeStatus.Terminated
            record.output = to_json_text(reason)
            events.append(
                event(
                    EventType.ExecutionCompleted,
                    now,
                    OrchestrationStatus="Terminated",
                    Result=record.output,
                )
            )
            consumed = [m.message_id for m in orch.inbox]
        elif kind == EventType.ExecutionSuspended:
            if record.runtime_status in (RuntimeStatus.Running, RuntimeStatus.Pending):
                record.runtime_status = RuntimeStatus.Suspended
        elif (
            kind == EventType.ExecutionResumed and record.runtime_status == RuntimeStatus.Suspended
        ):
            started = any(e["EventType"] == EventType.ExecutionStarted for e in orch.history.events)
            record.runtime_status = RuntimeStatus.Running if started else RuntimeStatus.Pending
        await self._commit(orch, EpisodeCommit(record, events, consumed))

    async def _episode(
        self, orch: Orchestration, delivered: list[dict[str, Any]], consumed: list[str]
    ) -> None:
        record = orch.record.copy()
        now = self.clock.now()
        info = self.index.orchestrators.get(record.name)
        new_events = [event(EventType.OrchestratorStarted, now), *delivered]
        if info is None:
            result = ReplayResult(
                actions=[],
                is_done=True,
                error=f"The orchestrator function '{record.name}' doesn't exist.",
            )
        else:
            result = await self.runner.episode(
                EpisodeCall(
                    record.name,
                    record.instance_id,
                    record.execution_id,
                    orch.history,
                    new_events,
                    _parent_id(record),
                    record.input,
                )
            )
        plan = orch.planner.plan(result, now, delivered)
        new_events.extend(plan.new_events)
        record.last_updated_time = now
        record.runtime_status = RuntimeStatus.Running
        record.custom_status = (
            to_json_text(result.custom_status) if result.has_custom_status else None
        )
        plan.outcome = _within_limits(plan.outcome, record.custom_status)
        outbox = self._child_starts(orch, plan.work)
        for entity_id, request in plan.work.entity_messages:
            # Sent before the commit: a crash in between replays the episode, which sends the
            # same request id again, and the entity drops the repeat.
            await self._send_to_entity(request_message(entity_id, request, now))
        commit = EpisodeCommit(record, new_events, consumed, outbox)
        if plan.outcome is not None:
            self._finish(commit, plan.outcome, now)
        else:
            new_events.append(event(EventType.OrchestratorCompleted, now))
        ended = [*orch.history.events, *new_events] if commit.new_execution else None
        await self._commit(orch, commit)
        if ended is not None:
            orch.generations = [*orch.generations, ended][-GENERATIONS_KEPT:]
        if not commit.new_execution and not record.runtime_status.is_terminal:
            self._start_work(orch, plan.work, ensure_children=False)

    def _child_starts(self, orch: Orchestration, work: Work) -> list[Message]:
        messages = []
        record = orch.record
        for task_id, task in work.children:
            if task.name not in self.index.orchestrators:
                messages.append(
                    self._to_parent_message(
                        record.instance_id,
                        record.execution_id,
                        task_id,
                        failed=True,
                        reason=f"The orchestrator function '{task.name}' doesn't exist.",
                    )
                )
                continue
            parent = {
                "Name": record.name,
                "TaskScheduledId": task_id,
                "OrchestrationInstance": {
                    "InstanceId": record.instance_id,
                    "ExecutionId": record.execution_id,
                },
            }
            start = self._start_message(task.target, task.name, task.input, parent)
            start.message_id = start.event["MessageId"] = f"{record.execution_id}:{task_id}"
            messages.append(start)
        return messages

    def _finish(self, commit: EpisodeCommit, outcome: Outcome, now: datetime) -> None:
        record = commit.record
        if outcome.status == "ContinuedAsNew":
            start = self._start_message(
                record.instance_id, record.name, outcome.continue_input, record.parent
            )
            record.execution_id = start.execution_id
            record.input = outcome.continue_input
            record.output = None
            commit.new_events = []
            commit.new_execution = True
            commit.outbox = [start]
            return
        if outcome.status == "Completed":
            record.runtime_status = RuntimeStatus.Completed
            record.output = to_json_text(outcome.output)
        else:
            record.runtime_status = RuntimeStatus.Failed
            record.output = to_json_text(
                f"Orchestrator function '{record.name}' failed: {outcome.error}"
            )
            log.error(failure_line(record.instance_id, record.name, "Orchestrator", outcome.error))
        commit.new_events.append(
            event(
                EventType.ExecutionCompleted,
                now,
                OrchestrationStatus=str(record.runtime_status),
                Result=record.output,
            )
        )
        commit.new_events.append(event(EventType.OrchestratorCompleted, now))
        parent = record.parent
        if parent:
            failed = outcome.status != "Completed"
            commit.outbox.append(
                self._to_parent_message(
                    parent["OrchestrationInstance"]["InstanceId"],
                    parent["OrchestrationInstance"]["ExecutionId"],
                    parent["TaskScheduledId"],
                    failed=failed,
                    result=record.output,
                    reason=json.loads(record.output) if failed and record.output else None,
                )
            )

    def _to_parent_message(
        self,
        instance_id: str,
        execution_id: str,
        task_id: int,
        failed: bool,
        result: str | None = None,
        reason: str | None = None,
    ) -> Message:
        now = self.clock.now()
        if failed:
            evt = event(
                EventType.SubOrchestrationInstanceFailed,
                now,
                TaskScheduledId=task_id,
                Reason=reason,
                Details=reason,
            )
        else:
            evt = event(
                EventType.SubOrchestrationInstanceCompleted,
                now,
                TaskScheduledId=task_id,
                Result=result,
            )
        return Message(new_id(), instance_id, evt, execution_id)

    async def _commit(self, orch: Orchestration, commit: EpisodeCommit) -> None:
        consumed = set(commit.consumed)
        stored = [m.message_id for m in orch.inbox if m.stored and m.message_id in consumed]
        previous = orch.record
        commit.status_changed = (
            previous.runtime_status != commit.record.runtime_status
            or previous.custom_status != commit.record.custom_status
            or previous.execution_id != commit.record.execution_id
        )
        # The store deletes the stored messages it consumed; the outbox stays in memory.
        await self.store.commit(dataclasses.replace(commit, consumed=stored, outbox=[]))
        orch.record = commit.record
        if commit.new_execution:
            self._timers.cancel_instance(commit.record.instance_id)
            orch.planner = Planner(commit.record.instance_id, commit.record.execution_id)
            orch.history.clear()
        else:
            orch.history.extend(commit.new_events)
        orch.inbox = [m for m in orch.inbox if m.message_id not in consumed]
        for message in commit.outbox:
            if (
                message.event["EventType"] == EventType.ExecutionStarted
                and message.instance_id != commit.record.instance_id
            ):
                await self._create_child(message)
            else:
                self._route(message)
        if commit.record.runtime_status.is_terminal:
            self._finished_records.remember(commit.record)
            self._evict(orch)
        for waiter in self._watchers.pop(commit.record.instance_id, ()):
            if not waiter.done():
                waiter.set_result(None)

    async def wait_for_status(
        self, instance_id: str, statuses: set[RuntimeStatus], timeout: float
    ) -> InstanceRecord | None:
        """Wait until the instance has one of `statuses`; its last record either way."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            record = await self.get_record(instance_id)
            if record is not None and record.runtime_status in statuses:
                return record
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return record
            waiter = asyncio.get_running_loop().create_future()
            self._watchers.setdefault(instance_id, []).append(waiter)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter, remaining)

    def _evict(self, orch: Orchestration) -> None:
        instance_id = orch.record.instance_id
        self._timers.cancel_instance(instance_id)
        self.runner.discard(instance_id)
        if self._active.get(instance_id) is orch:
            del self._active[instance_id]

    def _route(self, message: Message) -> None:
        """Hand a stored message to its instance in memory (creating it for a start message).

        Every live instance is in memory from start-up on, so a start message for an id that is
        not in memory starts a new instance; one for a live instance is a duplicate that the
        planner drops.
        """
        orch = self._active.get(message.instance_id)
        if orch is None and message.event["EventType"] == EventType.ExecutionStarted:
            record = record_from_start(message, self.clock.now())
            orch = Orchestration(
                record=record, planner=Planner(record.instance_id, record.execution_id)
            )
            self._active[record.instance_id] = orch
        if orch is None:
            self._spawn(self._route_after_load(message))
            return
        orch.inbox.append(message)
        self._notify(orch)

    async def _route_after_load(self, message: Message) -> None:
        orch = await self._load(message.instance_id)
        if orch is not None and all(m.message_id != message.message_id for m in orch.inbox):
            orch.inbox.append(message)
            self._notify(orch)

    def _start_work(self, orch: Orchestration, work: Work, ensure_children: bool) -> None:
        record = orch.record
        for task_id, task in work.activities:
            self._start_activity(record, task_id, task)
        for task_id, due in work.timers:
            self._timers.arm((record.instance_id, record.execution_id, task_id), due)
        for task_id in work.canceled_timers:
            self._timers.cancel((record.instance_id, record.execution_id, task_id))
        if ensure_children:
            for task_id, task in work.children:
                self._spawn(self._ensure_child(orch, task_id, task))

    async def _create_child(self, start: Message) -> None:
        """Store a child's start, unless the same child (same parent task) already exists."""
        record = record_from_start(start, self.clock.now())
        async with self._instance_lock(start.instance_id):
            existing = await self.store.create_child(record, start)
            if existing is None:
                start.stored = True
                self._finished_records.forget(start.instance_id)
                self._route(start)  # in memory before the lock is let go
        if existing is not None and existing.runtime_status.is_terminal:
            self._route(self._child_outcome(existing))

    async def _ensure_child(self, orch: Orchestration, task_id: int, task: PendingTask) -> None:
        """After a restart: create a child that was never stored, or hand over its outcome."""
        for message in self._child_starts(orch, Work(children=[(task_id, task)])):
            if message.event["EventType"] == EventType.ExecutionStarted:
                await self._create_child(message)
            else:
                self._route(message)

    def _child_outcome(self, child: InstanceRecord) -> Message:
        parent = child.parent or {}
        instance = parent.get("OrchestrationInstance") or {}
        failed = child.runtime_status != RuntimeStatus.Completed
        return self._to_parent_message(
            instance.get("InstanceId", ""),
            instance.get("ExecutionId", ""),
            parent.get("TaskScheduledId", -1),
            failed=failed,
            result=child.output,
            reason=json.loads(child.output) if failed and child.output else None,
        )

    def _start_activity(self, record: InstanceRecord, task_id: int, task: PendingTask) -> None:
        instance_id, execution_id = record.instance_id, record.execution_id
        name = task.name or ""
        self._running_activities += 1
        if name not in self.index.activities:
            reason = LookupError(
                f"The function '{name}' doesn't exist, is disabled, or is not an activity function."
            )
            self._activity_done(
                instance_id, execution_id, task_id, name, failed_activity(name, reason)
            )
            return
        self.runner.start_activity(
            name,
            task.input,
            functools.partial(self._activity_done, instance_id, execution_id, task_id, name),
            record.created_time,
        )

    def _activity_done(
        self,
        instance_id: str,
        execution_id: str,
        task_id: int,
        name: str,
        outcome: ActivityOutcome,
    ) -> None:
        now = self.clock.now()
        if outcome.ok and outcome.result is not None and len(outcome.result) > MAX_PAYLOAD_CHARS:
            message = payload_too_large(f"result of activity '{name}'", len(outcome.result))
            outcome = ActivityOutcome(ok=False, reason=message, details=message)
        if not outcome.ok:
            log.error(
                "%s\n%s",
                failure_line(instance_id, name, "Activity", outcome.reason or "", task_id),
                outcome.details,
            )
        if outcome.ok:
            evt = event(
                EventType.TaskCompleted, now, TaskScheduledId=task_id, Result=outcome.result
            )
        else:
            evt = event(
                EventType.TaskFailed,
                now,
                TaskScheduledId=task_id,
                Reason=outcome.reason,
                Details=outcome.details,
            )
        message = Message(new_id(), instance_id, evt, execution_id)
        orch = self._active.get(instance_id)
        if orch is None:
            self._spawn(self._deliver(message))
        elif orch.record.execution_id == execution_id:
            orch.inbox.append(message)
            self._notify(orch)
        self._running_activities -= 1
        if not self._running_activities and self._drained is not None:
            if not self._drained.done():
                self._drained.set_result(None)
            self._drained = None

    def _on_timer(self, key: TimerKey, due: datetime) -> None:
        instance_id, execution_id, timer_id = key
        evt = event(
            EventType.TimerFired, self.clock.now(), TimerId=timer_id, FireAt=format_time(due)
        )
        self._spawn(self._deliver(Message(new_id(), instance_id, evt, execution_id)))

    async def _deliver(self, message: Message) -> None:
        """Hand a result to its live instance; results for finished executions are dropped."""
        orch = await self._load(message.instance_id)
        if orch is None or orch.record.execution_id != message.execution_id:
            return
        orch.inbox.append(message)
        self._notify(orch)


def _within_limits(outcome: Outcome | None, custom_status: str | None) -> Outcome | None:
    """The episode's outcome, turned into a failure where a payload passes the runtime's limits."""
    if custom_status is not None and len(custom_status) > MAX_CUSTOM_STATUS_CHARS:
        return Outcome(
            "Failed",
            error=f"the custom status is {len(custom_status):,} characters of JSON; the runtime "
            f"allows at most {MAX_CUSTOM_STATUS_CHARS:,} (16 KB of UTF-16)",
        )
    if outcome is None:
        return None
    if outcome.status == "Completed":
        output = to_json_text(outcome.output)
        if output is not None and len(output) > MAX_PAYLOAD_CHARS:
            return Outcome("Failed", error=payload_too_large("output", len(output)))
    if outcome.status == "ContinuedAsNew":
        text = outcome.continue_input
        if text is not None and len(text) > MAX_PAYLOAD_CHARS:
            return Outcome("Failed", error=payload_too_large("new input", len(text)))
    return outcome


def _status_after_inbox(orch: Orchestration) -> RuntimeStatus:
    """The status once the suspend and resume messages already accepted are applied."""
    status = orch.record.runtime_status
    for message in orch.inbox:
        kind = message.event["EventType"]
        if kind == EventType.ExecutionSuspended and status in (
            RuntimeStatus.Running,
            RuntimeStatus.Pending,
        ):
            status = RuntimeStatus.Suspended
        elif kind == EventType.ExecutionResumed and status == RuntimeStatus.Suspended:
            status = RuntimeStatus.Running
    return status


def _parent_id(record: InstanceRecord) -> str | None:
    parent = record.parent
    return parent["OrchestrationInstance"]["InstanceId"] if parent else None
