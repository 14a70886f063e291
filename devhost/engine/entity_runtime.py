"""The entity runtime: each entity's requests, applied in batches, one operation at a time.

An entity is in memory from its first request (or from start-up, if it had requests waiting);
its requests are stored before they are queued, and a batch's state, its consumed requests and
the ids it has seen are committed together, so a request is applied exactly once. Responses to
orchestrations go out through routing; a client's call waits for its outcome here.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from ..app.app_index import FunctionIndex
from ..clock import Clock
from ..store.base import TaskHubStore
from ..taskhub.errors import EngineError
from ..taskhub.model import EpisodeCommit, InstanceRecord, Message, RuntimeStatus
from ..taskhub.rules import check_entity_id, check_payload
from .background import Background
from .entities import (
    EntityRequest,
    OperationOutcome,
    remember,
    request_message,
    response_message,
    scheduler_id,
)
from .messages import new_id
from .routing import Routing
from .user_code import UserCode

log = logging.getLogger("devhost.engine")


@dataclass
class EntityRuntime:
    """An entity in memory: its state row and the requests waiting for it."""

    record: InstanceRecord
    inbox: list[Message] = field(default_factory=list)
    scheduled: bool = False
    busy: bool = False


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

    def held_record(self, entity_id: str) -> InstanceRecord | None:
        """A copy of the entity's record if it is in memory."""
        runtime = self._entities.get(entity_id)
        return runtime.record.copy() if runtime is not None else None

    def forget_all(self) -> None:
        """Drop every entity from memory (the hub is deleted): the next request reads anew."""
        self._entities.clear()

    async def resume(self, entity_id: str) -> None:
        """At start-up: run the requests the entity has waiting."""
        self._notify(await self._entity(entity_id))

    # -- a client's requests ---------------------------------------------------------------

    async def signal(self, name: str, key: str, operation: str, input_json: str | None) -> None:
        await self._send_request(name, key, EntityRequest(new_id(), operation, True, input_json))

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
        runtime = await self._entity(message.instance_id)
        await self.store.send([message])
        runtime.inbox.append(message)
        self._notify(runtime)

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
        """Every waiting request in one batch, one operation at a time, then one commit."""
        runtime.scheduled = False
        runtime.busy = True
        try:
            while runtime.inbox:
                await self._run_batch(runtime)
        finally:
            runtime.busy = False
        self._notify(runtime)

    async def _run_batch(self, runtime: EntityRuntime) -> None:
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
            caller = self._calls.get(outcome.request.id)
            if caller is not None and not caller.done():
                caller.set_result(outcome)
        for message in responses:
            self.routing.route(message)
