"""History events in the shape the SDK parses (`models/history/HistoryEvent.py`).

Events are plain dicts so they serialize straight into the orchestration context and the store.
`IsPlayed` is not kept in the dict: the replay module adds it per episode.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any


class EventType(IntEnum):
    """The SDK's HistoryEventType numbers, named as the public HTTP API names them."""

    ExecutionStarted = 0
    ExecutionCompleted = 1
    ExecutionFailed = 2
    ExecutionTerminated = 3
    TaskScheduled = 4
    TaskCompleted = 5
    TaskFailed = 6
    SubOrchestrationInstanceCreated = 7
    SubOrchestrationInstanceCompleted = 8
    SubOrchestrationInstanceFailed = 9
    TimerCreated = 10
    TimerFired = 11
    OrchestratorStarted = 12
    OrchestratorCompleted = 13
    EventSent = 14
    EventRaised = 15
    ContinueAsNew = 16
    GenericEvent = 17
    HistoryState = 18
    ExecutionSuspended = 19
    ExecutionResumed = 20


# Events that carry the result of a scheduled task, and the field naming that task.
COMPLETION_KEYS = {
    EventType.TaskCompleted: "TaskScheduledId",
    EventType.TaskFailed: "TaskScheduledId",
    EventType.SubOrchestrationInstanceCompleted: "TaskScheduledId",
    EventType.SubOrchestrationInstanceFailed: "TaskScheduledId",
    EventType.TimerFired: "TimerId",
}


def format_time(moment: datetime) -> str:
    """ISO-8601 UTC with microseconds and a Z, as the SDK's DATETIME_STRING_FORMAT writes."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def event(kind: EventType, moment: datetime, event_id: int = -1, **fields: Any) -> dict[str, Any]:
    return {"EventType": int(kind), "EventId": event_id, "Timestamp": format_time(moment), **fields}


# Marks an event an SDK carried into its continue-as-new: the id of the execution that carried it.
CARRIED_OVER = "CarriedOver"


def event_raised(
    moment: datetime, name: str, input_json: str | None, carried_from: str | None = None
) -> dict[str, Any]:
    """An event raised to an instance; `carried_from` names the execution of a Durable Task SDK
    that carried it into its continue-as-new (the next execution sees it before events raised
    meanwhile, and the execution that carried it never takes it back)."""
    evt = event(EventType.EventRaised, moment, Name=name, Input=input_json)
    if carried_from is not None:
        evt[CARRIED_OVER] = carried_from
    return evt


def completion_target(evt: dict[str, Any]) -> int | None:
    """The task id a completion event resolves, or None for other events."""
    key = COMPLETION_KEYS.get(EventType(evt["EventType"]))
    return evt.get(key) if key else None


@dataclass(frozen=True)
class StartOptions:
    """What a Durable Task client may add to a start (the 1.x SDK sends none of it): the
    orchestration's version and tags, and the time before which its first episode must not run."""

    version: str | None = None
    tags: dict[str, str] | None = None
    scheduled_start: datetime | None = None

    def fields(self) -> dict[str, Any]:
        """The ExecutionStarted fields these options add; none when they are all unset."""
        added: dict[str, Any] = {}
        if self.tags:
            added["Tags"] = dict(self.tags)
        if self.scheduled_start is not None:
            added["ScheduledStartTime"] = format_time(self.scheduled_start)
        return added


NO_OPTIONS = StartOptions()


def start_options(evt: dict[str, Any]) -> StartOptions:
    """The options an ExecutionStarted event was made with."""
    scheduled = evt.get("ScheduledStartTime")
    return StartOptions(
        version=evt.get("Version") or None,
        tags=evt.get("Tags") or None,
        scheduled_start=parse_time(scheduled) if scheduled else None,
    )


def execution_started(
    moment: datetime,
    name: str,
    instance_id: str,
    execution_id: str,
    input_json: str | None,
    parent: dict[str, Any] | None = None,
    options: StartOptions = NO_OPTIONS,
) -> dict[str, Any]:
    return event(
        EventType.ExecutionStarted,
        moment,
        Name=name,
        Input=input_json,
        Version=options.version or "",
        OrchestrationInstance={"InstanceId": instance_id, "ExecutionId": execution_id},
        ParentInstance=parent,
        **options.fields(),
    )
