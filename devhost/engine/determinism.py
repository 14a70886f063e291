"""Non-determinism: does a replay still ask for the work its history recorded?

The Durable Task Framework matches each action an orchestrator returns in a replay with the
scheduling event its history holds under the same task id, and fails the instance with its
NonDeterministicOrchestrationException ("Non-Deterministic workflow detected: ...") when the kind
or the name differs, or when a recorded task is no longer asked for. Work past everything
recorded is new work. This module makes that comparison, in the words `python -m devhost replay`
prints: for every episode that runs as a full replay, and for a warm episode against the full
replay of the same episode (warm.py), so that warm instances hide nothing.

Task ids: the SDK numbers every action that takes one in the order it yields them; the retries of
a `..._with_retry` call take further ids (their timers and new attempts, marked `Retry` and
`Attempt` in history) but no action of their own. So the n-th action of a replay answers the
n-th recorded scheduling event that is not a retry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..taskhub.history import EventType
from .actions import ActionType
from .planner import SCHEDULING_EVENTS, Planner
from .replay import ReplayResult

NONDETERMINISM = "Non-Deterministic workflow detected"
CONSTRAINTS = (
    "An orchestrator must schedule the same work in the same order on every replay: no clock, "
    "random numbers, new uuids, settings or I/O in its code but through its context or an "
    "activity (the Durable Functions code constraints; `python -m devhost check` finds them)"
)
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # scheduling events built only to be compared


@dataclass
class Divergence:
    """Where a replay stopped matching: the index in history, and what differs there."""

    event_index: int
    detail: str

    def __str__(self) -> str:
        return f"event {self.event_index}: {self.detail}"

    @property
    def error(self) -> str:
        """The instance's failure, as the Durable extension words it, with devhost's detail."""
        return f"{NONDETERMINISM}: {self}. {CONSTRAINTS}"


def is_nondeterminism(error: str | None) -> bool:
    """Whether an orchestrator's failure (or its instance's output) is a divergence."""
    return error is not None and NONDETERMINISM in error


def recorded_tasks(history: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """The scheduling events of a history that answer an action (no retries), by task id, with
    their index in the history."""
    found = [
        (index, evt)
        for index, evt in enumerate(history)
        if evt["EventType"] in SCHEDULING_EVENTS and not _is_retry(evt)
    ]
    return sorted(found, key=lambda item: item[1]["EventId"])


def _is_retry(evt: dict[str, Any]) -> bool:
    return "Retry" in evt or int(evt.get("Attempt") or 1) > 1


def asked_tasks(actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The scheduling events a replay's actions ask for, in task-id order."""
    return Planner("", "").plan(ReplayResult(actions=actions), _EPOCH, []).new_events


def find_divergence(
    history: list[dict[str, Any]],
    replayed: ReplayResult,
    ran: ReplayResult | None = None,
    next_index: int = 0,
) -> Divergence | None:
    """The first place where the full replay `replayed` differs from the recorded `history`.

    With `ran` (the same episode as it ran, warm or by another replay), the work that episode
    scheduled, and how it ended, must also be what the replay asks for; `next_index` is where
    that work joins the history.
    """
    recorded = recorded_tasks(history)
    asked = asked_tasks(replayed.actions)
    for position, (index, evt) in enumerate(recorded):
        if position >= len(asked):
            if replayed.error is not None:
                return None  # a replay that fails fails the instance with its own error
            return Divergence(index, f"history has {describe(evt)}; the code now {_now(replayed)}")
        if not same_task(evt, asked[position]):
            return Divergence(
                index,
                f"history has {describe(evt)}; "
                f"the code now schedules {describe(asked[position], with_task=False)}",
            )
    if ran is None:
        return None
    made = asked_tasks(ran.actions)[len(recorded) :]
    new = asked[len(recorded) :]
    for offset, evt in enumerate(made):
        if offset >= len(new):
            if replayed.error is not None:
                return None
            return Divergence(
                next_index + offset,
                f"the code scheduled {describe(evt, with_task=False)} when it ran; "
                f"replayed, it now {_now(replayed)}",
            )
        if not same_task(evt, new[offset]):
            return Divergence(
                next_index + offset,
                f"the code scheduled {describe(evt, with_task=False)} when it ran; "
                f"replayed, it now schedules {describe(new[offset], with_task=False)}",
            )
    at = next_index + len(made)
    if len(new) > len(made):
        instead = f"schedules {describe(new[len(made)], with_task=False)}"
        return Divergence(at, f"the code {_then(ran)} when it ran; replayed, it now {instead}")
    if _ending(ran) != _ending(replayed) and replayed.error is None:
        instead = _now(replayed)
        return Divergence(at, f"the code {_then(ran)} when it ran; replayed, it now {instead}")
    return None


def _ending(result: ReplayResult) -> str | None:
    if result.error is not None:
        return "Failed"
    if not result.is_done:
        return None
    if any(a.get("actionType") == ActionType.ContinueAsNew for a in result.actions):
        return "ContinuedAsNew"
    return "Completed"


def _now(result: ReplayResult) -> str:
    """What the code does now, where the history recorded more."""
    ending = _ending(result)
    if ending == "Failed":
        return f"fails: {result.error}"
    if ending == "ContinuedAsNew":
        return "continues as new"
    if ending == "Completed":
        return "completes"
    return "schedules nothing in its place"


def _then(result: ReplayResult) -> str:
    """How an episode ended when it ran (never a failure: a failing episode is replayed)."""
    ending = _ending(result)
    if ending == "ContinuedAsNew":
        return "continued as new"
    if ending == "Completed":
        return "completed"
    return "waited"


def same_task(recorded: dict[str, Any], now: dict[str, Any]) -> bool:
    """Whether two scheduling events are the same task: kind and name (instance id and entity
    operation where they apply), never the input, as the Durable Task Framework compares."""
    if recorded["EventType"] != now["EventType"]:
        return False
    kind = recorded["EventType"]
    if kind == EventType.TimerCreated:
        return ("Retry" in recorded) == ("Retry" in now)
    if kind == EventType.EventSent:
        return (recorded.get("InstanceId"), _operation(recorded)) == (
            now.get("InstanceId"),
            _operation(now),
        )
    if recorded.get("Name") != now.get("Name"):
        return False
    if kind == EventType.SubOrchestrationInstanceCreated:
        given = not recorded.get("GeneratedId") and not now.get("GeneratedId")
        return not given or recorded.get("InstanceId") == now.get("InstanceId")
    return True


def _operation(evt: dict[str, Any]) -> str:
    try:
        return str(json.loads(evt.get("Input") or "{}").get("op") or "")
    except (ValueError, AttributeError):
        return ""


def describe(evt: dict[str, Any], with_task: bool = True) -> str:
    """A scheduling event in words, with its task id."""
    kind = evt["EventType"]
    task = f" (task {evt['EventId']})" if with_task else ""
    if kind == EventType.TaskScheduled:
        return f"activity '{evt.get('Name')}'{task}"
    if kind == EventType.SubOrchestrationInstanceCreated:
        return f"sub-orchestration '{evt.get('Name')}'{task}"
    if kind == EventType.TimerCreated:
        what = "a retry timer" if "Retry" in evt else "a timer"
        return f"{what} due {evt.get('FireAt')}{task}"
    return f"entity operation '{_operation(evt)}' on '{evt.get('InstanceId')}'{task}"


def nondeterministic(divergence: Divergence) -> ReplayResult:
    """The episode's result once a divergence is found: the instance fails with it."""
    return ReplayResult(actions=[], is_done=True, error=divergence.error)
