"""An execution's history as bars: each activity, timer, sub-orchestration and awaited event,
and the axis they are drawn on.

Pure: it reads recorded history events (and what the instance waits on now) and returns
JSON-ready bars, which the page draws from `start` to `end` (None: still open), on an axis
that cuts long idle waits short: seconds of work beside a 24-hour timer stay readable.
"""

from __future__ import annotations

from typing import Any

from ..engine.planner import ENTITY_RESPONSE_FIELD
from ..taskhub.history import EventType, completion_target, format_time, parse_time

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
                bar["due"] = evt.get("FireAt")
                if retry := evt.get("Retry"):  # the wait before the next attempt of a task
                    bar.update(name=retry.get("Name") or "", retry=retry.get("Attempt"))
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


BREAK_FACTOR = 3  # a wait longer than 3 times all the rest of the axis is drawn as a break
MIN_BREAK_SECONDS = 10
BREAK_SHARE = 6.0  # percent of the axis each break takes
MAX_BREAKS_SHARE = 30.0


def axis(bars_: list[dict[str, Any]], now: str) -> list[dict[str, Any]]:
    """The time axis, as segments `{start, end, left, width, break}` (left and width in
    percent) that cover it in order. Between the moments bars start, end or fall due, a gap
    longer than BREAK_FACTOR times all the smaller ones together (and MIN_BREAK_SECONDS) is a
    break, drawn narrow; the other segments share the rest of the width by their length."""
    moments = sorted({parse_time(t) for b in bars_ for t in _moments(b, now)})
    if len(moments) < 2:
        return []
    gaps = [(b - a).total_seconds() for a, b in zip(moments, moments[1:], strict=False)]
    breaks: set[int] = set()
    rest = sum(gaps)
    for index in sorted(range(len(gaps)), key=lambda i: -gaps[i]):
        rest -= gaps[index]
        if gaps[index] < MIN_BREAK_SECONDS or gaps[index] <= BREAK_FACTOR * rest or rest <= 0:
            break
        breaks.add(index)
    runs: list[dict[str, Any]] = []  # neighbouring gaps of one kind make one segment
    for index, gap in enumerate(gaps):
        if runs and runs[-1]["break"] == (index in breaks):
            runs[-1]["end"], runs[-1]["seconds"] = moments[index + 1], runs[-1]["seconds"] + gap
        else:
            runs.append({"start": moments[index], "end": moments[index + 1], "seconds": gap,
                         "break": index in breaks})  # fmt: skip
    break_count = sum(1 for run in runs if run["break"])
    break_share = min(BREAK_SHARE, MAX_BREAKS_SHARE / break_count) if break_count else 0.0
    work = sum(run["seconds"] for run in runs if not run["break"])
    left = 0.0
    segments = []
    for run in runs:
        width = (
            break_share
            if run["break"]
            else (100 - break_share * break_count) * run["seconds"] / work
        )
        segments.append(
            {
                "start": format_time(run["start"]),
                "end": format_time(run["end"]),
                "left": left,
                "width": width,
                "break": run["break"],
            }  # fmt: skip
        )
        left += width
    for segment in segments:
        segment["left"], segment["width"] = round(segment["left"], 3), round(segment["width"], 3)
    return segments


def _moments(bar: dict[str, Any], now: str) -> list[str]:
    found = [bar["start"] or now, bar["end"] or now]
    return found + [bar["due"]] if bar.get("due") else found
