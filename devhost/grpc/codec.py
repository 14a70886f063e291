"""Durable Task's protobuf messages <-> devhost's one model of history events, actions and records.

The engine keeps history in the shape of the 1.x JSON replay protocol (plain dicts, see
`taskhub.history`) and plans episodes from that protocol's actions. This module is the whole of
the translation for the gRPC protocol, both ways, with no state and no I/O:

- history events (dicts) -> `HistoryEvent` messages, for a worker's `OrchestratorRequest`;
- a worker's `OrchestratorResponse` -> the actions and outcome the planner understands. Each
  action keeps the id the worker gave it (`taskId`): a durabletask worker numbers its own tasks
  (from 1, and its completion takes a number too), and its history must show those numbers;
- failure details, which the engine keeps as text: the protobuf message travels as JSON after a
  marker, behind a readable first part, so it comes back whole (type, message, stack trace,
  inner failure) for a worker, a client or a parent orchestration;
- instance records -> `OrchestrationState` (in `instance_state`, with a start's options).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format, timestamp_pb2, wrappers_pb2

from ..engine.actions import ActionType
from ..engine.replay import EncodedText
from ..taskhub.history import EventType, format_time, parse_time
from ..taskhub.model import RuntimeStatus
from .entity_codec import BadEntityMessage, entity_action
from .proto import pb

FAILURE_MARKER = "\n$DurableTaskFailure$:"
ENGINE_FAILURE_TYPE = "devhost.OrchestrationFailed"  # a failure the engine decided, not the SDK

STATUS_TO_PROTO = {
    RuntimeStatus.Running: pb.ORCHESTRATION_STATUS_RUNNING,
    RuntimeStatus.Completed: pb.ORCHESTRATION_STATUS_COMPLETED,
    RuntimeStatus.ContinuedAsNew: pb.ORCHESTRATION_STATUS_CONTINUED_AS_NEW,
    RuntimeStatus.Failed: pb.ORCHESTRATION_STATUS_FAILED,
    RuntimeStatus.Canceled: pb.ORCHESTRATION_STATUS_CANCELED,
    RuntimeStatus.Terminated: pb.ORCHESTRATION_STATUS_TERMINATED,
    RuntimeStatus.Pending: pb.ORCHESTRATION_STATUS_PENDING,
    RuntimeStatus.Suspended: pb.ORCHESTRATION_STATUS_SUSPENDED,
}
STATUS_FROM_PROTO = {value: key for key, value in STATUS_TO_PROTO.items()}


class UnsupportedAction(Exception):
    """A worker asked for something devhost does not serve yet; the orchestration fails."""


# -- small values ------------------------------------------------------------------------------


def text_value(text: str | None) -> wrappers_pb2.StringValue | None:
    return None if text is None else wrappers_pb2.StringValue(value=text)


def optional_text(message: Any, name: str) -> str | None:
    """A StringValue field's text, None when the field is absent."""
    return getattr(message, name).value if message.HasField(name) else None


def timestamp(moment: datetime | str) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(parse_time(moment) if isinstance(moment, str) else moment)
    return stamp


def json_value(text: str | None) -> Any:
    """What the engine stores as a value (it writes JSON text of it again)."""
    return None if text is None or text == "" else json.loads(text)


# -- failure details ---------------------------------------------------------------------------


def failure_text(details: pb.TaskFailureDetails) -> str:
    """A failure as the engine keeps it: a line to read, then the whole message as JSON."""
    as_json = json_format.MessageToJson(details, indent=None)
    return f"{details.errorType}: {details.errorMessage}{FAILURE_MARKER}{as_json}"


def failure_details(text: str | None, stack_trace: str | None = None) -> pb.TaskFailureDetails:
    """The protobuf failure kept in `text`; a failure devhost itself decided is wrapped."""
    text = text or ""
    marker = text.find(FAILURE_MARKER)
    if marker >= 0:
        return json_format.Parse(text[marker + len(FAILURE_MARKER) :], pb.TaskFailureDetails())
    return pb.TaskFailureDetails(
        errorType=ENGINE_FAILURE_TYPE, errorMessage=text, stackTrace=text_value(stack_trace)
    )


def output_failure(output: str | None) -> pb.TaskFailureDetails:
    """A failed instance's details, from its output (JSON text of the failure's text)."""
    value = json_value(output)
    return failure_details(value if isinstance(value, str) else output)


# -- history events -> protobuf ----------------------------------------------------------------


def _instance(ref: dict[str, Any] | None) -> pb.OrchestrationInstance | None:
    if not ref:
        return None
    return pb.OrchestrationInstance(
        instanceId=ref.get("InstanceId") or "", executionId=text_value(ref.get("ExecutionId"))
    )


def _execution_started(evt: dict[str, Any]) -> dict[str, Any]:
    parent = evt.get("ParentInstance")
    parent_info = None
    if parent:
        parent_info = pb.ParentInstanceInfo(
            taskScheduledId=parent.get("TaskScheduledId", -1),
            name=text_value(parent.get("Name")),
            orchestrationInstance=_instance(parent.get("OrchestrationInstance")),
        )
    scheduled = evt.get("ScheduledStartTime")
    return {
        "executionStarted": pb.ExecutionStartedEvent(
            name=evt["Name"],
            version=text_value(evt.get("Version") or None),
            input=text_value(evt.get("Input")),
            orchestrationInstance=_instance(evt.get("OrchestrationInstance")),
            parentInstance=parent_info,
            scheduledStartTimestamp=timestamp(scheduled) if scheduled else None,
            tags=evt.get("Tags") or {},
        )
    }


def _execution_completed(evt: dict[str, Any]) -> dict[str, Any]:
    status = RuntimeStatus(evt.get("OrchestrationStatus") or "Completed")
    failed = status == RuntimeStatus.Failed
    return {
        "executionCompleted": pb.ExecutionCompletedEvent(
            orchestrationStatus=STATUS_TO_PROTO[status],
            result=None if failed else text_value(evt.get("Result")),
            failureDetails=output_failure(evt.get("Result")) if failed else None,
        )
    }


def _task_failed(evt: dict[str, Any]) -> dict[str, Any]:
    details = evt.get("Details")
    if details and FAILURE_MARKER in details:
        failure = failure_details(details)
    else:
        failure = failure_details(evt.get("Reason"), stack_trace=details)
    return {
        "taskFailed": pb.TaskFailedEvent(
            taskScheduledId=evt["TaskScheduledId"], failureDetails=failure
        )
    }


def _child_failed(evt: dict[str, Any]) -> dict[str, Any]:
    return {
        "subOrchestrationInstanceFailed": pb.SubOrchestrationInstanceFailedEvent(
            taskScheduledId=evt["TaskScheduledId"],
            failureDetails=failure_details(evt.get("Reason") or evt.get("Details")),
        )
    }


_EVENT_FIELDS: dict[EventType, Callable[[dict[str, Any]], dict[str, Any]]] = {
    EventType.ExecutionStarted: _execution_started,
    EventType.ExecutionCompleted: _execution_completed,
    EventType.ExecutionTerminated: lambda e: {
        "executionTerminated": pb.ExecutionTerminatedEvent(input=text_value(e.get("Input")))
    },
    EventType.TaskScheduled: lambda e: {
        "taskScheduled": pb.TaskScheduledEvent(
            name=e["Name"], version=text_value(e.get("Version")), input=text_value(e.get("Input"))
        )
    },
    EventType.TaskCompleted: lambda e: {
        "taskCompleted": pb.TaskCompletedEvent(
            taskScheduledId=e["TaskScheduledId"], result=text_value(e.get("Result"))
        )
    },
    EventType.TaskFailed: _task_failed,
    EventType.SubOrchestrationInstanceCreated: lambda e: {
        "subOrchestrationInstanceCreated": pb.SubOrchestrationInstanceCreatedEvent(
            instanceId=e["InstanceId"],
            name=e["Name"],
            version=text_value(e.get("Version")),
            input=text_value(e.get("Input")),
        )
    },
    EventType.SubOrchestrationInstanceCompleted: lambda e: {
        "subOrchestrationInstanceCompleted": pb.SubOrchestrationInstanceCompletedEvent(
            taskScheduledId=e["TaskScheduledId"], result=text_value(e.get("Result"))
        )
    },
    EventType.SubOrchestrationInstanceFailed: _child_failed,
    EventType.TimerCreated: lambda e: {
        "timerCreated": pb.TimerCreatedEvent(fireAt=timestamp(e["FireAt"]))
    },
    EventType.TimerFired: lambda e: {
        "timerFired": pb.TimerFiredEvent(fireAt=timestamp(e["FireAt"]), timerId=e["TimerId"])
    },
    EventType.OrchestratorStarted: lambda e: {"orchestratorStarted": pb.OrchestratorStartedEvent()},
    EventType.OrchestratorCompleted: lambda e: {
        "orchestratorCompleted": pb.OrchestratorCompletedEvent()
    },
    EventType.EventRaised: lambda e: {
        "eventRaised": pb.EventRaisedEvent(
            name=e.get("Name") or "", input=text_value(e.get("Input"))
        )
    },
    EventType.ExecutionSuspended: lambda e: {
        "executionSuspended": pb.ExecutionSuspendedEvent(input=text_value(e.get("Reason")))
    },
    EventType.ExecutionResumed: lambda e: {
        "executionResumed": pb.ExecutionResumedEvent(input=text_value(e.get("Reason")))
    },
}


def _event_sent(evt: dict[str, Any]) -> dict[str, Any]:
    """An event sent to an orchestration, or a message to an entity (see `entity_codec`)."""
    return {
        "eventSent": pb.EventSentEvent(
            instanceId=evt.get("InstanceId") or "",
            name=evt.get("Name") or "",
            input=text_value(evt.get("Input")),
        )
    }


_EVENT_FIELDS[EventType.EventSent] = _event_sent


def history_event(evt: dict[str, Any]) -> pb.HistoryEvent:
    """One stored history event as a worker reads it; a kind the protocol has no field for
    becomes a GenericEvent."""
    kind = EventType(evt["EventType"])
    make = _EVENT_FIELDS.get(kind)
    fields = make(evt) if make else {"genericEvent": pb.GenericEvent(data=text_value(kind.name))}
    return pb.HistoryEvent(
        eventId=evt.get("EventId", -1), timestamp=timestamp(evt["Timestamp"]), **fields
    )


# -- a worker's answer -> the planner's actions ------------------------------------------------


@dataclass
class EpisodeAnswer:
    """A worker's `OrchestratorResponse`, in the planner's terms."""

    actions: list[dict[str, Any]] = field(default_factory=list)
    is_done: bool = False
    output: Any = None
    error: str | None = None
    custom_status: Any = None
    has_custom_status: bool = False
    carryover_events: list[pb.HistoryEvent] = field(default_factory=list)


def _schedule_task(action: pb.OrchestratorAction) -> dict[str, Any]:
    task = action.scheduleTask
    return {
        "actionType": ActionType.CallActivity,
        "functionName": task.name,
        "input": optional_text(task, "input"),
        "version": optional_text(task, "version") or None,
    }


def _create_timer(action: pb.OrchestratorAction) -> dict[str, Any]:
    return {
        "actionType": ActionType.CreateTimer,
        "fireAt": format_time(action.createTimer.fireAt.ToDatetime(tzinfo=UTC)),
        "isCanceled": False,
    }


def _create_child(action: pb.OrchestratorAction) -> dict[str, Any]:
    child = action.createSubOrchestration
    return {
        "actionType": ActionType.CallSubOrchestrator,
        "functionName": child.name,
        "instanceId": child.instanceId or None,
        "input": optional_text(child, "input"),
        "version": optional_text(child, "version") or None,
    }


def _send_event(action: pb.OrchestratorAction) -> dict[str, Any]:
    sent = action.sendEvent
    return {
        "actionType": ActionType.SendEvent,
        "instanceId": sent.instance.instanceId,
        "name": sent.name,
        "input": optional_text(sent, "data"),
    }


_ACTION_KINDS: dict[str, Callable[[pb.OrchestratorAction], dict[str, Any]]] = {
    "scheduleTask": _schedule_task,
    "createTimer": _create_timer,
    "createSubOrchestration": _create_child,
    "sendEvent": _send_event,
    "sendEntityMessage": lambda action: entity_action(action.sendEntityMessage),
}
_NOT_SERVED = {
    "terminateOrchestration": "terminating another orchestration from an orchestrator",
    "rewindOrchestration": "rewind actions",
}


def episode_answer(response: pb.OrchestratorResponse) -> EpisodeAnswer:
    """The planner's view of a worker's response; what devhost does not serve fails it."""
    answer = EpisodeAnswer()
    if response.HasField("customStatus"):
        answer.custom_status = EncodedText(response.customStatus.value)
        answer.has_custom_status = True
    try:
        for action in response.actions:
            kind = action.WhichOneof("orchestratorActionType")
            if kind == "completeOrchestration":
                _complete(action, answer)
                continue
            make = _ACTION_KINDS.get(kind or "")
            if make is None:
                what = _NOT_SERVED.get(kind or "", f"the action '{kind}'")
                raise UnsupportedAction(f"devhost's gRPC sidecar does not serve {what} yet")
            answer.actions.append({**make(action), "taskId": action.id})
    except (UnsupportedAction, BadEntityMessage) as err:
        answer.error = failure_text(
            pb.TaskFailureDetails(errorType="devhost.UnsupportedAction", errorMessage=str(err))
        )
        answer.is_done = True
    return answer


def _complete(action: pb.OrchestratorAction, answer: EpisodeAnswer) -> None:
    done = action.completeOrchestration
    status = done.orchestrationStatus
    answer.is_done = True
    if status == pb.ORCHESTRATION_STATUS_CONTINUED_AS_NEW:
        answer.actions.append(
            {
                "actionType": ActionType.ContinueAsNew,
                "input": optional_text(done, "result"),
                "taskId": action.id,
            }
        )
        answer.carryover_events = list(done.carryoverEvents)
    elif status == pb.ORCHESTRATION_STATUS_FAILED:
        answer.error = failure_text(done.failureDetails)
    elif status == pb.ORCHESTRATION_STATUS_COMPLETED:
        result = optional_text(done, "result")
        answer.output = None if result is None else EncodedText(result)
    else:
        name = pb.OrchestrationStatus.Name(status)
        raise UnsupportedAction(f"devhost's gRPC sidecar cannot complete an episode as {name}")
