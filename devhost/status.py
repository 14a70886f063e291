"""Instance status and history in the public HTTP API's shape."""

from __future__ import annotations

import json
from typing import Any

from .taskhub.history import EventType, completion_target
from .taskhub.model import InstanceRecord

# Events the public API leaves out: bookkeeping of episodes, and schedules merged into results.
HIDDEN_EVENTS = frozenset(
    {
        EventType.OrchestratorStarted,
        EventType.OrchestratorCompleted,
        EventType.TaskScheduled,
        EventType.SubOrchestrationInstanceCreated,
    }
)


def api_time(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _loads(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def status_json(
    record: InstanceRecord,
    show_input: bool = True,
    history: list[dict[str, Any]] | None = None,
    show_history_output: bool = False,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": record.name,
        "instanceId": record.instance_id,
        "runtimeStatus": str(record.runtime_status),
        "input": _loads(record.input) if show_input else None,
        "customStatus": _loads(record.custom_status),
        "output": _loads(record.output),
        "createdTime": api_time(record.created_time),
        "lastUpdatedTime": api_time(record.last_updated_time),
    }
    if history is not None:
        body["historyEvents"] = public_history(history, show_history_output)
    return body


def public_history(history: list[dict[str, Any]], show_output: bool) -> list[dict[str, Any]]:
    """History as the HTTP API shows it: EventType by name, results only when asked for."""
    scheduled = {
        e["EventId"]: e
        for e in history
        if e["EventType"] in (EventType.TaskScheduled, EventType.SubOrchestrationInstanceCreated)
    }
    events = []
    for evt in history:
        kind = EventType(evt["EventType"])
        if kind in HIDDEN_EVENTS:
            continue
        item: dict[str, Any] = {"EventType": kind.name, "Timestamp": evt["Timestamp"]}
        if kind == EventType.ExecutionStarted:
            item["FunctionName"] = evt.get("Name")
        origin = scheduled.get(completion_target(evt)) if kind != EventType.TimerFired else None
        if origin is not None:
            item["FunctionName"] = origin.get("Name")
            item["ScheduledTime"] = origin["Timestamp"]
        for key in ("Name", "FireAt", "Reason", "Details", "OrchestrationStatus", "InstanceId"):
            if key in evt and key not in item and kind != EventType.ExecutionStarted:
                item[key] = evt[key]
        if show_output:
            for key in ("Result", "Input"):
                if evt.get(key) is not None and kind != EventType.ExecutionStarted:
                    item[key] = _loads(evt[key])
        events.append(item)
    return events
