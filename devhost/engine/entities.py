"""Durable entities: operations run through the SDK's entity handle, one at a time.

Each operation is handed to the SDK as a batch of one, so an operation that raises leaves the
state as it was before it (the SDK itself would keep what the failing operation had set) and
fails only that operation. The engine commits the state of a whole batch of operations at once,
with the ids of the requests it consumed, so a request is applied exactly once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..taskhub.history import EventType, event
from ..taskhub.model import InstanceRecord, Message

RECENT_LIMIT = 500  # request ids remembered per entity, to drop a request delivered twice


@dataclass
class EntityRequest:
    """An operation sent to an entity by a client or an orchestration."""

    id: str
    operation: str
    signal: bool
    input: str | None
    parent: str | None = None
    parent_execution: str | None = None

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
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "op": self.operation,
                "signal": self.signal,
                "input": self.input,
                "parent": self.parent,
                "parentExecution": self.parent_execution,
            }
        )


@dataclass
class OperationOutcome:
    request: EntityRequest
    is_error: bool
    result: str  # JSON text


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
        body["exceptionType"] = "Exception"
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


def remember(record: InstanceRecord, request_ids: list[str]) -> None:
    record.recent_requests = (record.recent_requests + request_ids)[-RECENT_LIMIT:]
