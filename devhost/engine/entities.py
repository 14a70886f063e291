"""Durable entities: operations run through the SDK's entity handle, one at a time.

Each operation is handed to the SDK as a batch of one, so an operation that raises leaves the
state as it was before it (the SDK itself would keep what the failing operation had set) and
fails only that operation. The engine commits the state of a whole batch of operations at once,
with the ids of the requests it consumed, so a request is applied exactly once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..taskhub.history import EventType, event
from ..taskhub.model import InstanceRecord, Message

RECENT_LIMIT = 500  # request ids remembered per entity, to drop a request delivered twice


@dataclass
class EntityRequest:
    """An operation sent to an entity by a client, an orchestration or another entity.

    Besides operations, an orchestration's critical section sends lock requests (`lock_set`:
    every entity it locks, in order; `position`: this one) and unlocks; `due` defers a signal
    until that moment (ISO text).
    """

    id: str
    operation: str
    signal: bool
    input: str | None
    parent: str | None = None
    parent_execution: str | None = None
    due: str | None = None
    lock_set: list[str] | None = None
    position: int = 0
    unlock: bool = False

    @classmethod
    def from_message(cls, message: Message) -> EntityRequest:
        body = json.loads(message.event.get("Input") or "{}")
        return cls(
            id=body.get("id") or message.message_id,
            operation=body.get("op") or "",
            signal=bool(body.get("signal", True)),
            input=body.get("input"),
            parent=body.get("parent"),
            parent_execution=body.get("parentExecution"),
            due=body.get("due"),
            lock_set=body.get("lockset"),
            position=int(body.get("pos") or 0),
            unlock=bool(body.get("unlock")),
        )

    def to_json(self) -> str:
        body: dict[str, Any] = {
            "id": self.id,
            "op": self.operation,
            "signal": self.signal,
            "input": self.input,
            "parent": self.parent,
            "parentExecution": self.parent_execution,
        }
        extra = {"due": self.due, "lockset": self.lock_set, "pos": self.position or None}
        body.update({key: value for key, value in extra.items() if value is not None})
        if self.unlock:
            body["unlock"] = True
        return json.dumps(body)

    @property
    def is_operation(self) -> bool:
        return self.lock_set is None and not self.unlock


@dataclass
class OrchestrationStart:
    """An orchestration an entity's operation starts (a Durable Task SDK entity can)."""

    name: str
    instance_id: str
    input: str | None
    # Derived from the operation, so the operation applied again after a crash knows its start.
    execution_id: str | None = None


@dataclass
class OperationOutcome:
    request: EntityRequest
    is_error: bool
    result: str  # JSON text
    signals: list[tuple[str, EntityRequest]] = field(default_factory=list)  # sent by the op
    starts: list[OrchestrationStart] = field(default_factory=list)
    failure: dict[str, Any] | None = None  # a failure's details (ErrorType, ErrorMessage, ...)


def entity_id_parts(instance_id: str) -> tuple[str, str]:
    """@name@key -> (name, key)."""
    name, _, key = instance_id[1:].partition("@")
    return name, key


def scheduler_id(name: str, key: str) -> str:
    return f"@{name.lower()}@{key}"


def request_message(entity_id: str, request: EntityRequest, moment) -> Message:
    evt = event(
        EventType.EventRaised, moment, Name="op", Input=request.to_json(), MessageId=request.id
    )
    return Message(request.id, entity_id, evt, stored=True)


def run_operations(
    handle: Callable[[Any], str] | None,
    record: InstanceRecord,
    requests: list[EntityRequest],
) -> list[OperationOutcome]:
    """Apply requests in order to record.entity_state; failed operations change nothing."""
    name, key = entity_id_parts(record.instance_id)
    outcomes = []
    for request in requests:
        if handle is None:
            message = f"No entity function named '{name}' exists."
            outcomes.append(OperationOutcome(request, True, json.dumps(message)))
            continue
        context = json.dumps(
            {
                "self": {"name": name, "key": key},
                "exists": record.entity_state is not None,
                "state": record.entity_state,
                "batch": [
                    {
                        "name": request.operation,
                        "input": json.dumps(request.input if request.input is not None else "null"),
                    }
                ],
            }
        )
        try:
            output = json.loads(handle(context))
        except Exception as err:  # noqa: BLE001 - the SDK refused the operation itself
            outcomes.append(OperationOutcome(request, True, json.dumps(str(err))))
            continue
        result = output["results"][0]
        if result["isError"]:
            outcomes.append(OperationOutcome(request, True, result["result"]))
            continue
        record.entity_state = output["entityState"] if output["entityExists"] else None
        outcomes.append(OperationOutcome(request, False, result["result"]))
    return outcomes


def response_message(outcome: OperationOutcome, moment) -> Message | None:
    """The answer to a call (signals get none), as the EventRaised the SDK waits for."""
    request = outcome.request
    if request.signal or not request.parent:
        return None
    body: dict[str, Any] = {"result": outcome.result}
    if outcome.is_error:
        body["exceptionType"] = (outcome.failure or {}).get("ErrorType") or "Exception"
        if outcome.failure is not None:
            body["failureDetails"] = outcome.failure
    evt = event(
        EventType.EventRaised,
        moment,
        Name=request.id,
        Input=json.dumps(body),
        EntityResponse=True,
        MessageId=f"response:{request.id}",
    )
    return Message(
        f"response:{request.id}", request.parent, evt, request.parent_execution, stored=True
    )


def lock_granted_message(request: EntityRequest, moment) -> Message:
    """The last entity of a lock set tells the orchestration its critical section may begin:
    an EventRaised named after the critical section (the request's id)."""
    body = json.dumps({"result": json.dumps("Lock Acquisition Completed")})
    evt = event(
        EventType.EventRaised,
        moment,
        Name=request.id,
        Input=body,
        EntityResponse=True,
        MessageId=f"granted:{request.id}",
    )
    return Message(
        f"granted:{request.id}", request.parent or "", evt, request.parent_execution, stored=True
    )


def sent_by(entity_id: str, outcomes: list[OperationOutcome], moment) -> list[Message]:
    """The signals the operations sent to other entities (their ids are derived from the
    operation's, so a batch run again after a crash sends the same ones, which are dropped)."""
    return [
        request_message(target, request, moment)
        for outcome in outcomes
        for target, request in outcome.signals
    ]


def remember(record: InstanceRecord, request_ids: list[str]) -> None:
    record.recent_requests = (record.recent_requests + request_ids)[-RECENT_LIMIT:]
