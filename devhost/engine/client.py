"""The client's operations on orchestrations: start, raise, terminate, suspend, resume, rewind,
restart, status, query and purge, checked and answered as the runtime does.

What a client asks for is stored before it is acknowledged (a 202 means it is stored), then
handed to the instance in memory, whose episodes apply it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from ..app.app_index import FunctionIndex
from ..clock import Clock
from ..store.base import InstanceExistsError, TaskHubStore
from ..store.bounded import bounded_gather
from ..taskhub.errors import EngineError, InstanceStatusError
from ..taskhub.history import NO_OPTIONS, EventType, StartOptions, event, event_raised
from ..taskhub.model import (
    InstanceQuery,
    InstanceRecord,
    Message,
    RuntimeStatus,
    is_entity_id,
    record_from_start,
)
from ..taskhub.ordering import InstanceOrder
from ..taskhub.rules import check_instance_id, check_name, check_payload
from .dispatch import Dispatch
from .entity_runtime import EntityRuntimes
from .instances import LiveInstances, Orchestration
from .messages import new_id, start_message
from .planner import WaitingOn

PURGE_GROUP = 100  # ids a purge locks at once (the Azure store reads a group with one query)
GROUPS_AT_ONCE = 4  # groups purged at once: the store's transactions overlap across them


class ClientOperations:
    """What a durable client asks of orchestrations (entities: `EntityRuntimes`)."""

    def __init__(
        self,
        index: FunctionIndex,
        store: TaskHubStore,
        clock: Clock,
        instances: LiveInstances,
        entities: EntityRuntimes,
        dispatch: Dispatch,
    ) -> None:
        self.index = index
        self.store = store
        self.clock = clock
        self.instances = instances
        self.entities = entities
        self.dispatch = dispatch

    async def start_new(
        self,
        name: str,
        instance_id: str | None,
        input_json: str | None,
        options: StartOptions = NO_OPTIONS,
        execution_id: str | None = None,
    ) -> str:
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
        start = start_message(
            self.clock.now(), instance_id, name, input_json, None, options, execution_id
        )
        start.stored = True
        record = record_from_start(start, self.clock.now())
        async with self.instances.lock(instance_id):
            try:
                await self.store.create_instance(record, start)
            except InstanceExistsError:
                raise EngineError(
                    409,
                    f"An orchestration instance with the id '{instance_id}' is already running.",
                ) from None
            self.instances.finished.forget(instance_id)
            orch = self.instances.start(record)
        self.instances.deliver(orch, start)
        return instance_id

    async def raise_event(
        self,
        instance_id: str,
        name: str,
        input_json: str | None,
        carried_from: str | None = None,
        message_id: str | None = None,
    ) -> None:
        check_instance_id(instance_id)
        check_name("Event", name)
        check_payload("event data", input_json)
        evt = event_raised(self.clock.now(), name, input_json, carried_from)
        await self._send_control(instance_id, evt, message_id=message_id)

    async def terminate(self, instance_id: str, reason: str) -> None:
        check_instance_id(instance_id)
        await self._send_control(
            instance_id, event(EventType.ExecutionTerminated, self.clock.now(), Input=reason)
        )

    async def suspend(self, instance_id: str, reason: str) -> None:
        check_instance_id(instance_id)
        await self._send_control(
            instance_id,
            event(EventType.ExecutionSuspended, self.clock.now(), Reason=reason),
            allowed={RuntimeStatus.Running, RuntimeStatus.Pending},
        )

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
        message_id: str | None = None,
    ) -> None:
        """Store a message for a live instance: 404 if unknown, 410 if it has finished, and 500
        with the runtime's sentence if it is in a status the operation refuses (suspending twice,
        resuming a running instance): the real host lets that exception through as a 500.

        A `message_id` the caller derived makes the message once-only: sent again (its sender's
        episode ran again after a crash), it is dropped while the instance still holds it,
        waiting or consumed."""
        orch = await self.instances.load(instance_id)
        if orch is None:
            record = await self.store.get_instance(instance_id)
            if record is None or not record.runtime_status.is_terminal:  # none, or not yet
                raise EngineError(404, f"No instance with ID '{instance_id}' found.")
            raise EngineError(
                410, f"Instance '{instance_id}' has already finished ({record.runtime_status})."
            )
        if allowed is not None:
            status = status_after_inbox(orch)
            if status not in allowed:
                verb = "suspend" if evt["EventType"] == EventType.ExecutionSuspended else "resume"
                raise InstanceStatusError(
                    f"Cannot {verb} orchestration instance in the {status} state."
                )
        if message_id is not None and _holds(orch, message_id):
            return
        evt["MessageId"] = message_id = message_id or new_id()
        message = Message(message_id, instance_id, evt, stored=True)
        await self.store.send([message])
        self.instances.deliver(orch, message)

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
        self.instances.finished.forget(instance_id)
        await self.store.replace_history(record, kept)
        orch = await self.instances.load(instance_id)
        if orch is not None:
            orch.force_episode = True
            self.dispatch.resume(orch)
            self.instances.notify(orch)

    async def _rewind_child(self, instance_id: str, reason: str) -> None:
        with contextlib.suppress(EngineError):  # the child already left the failed state
            await self._rewind(instance_id, reason)

    async def restart(self, instance_id: str, with_new_id: bool) -> str:
        check_instance_id(instance_id)
        record = await self.store.get_instance(instance_id)
        if record is None:
            raise EngineError(404, f"No instance with ID '{instance_id}' found.")
        target = new_id() if with_new_id else instance_id
        return await self.start_new(record.name, target, record.input, record.start_options)

    async def get_record(self, instance_id: str) -> InstanceRecord | None:
        """From memory for an instance held here or that finished here: this host holds the
        hub's lease, and a held record is replaced only after its commit, so it is the stored
        one. Else a store read."""
        orch = self.instances.get(instance_id)
        if orch is not None:
            return orch.record.copy()
        held = self.entities.held_record(instance_id)
        if held is not None:
            return held
        finished = self.instances.finished.get(instance_id)
        if finished is not None:
            return finished
        return await self.store.get_instance(instance_id)

    async def get_history(self, instance_id: str) -> list[dict[str, Any]]:
        history = self.instances.history(instance_id)
        return history if history is not None else await self.store.get_history(instance_id)

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
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.instances.watch(instance_id), remaining)

    async def waiting_on(self, instance_id: str) -> WaitingOn | None:
        """What a live orchestration waits for (timers, events, tasks); None if it is not live."""
        if is_entity_id(instance_id):
            return None
        orch = await self.instances.load(instance_id)
        return orch.planner.waiting_on() if orch is not None else None

    async def query(
        self, query: InstanceQuery, top: int | None, continuation: str | None
    ) -> tuple[list[InstanceRecord], str | None]:
        return await self.store.query(query, top, continuation)

    async def summaries(
        self, query: InstanceQuery, order: InstanceOrder, top: int, token: str | None
    ) -> tuple[list[InstanceRecord], str | None]:
        return await self.store.summaries(query, order, top, token)

    async def count_by_status(self, query: InstanceQuery) -> dict[str, int]:
        """How many instances (entities too) match the query, by runtime status."""
        return await self.store.count_by_status(query)

    async def purge(self, instance_ids: list[str]) -> int:
        """Delete finished instances; live ones are left alone (the store reads the status of
        those not held here as it deletes them, so a purge of thousands reads nothing twice).
        A group's ids are locked while it is purged, as a start locks its id: a start of one
        of them waits for that group only, and what it writes is not deleted after it."""
        for instance_id in instance_ids:
            check_instance_id(instance_id)
        ids = sorted(set(instance_ids))
        groups = [ids[i : i + PURGE_GROUP] for i in range(0, len(ids), PURGE_GROUP)]
        return sum(await bounded_gather((self._purge_group(g) for g in groups), GROUPS_AT_ONCE))

    async def _purge_group(self, instance_ids: list[str]) -> int:
        async with self.instances.lock_all(instance_ids):
            candidates = []
            for instance_id in instance_ids:
                orch = self.instances.get(instance_id)
                held = orch.record if orch is not None else self.entities.held_record(instance_id)
                if held is None or held.runtime_status.is_terminal:
                    candidates.append(instance_id)
                    self.instances.finished.forget(instance_id)
            return await self.store.purge(candidates, finished_only=True)

    def refuse_while_running(self) -> None:
        """A 409 if any orchestration is live: the hub is deleted only once they stopped."""
        live = self.instances.live_ids()
        if live:
            raise EngineError(
                409, f"{len(live)} instances are still running; terminate them first."
            )

    async def delete_hub(self) -> None:
        """Every instance and entity, in the store and in memory."""
        self.entities.forget_all()
        self.instances.finished.clear()
        await self.store.delete_hub()


def status_after_inbox(orch: Orchestration) -> RuntimeStatus:
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


def _holds(orch: Orchestration, message_id: str) -> bool:
    """Whether the instance has the message already: in its inbox, or in its history."""
    return any(m.message_id == message_id for m in orch.inbox) or any(
        e.get("MessageId") == message_id for e in orch.history.events
    )
