"""An execution's history as bars: each activity, timer, sub-orchestration and awaited event.

Pure: it reads recorded history events (and what the instance waits on now) and returns
JSON-ready bars, which the page draws from `start` to `end` (None: still open).
"""

from __future__ import annotations

from typing import Any

from ..engine.planner import ENTITY_RESPONSE_FIELD
from ..taskhub.history import EventType, completion_target

SCHEDULES = {
    EventType.TaskScheduled: "activity",
    EventType.SubOrchestrationInstanceCreated: "suborchestration",
    EventType.TimerCreated: "timer",
}
ENDINGS = {EventType.ExecutionCompleted, EventType.ExecutionTerminated}
FAILURES = {EventType.TaskFailed, EventType.SubOrchestrationInstanceFailed}


def bars(
    history: list[dict[str, Any]], awaited: list[str] | None = None, continued: bool = False
) -> list[dict[str, Any]]:
    """Bars in the order their work began.

    An external event has no schedule in history: its bar runs from the end of the episode
    before it arrived (when the orchestration was last waiting) to its arrival. `awaited` names
    events waited for now, drawn as open bars from the end of the last episode. `continued`
    says the execution ended by continuing as new, at its last event.
    """
    result: list[dict[str, Any]] = []
    open_tasks: dict[int, dict[str, Any]] = {}
    waiting_since: str | None = None
    generation: dict[str, Any] | None = None
    for evt in history:
        kind = EventType(evt["EventType"])
        if kind == EventType.ExecutionStarted:
            waiting_since = evt["Timestamp"]
            generation = _bar("generation", evt.get("Name") or "", evt["Timestamp"], None)
            result.append(generation)
        elif kind in SCHEDULES:
            bar = _bar(SCHEDULES[kind], evt.get("Name") or "", evt["Timestamp"], evt["EventId"])
            if kind == EventType.TimerCreated:
                bar["name"], bar["due"] = "timer", evt.get("FireAt")
            if kind == EventType.SubOrchestrationInstanceCreated:
                bar["instanceId"] = evt.get("InstanceId")
            open_tasks[evt["EventId"]] = bar
            result.append(bar)
        elif (target := completion_target(evt)) is not None and target in open_tasks:
            bar = open_tasks.pop(target)
            bar["end"] = evt["Timestamp"]
            bar["status"] = "failed" if kind in FAILURES else "completed"
        elif kind == EventType.EventRaised and not evt.get(ENTITY_RESPONSE_FIELD):
            bar = _bar("event", evt.get("Name") or "", waiting_since or evt["Timestamp"], None)
            bar["end"], bar["status"] = evt["Timestamp"], "completed"
            result.append(bar)
        elif kind == EventType.OrchestratorCompleted:
            waiting_since = evt["Timestamp"]
        elif generation is not None and kind in ENDINGS:
            generation["end"], generation["status"] = evt["Timestamp"], "completed"
    if continued and generation is not None and history:
        generation["end"], generation["status"] = history[-1]["Timestamp"], "continued"
    for name in awaited or []:
        result.append(_bar("event", name, waiting_since or "", None))
    return result


def _bar(kind: str, name: str, start: str, task: int | None) -> dict[str, Any]:
    return {"kind": kind, "name": name, "task": task, "start": start, "end": None, "status": "open"}
