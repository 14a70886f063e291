"""Durable Task's entity messages <-> devhost's entity requests and outcomes, with no state or I/O.

devhost's entities keep the message shapes of Durable Functions 1.x (`engine/entities.py`): an
orchestration's call, signal, lock request or unlock is recorded as an EventSent to the entity,
and the answer comes back as an EventRaised named by the request id. The Durable Task SDK
replays exactly that shape (the one the Functions extension gives it), so the history a worker
sees needs no entity event of its own; this module turns the SDK's `sendEntityMessage` actions
into the planner's entity actions, and an entity's operation into a one-operation
`EntityBatchRequest` and the worker's `EntityBatchResult` back into an outcome.

An operation goes to a worker alone: what it sends (signals, orchestrations started) then
belongs to that operation, and gets ids derived from the operation's, so an operation applied
again after a crash sends the same ids, which their receivers drop as repeats.
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from google.protobuf import json_format, wrappers_pb2

from ..engine.actions import ActionType
from ..engine.entities import EntityRequest, OperationOutcome, OrchestrationStart
from ..taskhub.errors import EngineError
from ..taskhub.history import format_time
from ..taskhub.model import InstanceRecord
from ..taskhub.rules import check_instance_id, check_payload
from .proto import pb


def _time_text(message: Any, name: str) -> str | None:
    if not message.HasField(name):
        return None
    return format_time(getattr(message, name).ToDatetime(tzinfo=UTC))


class BadEntityMessage(Exception):
    """An entity message the engine cannot deliver; the orchestration that sent it fails."""


def sdk_entity_id(text: str | None) -> str | None:
    """`@name@key` as the engine keys it (the name in lower case), or None for what the SDK's
    `EntityInstanceId.parse` refuses: a worker could never run it (no '@' in name or key)."""
    text = text or ""
    name, at, key = text[1:].partition("@")
    if not text.startswith("@") or not at or not name or not key or "@" in key:
        return None
    return f"@{name.lower()}@{key}"


def _target(text: str | None) -> str:
    """An entity id as the engine keys it; anything else is refused."""
    target = sdk_entity_id(text)
    if target is None:
        raise BadEntityMessage(f"'{text or ''}' is not an entity id (@name@key)")
    return target


def entity_action(message: pb.SendEntityMessageAction) -> dict[str, Any]:
    """A worker's `sendEntityMessage` as the planner's entity action; a message to something
    that is not an entity id raises `BadEntityMessage`."""
    kind = message.WhichOneof("EntityMessageType")
    if kind == "entityOperationCalled":
        called = message.entityOperationCalled
        return {
            "actionType": ActionType.CallEntity,
            "instanceId": _target(optional_text(called, "targetInstanceId")),
            "operation": called.operation,
            "input": optional_text(called, "input"),
            "requestId": called.requestId or None,
        }
    if kind == "entityOperationSignaled":
        signaled = message.entityOperationSignaled
        return {
            "actionType": ActionType.SignalEntity,
            "instanceId": _target(optional_text(signaled, "targetInstanceId")),
            "operation": signaled.operation,
            "input": optional_text(signaled, "input"),
            "requestId": signaled.requestId or None,
            "scheduledTime": _time_text(signaled, "scheduledTime"),
        }
    if kind == "entityLockRequested":
        lock = message.entityLockRequested
        # Sorted and de-duplicated again after the names are lower-cased: the SDK did it
        # with the names as written, and a repeat would wait on a lock its section holds.
        lock_set = sorted({_target(entity) for entity in lock.lockSet})
        if lock.position != 0 or not lock_set or not lock.criticalSectionId:
            raise BadEntityMessage("a lock request starts at the first of a non-empty lock set")
        return {
            "actionType": ActionType.LockEntities,
            "instanceId": lock_set[0],
            "requestId": lock.criticalSectionId,
            "lockSet": lock_set,
        }
    unlock = message.entityUnlockSent
    return {
        "actionType": ActionType.UnlockEntity,
        "instanceId": _target(optional_text(unlock, "targetInstanceId")),
    }


def batch_request(record: InstanceRecord, request: EntityRequest) -> pb.EntityBatchRequest:
    """One operation, with the entity's state, for a worker."""
    return pb.EntityBatchRequest(
        instanceId=record.instance_id,
        entityState=text_value(record.entity_state),
        operations=[
            pb.OperationRequest(
                operation=request.operation,
                requestId=request.id,
                input=text_value(request.input),
            )
        ],
    )


def failure_dict(details: pb.TaskFailureDetails) -> dict[str, Any]:
    """A failure in the shape the SDK reads back from an entity's answer (DurableTask.Core's)."""
    failure: dict[str, Any] = {
        "ErrorType": details.errorType,
        "ErrorMessage": details.errorMessage,
        "IsNonRetriable": details.isNonRetriable,
    }
    if details.HasField("stackTrace"):
        failure["StackTrace"] = details.stackTrace.value
    if details.HasField("innerFailure"):
        failure["InnerFailure"] = failure_dict(details.innerFailure)
    if details.properties:
        failure["Properties"] = json_format.MessageToDict(details)["properties"]
    return failure


def operation_outcome(
    entity_id: str, request: EntityRequest, result: pb.EntityBatchResult
) -> tuple[str | None, OperationOutcome]:
    """The entity's state after the operation, and the operation's outcome and messages."""
    state = optional_text(result, "entityState") or None
    failed = result.failureDetails if result.HasField("failureDetails") else None
    if failed is None and result.results and result.results[0].HasField("failure"):
        failed = result.results[0].failure.failureDetails
    if failed is None and not result.results:
        failed = pb.TaskFailureDetails(
            errorType="devhost.EntityBatchFailed", errorMessage="The worker returned no result."
        )
    if failed is not None:
        return state, _failed(request, failed)
    success = result.results[0].success
    outcome = OperationOutcome(request, False, optional_text(success, "result") or "")
    for action in result.actions:
        derived = str(uuid5(NAMESPACE_URL, f"{entity_id}/{request.id}/{action.id}"))
        if action.HasField("sendSignal"):
            signal = action.sendSignal
            sent = EntityRequest(derived, signal.name, True, optional_text(signal, "input"))
            sent.due = _time_text(signal, "scheduledTime")
            try:
                outcome.signals.append((_target(signal.instanceId), sent))
            except BadEntityMessage as err:
                return state, _failed(
                    request,
                    pb.TaskFailureDetails(
                        errorType="devhost.BadEntityMessage", errorMessage=str(err)
                    ),
                )
        elif action.HasField("startNewOrchestration"):
            start = action.startNewOrchestration
            started = OrchestrationStart(
                start.name,
                start.instanceId or derived,
                optional_text(start, "input"),
                uuid5(NAMESPACE_URL, f"{entity_id}/{request.id}/{action.id}/execution").hex,
            )
            try:
                check_instance_id(started.instance_id)
                check_payload("orchestration input", started.input)
            except EngineError as refused:
                return state, _failed(
                    request,
                    pb.TaskFailureDetails(
                        errorType="devhost.OrchestrationStartRefused",
                        errorMessage=f"The operation's start of '{start.name}' is refused: "
                        f"{refused}",
                    ),
                )
            outcome.starts.append(started)
    return state, outcome


def _failed(request: EntityRequest, details: pb.TaskFailureDetails) -> OperationOutcome:
    outcome = OperationOutcome(request, True, json.dumps(details.errorMessage))
    outcome.failure = failure_dict(details)
    return outcome


def optional_text(message: Any, name: str) -> str | None:
    return getattr(message, name).value if message.HasField(name) else None


def text_value(text: str | None) -> wrappers_pb2.StringValue | None:
    return None if text is None else wrappers_pb2.StringValue(value=text)
