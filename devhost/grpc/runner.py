"""The engine's runner for Durable Task workers: episodes, activities and entity operations
become work items.

The engine hands an episode to a runner and plans from the answer; this runner makes the
episode an `OrchestratorRequest` (the execution's history and the episode's new events, through
the codec), waits for a connected worker's `OrchestratorResponse`, and gives the planner that
answer in its own terms. Activities go the same way (`ActivityRequest` -> `ActivityResponse`),
and an entity's operations one at a time (`EntityBatchRequest` -> `EntityBatchResult`).
Nothing here decides durability: what the engine stored is what a worker sees, so a worker that
disconnects, or a host that restarts, costs a repeated step, never a lost or doubled one.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from ..app.app_index import FunctionIndex
from ..app.http_call import HttpAnswer, HttpCall
from ..app.invoke import ActivityOutcome
from ..engine.actions import ActionType
from ..engine.entities import EntityRequest
from ..engine.replay import EpisodeCall, ReplayResult
from ..engine.warm import WarmStats
from ..runner import ActivityDone, ActivityTask, EntityBatch, FunctionRunner
from ..taskhub.history import EventType
from ..taskhub.model import InstanceRecord
from . import codec, entity_codec
from .proto import pb
from .wait_notices import WaitNotices
from .work_items import Kind, WorkDispatcher, WorkItem

log = logging.getLogger("devhost.grpc")
# instance id, name, input, the execution that carried it over (or None), message id
RaiseEvent = Callable[[str, str, str | None, str | None, str], Awaitable[None]]


@dataclass
class _Execution:
    """An execution's history as protobuf, converted once: each episode adds only its events."""

    execution_id: str
    past: list[pb.HistoryEvent] = field(default_factory=list)


class GrpcRunner(FunctionRunner):
    """Runs orchestrators and activities in the Durable Task workers connected to `dispatcher`.

    `raise_event(instance_id, name, input, carried_from, message_id)` delivers the events a
    worker sends to another orchestration (`send_event`) and those it carries over into a
    continue-as-new. They are delivered before the engine stores the episode, so a crash in
    between sends them again; their message ids are derived from the episode (`event_id`), so
    the instance that has one drops the repeat.
    """

    def __init__(
        self,
        index: FunctionIndex,
        dispatcher: WorkDispatcher,
        raise_event: RaiseEvent | None = None,
    ) -> None:
        super().__init__(index)
        self.dispatcher = dispatcher
        self.raise_event = raise_event
        self._executions: dict[str, _Execution] = {}
        self._items: set[WorkItem] = set()
        self.wait_notices = WaitNotices()  # the workers the log said work waits for
        self._stopped = False

    def describe(self) -> str:
        return "Durable Task SDK workers over gRPC run orchestrations, activities and entities"

    def launch(self) -> None:
        """Nothing to launch: workers connect by themselves."""

    async def start(self) -> None:
        self._stopped = False

    async def stop(self) -> None:
        self._stopped = True
        for item in list(self._items):
            self.dispatcher.cancel(item)
        self._items.clear()

    async def episode(self, call: EpisodeCall) -> ReplayResult:
        request = pb.OrchestratorRequest(
            instanceId=call.instance_id,
            executionId=codec.text_value(call.execution_id),
            pastEvents=self._past_events(call),
            newEvents=[codec.history_event(e) for e in call.new_events],
        )
        response = await self._run(
            WorkItem(
                Kind.ORCHESTRATION,
                call.name,
                pb.WorkItem(orchestratorRequest=request),
                lambda _: None,
                version=_version_of(call),
            )
        )
        answer = codec.episode_answer(response)
        await self._deliver_events(call, answer)
        return ReplayResult(
            actions=answer.actions,
            is_done=answer.is_done,
            output=answer.output,
            error=answer.error,
            custom_status=answer.custom_status,
            has_custom_status=answer.has_custom_status,
            incremental=True,
        )

    async def _deliver_events(self, call: EpisodeCall, answer: codec.EpisodeAnswer) -> None:
        if self.raise_event is None:
            return
        sender = call.instance_id, call.execution_id
        for action in answer.actions:
            if action["actionType"] == ActionType.SendEvent:
                await self.raise_event(
                    action["instanceId"],
                    action["name"],
                    action["input"],
                    None,
                    event_id(*sender, "sent", action["taskId"]),
                )
        for index, evt in enumerate(answer.carryover_events):
            if evt.HasField("eventRaised"):
                raised = evt.eventRaised
                await self.raise_event(
                    call.instance_id,
                    raised.name,
                    codec.optional_text(raised, "input"),
                    call.execution_id,
                    event_id(*sender, "carried", index),
                )

    def _past_events(self, call: EpisodeCall) -> list[pb.HistoryEvent]:
        execution = self._executions.get(call.instance_id)
        if execution is None or execution.execution_id != call.execution_id:
            execution = self._executions[call.instance_id] = _Execution(call.execution_id)
        events = call.history.events
        if len(execution.past) > len(events):  # history was rewritten (a rewind): start over
            execution.past.clear()
        execution.past.extend(codec.history_event(e) for e in events[len(execution.past) :])
        return execution.past

    def discard(self, instance_id: str) -> None:
        self._executions.pop(instance_id, None)

    def start_activity(
        self,
        name: str,
        input_json: str | None,
        done: ActivityDone,
        created: datetime,
        task: ActivityTask | None = None,
    ) -> None:
        request = _activity_request(name, input_json, task)
        version = task.version if task is not None else None
        item = WorkItem(
            Kind.ACTIVITY, name, pb.WorkItem(activityRequest=request), lambda _: None, version
        )

        def finished(response: pb.ActivityResponse) -> None:
            self._items.discard(item)
            if not self._stopped:
                done(_activity_outcome(response))

        item.done = finished
        self._submit(item)

    async def _run(self, item: WorkItem) -> Any:
        """The worker's answer to an episode or an entity operation."""
        answer: asyncio.Future = asyncio.get_running_loop().create_future()

        def finished(response: pb.OrchestratorResponse) -> None:
            if not answer.done():
                answer.set_result(response)

        item.done = finished
        self._submit(item)
        try:
            return await answer
        finally:
            self._items.discard(item)
            if not answer.done():  # the engine stopped waiting (it stops): drop the item
                self.dispatcher.cancel(item)

    async def _entity_batch(
        self, record: InstanceRecord, requests: list[EntityRequest]
    ) -> EntityBatch:
        """Each operation goes to a worker alone (see `entity_codec`), on the state the one
        before it left."""
        batch = EntityBatch(record.entity_state)
        for request in requests:
            current = replace(record, entity_state=batch.state)
            message = pb.WorkItem(entityRequest=entity_codec.batch_request(current, request))
            item = WorkItem(Kind.ENTITY, record.name.lower(), message, lambda _: None)
            result = await self._run(item)
            state, outcome = entity_codec.operation_outcome(record.instance_id, request, result)
            if not outcome.is_error:
                batch.state = state
            batch.outcomes.append(outcome)
        return batch

    async def http(self, name: str, call: HttpCall) -> HttpAnswer:
        raise NotImplementedError("a Durable Task worker has no HTTP functions")

    async def warm_stats(self) -> WarmStats:
        return WarmStats()

    def waiting_for(self, instance_id: str) -> str | None:
        """A sentence for an instance whose work no connected worker has taken yet: none that
        registers it is connected, or those that are have no room now."""
        for item in self._items:
            if item.owner is None and _instance_of(item) == instance_id:
                if self.dispatcher.accepted(item):
                    return f"waits for a free worker: {_wanted(item, 'every')} is busy"
                return f"waits for {_wanted(item)}"
        return None

    def _submit(self, item: WorkItem) -> None:
        """Queue the item; say so in the log when no connected worker registers its name."""
        self._items.add(item)
        self.dispatcher.submit(item)
        wanted = _wanted(item)
        if item.owner is not None or self.dispatcher.accepted(item):
            self.wait_notices.served(wanted)
        elif self.wait_notices.first(wanted):
            log.warning("Instance '%s' waits for %s", _instance_of(item), wanted)


def _activity_request(
    name: str, input_json: str | None, task: ActivityTask | None
) -> pb.ActivityRequest:
    """What a worker's activity context shows: the orchestration and task it runs for."""
    if task is None:
        return pb.ActivityRequest(name=name, input=codec.text_value(input_json))
    return pb.ActivityRequest(
        name=name,
        version=codec.text_value(task.version),
        input=codec.text_value(input_json),
        orchestrationInstance=pb.OrchestrationInstance(
            instanceId=task.instance_id, executionId=codec.text_value(task.execution_id)
        ),
        taskId=task.task_id,
    )


def _instance_of(item: WorkItem) -> str:
    if item.kind == Kind.ORCHESTRATION:
        return item.message.orchestratorRequest.instanceId
    if item.kind == Kind.ENTITY:
        return item.message.entityRequest.instanceId
    return item.message.activityRequest.orchestrationInstance.instanceId


KIND_WORDS = {Kind.ORCHESTRATION: "orchestrator", Kind.ACTIVITY: "activity", Kind.ENTITY: "entity"}


def _wanted(item: WorkItem, article: str = "a") -> str:
    """The worker an item waits for, in words."""
    kind = KIND_WORDS[item.kind]
    version = f" (version '{item.version}')" if item.version else ""
    return f"{article} Durable Task worker that registers the {kind} '{item.name}'{version}"


def _version_of(call: EpisodeCall) -> str | None:
    """The version the execution was started with (its work-item filters may ask for one)."""
    for evt in itertools.chain(call.history.events, call.new_events):  # it comes first
        if evt["EventType"] == EventType.ExecutionStarted:
            return evt.get("Version") or None
    return None


def _activity_outcome(response: pb.ActivityResponse) -> ActivityOutcome:
    """A worker's activity answer as the engine records it (a failure keeps its details)."""
    if response.HasField("failureDetails"):
        details = response.failureDetails
        return ActivityOutcome(
            ok=False, reason=details.errorMessage, details=codec.failure_text(details)
        )
    return ActivityOutcome(ok=True, result=codec.optional_text(response, "result"))


def event_id(instance_id: str, execution_id: str, kind: str, place: int) -> str:
    """The message id of an event an episode sends: the same each time that episode runs."""
    return str(uuid5(NAMESPACE_URL, f"{instance_id}/{execution_id}/{kind}/{place}"))
