"""Replay checks: does the current code still make the work a recorded history holds?

A code change can make instances that are already running non-deterministic: on their next
replay the orchestrator asks for other work than their history recorded. This replays a
recorded history against the current code the way the engine ran it, one episode at a time (the
episode's delivered events offered as new, the SDK run, the planner numbering the actions), and
compares the work the code asks for with the recorded scheduling events, task id by task id, as
the Durable Task Framework does on Azure: every recorded task must be asked for again, with the
same kind and name, by the end of the episode that recorded it. Work with ids past everything
the history recorded is new work, so code that only adds steps after the recorded ones passes.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..app.app_index import FunctionIndex
from ..taskhub.history import EventType, parse_time
from .determinism import describe, same_task
from .planner import SCHEDULING_EVENTS, EpisodePlan, Planner
from .replay import HistoryCache, build_context, run_orchestrator

# The events an episode hands to the orchestrator; the rest are its own records.
DELIVERED_EVENTS = frozenset(
    {
        EventType.ExecutionStarted,
        EventType.TaskCompleted,
        EventType.TaskFailed,
        EventType.SubOrchestrationInstanceCompleted,
        EventType.SubOrchestrationInstanceFailed,
        EventType.TimerFired,
        EventType.EventRaised,
    }
)


class HistoryError(ValueError):
    """The history cannot be replayed at all (not a history, or no such orchestrator)."""


@dataclass
class ReplayResult:
    """The verdict of a replay check: `ok`, and a message that says where the code diverged.

    `event_index` is the index in the history of the recorded event the code no longer matches
    (None when it matches).
    """

    ok: bool
    message: str
    instance_id: str = ""
    event_index: int | None = None


@dataclass
class _Recorded:
    index: int
    event: dict[str, Any]


def check_history(history: Any, index: FunctionIndex, name: str | None = None) -> ReplayResult:
    """Replay `history` (a list of events, as the harness's `history()` returns) against the
    orchestrator `name` of the indexed app (default: the one named in the history)."""
    events = _validated(history)
    started = next(e for e in events if e["EventType"] == EventType.ExecutionStarted)
    name = name or str(started.get("Name") or "")
    info = index.orchestrators.get(name)
    if info is None:
        known = ", ".join(sorted(index.orchestrators)) or "none"
        raise HistoryError(f"no orchestrator named '{name}' in the app (it has: {known})")
    instance = started.get("OrchestrationInstance") or {}
    instance_id = str(instance.get("InstanceId") or "")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the SDK warns about completions the code never asked for
        failure = _replay(
            events,
            info.user_function,
            started,
            Planner(instance_id, str(instance.get("ExecutionId") or "")),
        )
    if failure is not None:
        index_, message = failure
        return ReplayResult(False, f"event {index_}: {message}", instance_id, index_)
    tasks = sum(1 for e in events if e["EventType"] in SCHEDULING_EVENTS)
    return ReplayResult(
        True, f"{len(events)} events replay as recorded ({tasks} tasks)", instance_id
    )


def _validated(history: Any) -> list[dict[str, Any]]:
    if not isinstance(history, list):
        raise HistoryError(
            "a history is a JSON list of events, as DurableHarness.history() returns; "
            f"got {type(history).__name__}"
        )
    known = {int(t) for t in EventType}
    for position, evt in enumerate(history):
        if not (
            isinstance(evt, dict)
            and evt.get("EventType") in known
            and isinstance(evt.get("EventId"), int)
            and _is_time(evt.get("Timestamp"))
        ):
            raise HistoryError(
                f"event {position}: not a history event (it needs an EventType of the SDK, "
                "an integer EventId and an ISO 8601 Timestamp)"
            )
    if not any(e["EventType"] == EventType.ExecutionStarted for e in history):
        raise HistoryError("the history has no ExecutionStarted event")
    return history


def _is_time(value: Any) -> bool:
    try:
        parse_time(value)
    except (TypeError, ValueError, AttributeError):
        return False
    return True


def _episodes(events: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """(start, end) of each episode: from one OrchestratorStarted to the next."""
    starts = [i for i, e in enumerate(events) if e["EventType"] == EventType.OrchestratorStarted]
    return list(zip(starts, [*starts[1:], len(events)], strict=True))


def _replay(
    events: list[dict[str, Any]],
    handle: Callable[[Any], str],
    started: dict[str, Any],
    planner: Planner,
) -> tuple[int, str] | None:
    """The first divergence as (event index, what differs), or None."""
    recorded = {
        e["EventId"]: _Recorded(i, e)
        for i, e in enumerate(events)
        if e["EventType"] in SCHEDULING_EVENTS
    }
    parent = (started.get("ParentInstance") or {}).get("OrchestrationInstance") or {}
    instance_id = planner.instance_id
    cache = HistoryCache()
    episodes = _episodes(events)
    cache.extend(events[: episodes[0][0]] if episodes else events)
    asked: set[int] = set()
    for number, (start, end) in enumerate(episodes):
        episode = events[start:end]
        delivered = [e for e in episode if e["EventType"] in DELIVERED_EVENTS]
        context = build_context(
            cache,
            [episode[0], *delivered],
            instance_id,
            parent.get("InstanceId"),
            started.get("Input"),
        )
        result = run_orchestrator(handle, context)
        plan = planner.plan(result, parse_time(episode[0]["Timestamp"]), delivered)
        for evt in plan.new_events:
            was = recorded.get(evt["EventId"])
            if was is None:
                continue  # past everything recorded: new work
            if not same_task(was.event, evt):
                return was.index, (
                    f"history has {describe(was.event)}; "
                    f"the code now schedules {describe(evt, with_task=False)}"
                )
            asked.add(evt["EventId"])
        for offset, evt in enumerate(episode):
            if evt["EventType"] in SCHEDULING_EVENTS and evt["EventId"] not in asked:
                return start + offset, (
                    f"history has {describe(evt)}; the code now {_instead(plan)}"
                )
        if plan.outcome is not None:
            recorded_failure = any(
                e["EventType"] == EventType.ExecutionCompleted
                and e.get("OrchestrationStatus") == "Failed"
                for e in episode
            )
            if plan.outcome.status == "Failed" and not recorded_failure:
                return start, f"the code now fails: {plan.outcome.error}"
            if number + 1 < len(episodes):
                following = episodes[number + 1][0]
                return (
                    following,
                    f"the history goes on here; the code now {_instead(plan)} before it",
                )
        cache.extend(episode)
    return None


def _instead(plan: EpisodePlan) -> str:
    """What the code does now at the point where the history recorded more."""
    outcome = plan.outcome
    if outcome is None:
        return "schedules nothing in its place"
    if outcome.status == "Failed":
        return f"fails: {outcome.error}"
    if outcome.status == "ContinuedAsNew":
        return "continues as new"
    return "completes"
