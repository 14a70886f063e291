"""An execution's history as steps, the way Temporal's compact view reads it: each scheduled
task on one row with its result, each other event on a row of its own, and the episodes'
bookkeeping (OrchestratorStarted, OrchestratorCompleted) left out.

Pure: recorded history events in, JSON-ready rows out. JSON payloads are decoded, so a
traceback (a string) reaches the page as text to show as it is, not as escaped JSON.
"""

from __future__ import annotations

import json
from typing import Any

from ..engine.planner import ENTITY_RESPONSE_FIELD
from ..taskhub.history import EventType, completion_target

SCHEDULES = {
    EventType.TaskScheduled: "activity",
    EventType.SubOrchestrationInstanceCreated: "suborchestration",
    EventType.TimerCreated: "timer",
}
FAILURES = {EventType.TaskFailed, EventType.SubOrchestrationInstanceFailed}
BOOKKEEPING = {EventType.OrchestratorStarted, EventType.OrchestratorCompleted}
SINGLE = {
    EventType.ExecutionStarted: "started",
    EventType.EventRaised: "event",
    EventType.EventSent: "event sent",
    EventType.ExecutionSuspended: "suspended",
    EventType.ExecutionResumed: "resumed",
    EventType.ExecutionTerminated: "terminate requested",
    EventType.ContinueAsNew: "continued as new",
}


def decoded(text: Any) -> Any:
    """A JSON payload as its value; text that is not JSON stays text."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def steps(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows in history order; a task's row sits where it was scheduled and holds its result."""
    rows: list[dict[str, Any]] = []
    open_tasks: dict[int, dict[str, Any]] = {}
    for index, evt in enumerate(history):
        kind = EventType(evt["EventType"])
        if kind in BOOKKEEPING:
            continue
        if kind in SCHEDULES:
            row = _task_row(kind, evt, index)
            open_tasks[evt["EventId"]] = row
            rows.append(row)
        elif (target := completion_target(evt)) is not None and target in open_tasks:
            row = open_tasks.pop(target)
            row.update(end=evt["Timestamp"], events=[*row["events"], index])
            if kind in FAILURES:
                row["status"] = "failed"
                row["failure"] = {
                    "reason": evt.get("Reason"),
                    "details": decoded(evt.get("Details")),
                }
            else:
                row["status"] = "fired" if kind == EventType.TimerFired else "completed"
                if "Result" in evt:
                    row["result"] = decoded(evt.get("Result"))
        else:
            rows.append(_single_row(kind, evt, index))
    return rows


def _task_row(kind: EventType, evt: dict[str, Any], index: int) -> dict[str, Any]:
    row: dict[str, Any] = {
        "kind": SCHEDULES[kind],
        "name": evt.get("Name") or "",
        "task": evt["EventId"],
        "start": evt["Timestamp"],
        "end": None,
        "status": "open",
        "events": [index],
    }
    if kind == EventType.TimerCreated:
        row["due"] = evt.get("FireAt")
        retry = evt.get("Retry")
        if retry:  # the wait before a task's next attempt
            row.update(
                kind="retry timer", name=retry.get("Name") or "", attempt=retry.get("Attempt")
            )
    else:
        row["input"] = decoded(evt.get("Input"))
    if evt.get("Attempt"):
        row["attempt"] = evt["Attempt"]
    if kind == EventType.SubOrchestrationInstanceCreated:
        row["instanceId"] = evt.get("InstanceId")
    return row


def _single_row(kind: EventType, evt: dict[str, Any], index: int) -> dict[str, Any]:
    row: dict[str, Any] = {
        "kind": SINGLE.get(kind, kind.name),
        "name": evt.get("Name") or "",
        "start": evt["Timestamp"],
        "events": [index],
    }
    if kind == EventType.ExecutionStarted:
        row["input"] = decoded(evt.get("Input"))
    elif kind == EventType.ExecutionCompleted:
        status = evt.get("OrchestrationStatus") or "Completed"
        row["kind"] = status.lower()
        key = "failure" if status == "Failed" else "result"
        row[key] = decoded(evt.get("Result"))
        if evt.get("FailureDetails"):
            row["failure"] = decoded(evt["FailureDetails"])
    elif kind == EventType.EventRaised:
        row["input"] = decoded(evt.get("Input"))
        if evt.get(ENTITY_RESPONSE_FIELD):
            row["kind"] = "entity response"
    elif kind == EventType.EventSent:
        row["input"] = decoded(evt.get("Input"))
        row["instanceId"] = evt.get("InstanceId")
    elif kind in (EventType.ExecutionTerminated, EventType.ExecutionSuspended,
                  EventType.ExecutionResumed):  # fmt: skip
        row["reason"] = decoded(evt.get("Input", evt.get("Reason")))
    return row
