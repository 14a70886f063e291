"""The entity runtime: each entity's requests, applied in batches, one operation at a time.

An entity is in memory from its first request (or from start-up, if it had requests waiting);
its requests are stored before they are queued, and a batch's state, its consumed requests and
the ids it has seen are committed together, so a request is applied exactly once. Responses to
orchestrations go out through routing; a client's call waits for its outcome here. Which
requests a batch takes (deferred signals wait for their moment, a critical section's lock holds
others' requests back) is `entity_turns`'; a deferred signal wakes its entity on the clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from ..app.app_index import FunctionIndex
from ..clock import Clock, Wakeup
from ..store.base import TaskHubStore
from ..taskhub.errors import EngineError
from ..taskhub.history import format_time
from ..taskhub.model import EpisodeCommit, InstanceRecord, Message, RuntimeStatus
from ..taskhub.rules import check_entity_id, check_payload
from .background import Background
from .entities import (
    EntityRequest,
    OperationOutcome,
    OrchestrationStart,
    lock_granted_message,
    remember,
    request_message,
    response_message,
    scheduler_id,
    sent_by,
)
from .entity_turns import take_turn
from .messages import new_id
from .routing import Routing
from .user_code import UserCode

log = logging.getLogger("devhost.engine")


@dataclass
class EntityView:
    """What a client may read of an entity: its record and how many requests wait for it."""

    record: InstanceRecord
    waiting: int


@dataclass
class EntityRuntime:
    """An entity in memory: its state row and the requests waiting for it."""

    record: InstanceRecord
    inbox: list[Message] = field(default_factory=list)
    scheduled: bool = False
    busy: bool = False
    wake_at: datetime | None = None
    wakeup: Wakeup | None = None
    sending: int = 0  # requests on their way into the store: the entity may not be removed


class EntityRuntimes:
    """The entities in memory, their requests, and the clients waiting for a call's outcome."""

    def __init__(
        self,
        index: FunctionIndex,
        store: TaskHubStore,
        clock: Clock,
        runner: UserCode,
        background: Background,
        routing: Routing,
    ) -> None:
        self.index = index
        self.store = store
        self.clock = clock
        self.runner = runner
        self.background = background
        self.routing = routing
        self._entities: dict[str, EntityRuntime] = {}
        self._lock = asyncio.Lock()
        self._calls: dict[str, asyncio.Future[OperationOutcome]] = {}
        # Starts an orchestration an operation asked for (the engine wires it; a repeat of an
        # instance id that exists is dropped there).
        self.start_orchestration: Callable[[OrchestrationStart], Awaitable[None]] | None = None

    def held_record(self, entity_id: str) -> InstanceRecord | None:
        """A copy of the entity's record if it is in memory."""
        runtime = self._entities.get(entity_id)
        return runtime.record.copy() if runtime is not None else None

    def forget_all(self) -> None:
        """Drop every entity from memory (the hub is deleted): the next request reads anew."""
        for runtime in self._entities.values():
            self._wake_at(runtime, None)
        self._entities.clear()

    async def resume(self, entity_id: str) -> None:
        """At start-up: run the requests the entity has waiting."""
        self._notify(await self._entity(entity_id))

    # -- a client's requests ---------------------------------------------------------------

    async def signal(
        self,
        name: str,
        key: str,
        operation: str,
        input_json: str | None,
        due: datetime | None = None,
        request_id: str | None = None,
    ) -> None:
        """Store a signal (deferred until `due`, if given); a repeated `request_id` is applied
        once."""
        request = EntityRequest(request_id or new_id(), operation, True, input_json)
        request.due = None if due is None else format_time(due)
        await self._send_request(name, key, request)

    async def call(
        self, name: str, key: str, operation: str, input_json: str | None
    ) -> OperationOutcome:
        """Send an operation as a call from outside, and wait until it is applied and stored."""
        request = EntityRequest(new_id(), operation, False, input_json)
        outcome = self._calls[request.id] = asyncio.get_running_loop().create_future()
        try:
            await self._send_request(name, key, request)
            return await outcome
        finally:
            self._calls.pop(request.id, None)

    async def _send_request(self, name: str, key: str, request: EntityRequest) -> None:
        check_entity_id(name, key)
        info = self.index.entities.get(name.lower())
        if info is None or info.user_function is None:
            raise EngineError(404, f"No entity function named '{name}' exists.")
        if not request.operation:
            raise EngineError(400, "An entity signal needs an operation (op=...).")
        check_payload("operation input", request.input)
        await self.send(request_message(scheduler_id(name, key), request, self.clock.now()))

    async def read(self, name: str, key: str) -> InstanceRecord | None:
        """The entity's record if it has state; None if it has none (or never existed)."""
        check_entity_id(name, key)
        entity_id = scheduler_id(name, key)
        runtime = self._entities.get(entity_id)
        record = runtime.record if runtime else await self.store.get_instance(entity_id)
        return record.copy() if record is not None and record.entity_state is not None else None

    async def view(self, entity_id: str) -> EntityView | None:
        """The entity's record (with or without state) and its waiting requests; None if it
        was never sent anything."""
        runtime = self._entities.get(entity_id)
        if runtime is not None:
            return EntityView(runtime.record.copy(), len(runtime.inbox))
        loaded = await self.store.load(entity_id)
        return None if loaded is None else EntityView(loaded[0], len(loaded[2]))

    async def release_lock(self, entity_id: str, holder: str) -> None:
        """Let go of a lock whose critical section will never end (its orchestration is gone):
        an unlock from the holder, stored and applied as the holder's own would be."""
        request = EntityRequest(new_id(), "", True, None, parent=holder, unlock=True)
        await self.send(request_message(entity_id, request, self.clock.now()))

    async def remove_if_empty(self, entity_id: str) -> bool:
        """Delete an entity that has no state, no lock and nothing waiting."""
        async with self._lock:
            runtime = self._entities.get(entity_id)
            if runtime is not None and (
                runtime.inbox or runtime.busy or runtime.scheduled or runtime.sending
            ):
                return False
            view = await self.view(entity_id)
            if view is None or view.waiting or view.record.entity_state is not None:
                return False
            if view.record.entity_lock is not None:
                return False
            self._entities.pop(entity_id, None)
            return await self.store.purge([entity_id]) > 0

    async def queue(self, name: str, key: str) -> list[EntityRequest]:
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

    # -- running requests ------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        """Store a request for its entity and queue it there."""
        runtime = await self._sending_to(message.instance_id)
        try:
            await self.store.send([message])
        finally:
            runtime.sending -= 1
        self._queue(runtime, message)

    async def _sending_to(self, entity_id: str) -> EntityRuntime:
        """The entity in memory, counted as having a request on its way until the caller
        takes the count back (`remove_if_empty` leaves it alone meanwhile)."""
        runtime = await self._entity(entity_id)
        runtime.sending += 1
        return runtime

    async def _entity(self, entity_id: str) -> EntityRuntime:
        """The entity in memory, read from the store, or created on its first request."""
        runtime = self._entities.get(entity_id)
        if runtime is not None:
            return runtime
        async with self._lock:
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

    def _notify(self, runtime: EntityRuntime) -> None:
        if runtime.scheduled or runtime.busy or not runtime.inbox:
            return
        runtime.scheduled = True
        self.background.spawn(self._process(runtime))

    async def _process(self, runtime: EntityRuntime) -> None:
        """Every request it can take now, in batches of one commit each, one operation at a
        time; what waits (a deferred signal, others' requests while locked) stays queued."""
        runtime.scheduled = False
        runtime.busy = True
        try:
            while runtime.inbox and await self._run_batch(runtime):
                pass  # a request that came during a turn is seen by the next
        finally:
            runtime.busy = False

    def _wake_at(self, runtime: EntityRuntime, due: datetime | None) -> None:
        """Run the entity again when its earliest deferred signal is due."""
        if runtime.wake_at == due:
            return
        if runtime.wakeup is not None:
            runtime.wakeup.cancel()
        runtime.wakeup, runtime.wake_at = None, due
        if due is not None:

            def wake() -> None:
                runtime.wakeup, runtime.wake_at = None, None
                self._notify(runtime)

            runtime.wakeup = self.clock.call_at(due, wake)

    async def _run_batch(self, runtime: EntityRuntime) -> bool:
        """One turn (see `entity_turns`), stored in one commit; False if it took nothing."""
        record = runtime.record.copy()
        now = self.clock.now()
        turn = take_turn(runtime.inbox, record.entity_lock, set(record.recent_requests), now)
        self._wake_at(runtime, turn.next_due)
        if not turn.consumed:
            return False
        outcomes: list[OperationOutcome] = []
        to_entities: list[Message] = []
        operations: list[EntityRequest] = []
        for step in [*turn.steps, None]:
            if step is not None and step.is_operation:
                operations.append(step)
                continue
            if operations:
                outcomes += await self.runner.entity_batch(record, operations)
                operations = []
            if step is not None and step.lock_set is not None:
                to_entities += self._lock_passed_on(step, now)
        self._log_failures(record, outcomes)
        record.last_updated_time = now
        record.entity_lock = turn.lock
        remember(record, [step.id for step in turn.steps])
        responses = [m for m in (response_message(o, now) for o in outcomes) if m]
        responses += [
            lock_granted_message(step, now)
            for step in turn.steps
            if step.lock_set is not None and step.position + 1 >= len(step.lock_set)
        ]
        to_entities += sent_by(record.instance_id, outcomes, now)
        targets = [await self._sending_to(message.instance_id) for message in to_entities]
        try:
            if responses or to_entities:
                await self.store.send(responses + to_entities)
            for outcome in outcomes:
                for start in outcome.starts:
                    if self.start_orchestration is not None:
                        await self.start_orchestration(start)
            await self.store.commit(EpisodeCommit(record, [], turn.consumed, status_changed=True))
        finally:
            for target in targets:
                target.sending -= 1
        runtime.record = record
        done = set(turn.consumed)
        runtime.inbox = [m for m in runtime.inbox if m.message_id not in done]
        for outcome in outcomes:
            caller = self._calls.get(outcome.request.id)
            if caller is not None and not caller.done():
                caller.set_result(outcome)
        for message in responses:
            self.routing.route(message)
        for target, message in zip(targets, to_entities, strict=True):
            self._queue(target, message)
        return True

    def _queue(self, runtime: EntityRuntime, message: Message) -> None:
        runtime.inbox.append(message)
        self._notify(runtime)

    @staticmethod
    def _lock_passed_on(step: EntityRequest, now: datetime) -> list[Message]:
        """A lock request goes on to the next entity of its set (the last one grants it)."""
        lock_set = step.lock_set or []
        if step.position + 1 >= len(lock_set):
            return []
        target = lock_set[step.position + 1]
        return [request_message(target, replace(step, position=step.position + 1), now)]

    @staticmethod
    def _log_failures(record: InstanceRecord, outcomes: list[OperationOutcome]) -> None:
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
