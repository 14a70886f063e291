"""One call of an orchestrator through the SDK's handle, exactly as the real host makes it.

The SDK takes the whole history each time and returns its cumulative actions. The host's own
share of the cost is kept flat: old events are serialized once and cached, so building the
context is a string join.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from azure.functions import OrchestrationContext

OUT_OF_PROC_MARKER = "$OutOfProcData$:"
REPLAY_SCHEMA_V2 = 1
# Not the 1.x SDK's: the state a stand-in answers for an orchestrator that runs in a Durable Task
# worker, whose dry replay after a restart has nothing to rebuild but this flag.
INCREMENTAL_KEY = "devhostIncremental"
INCREMENTAL_STATE = json.dumps({"isDone": False, "actions": [], INCREMENTAL_KEY: True})


class EncodedText(str):
    """A value the SDK has encoded itself (Durable Task SDKs send JSON text, or a large
    payload's reference): the host stores it as it is rather than as JSON of a value."""


@dataclass
class ReplayResult:
    """What the orchestrator said in one episode."""

    actions: list[dict[str, Any]]
    is_done: bool = False
    output: Any = None
    error: str | None = None
    custom_status: Any = None
    has_custom_status: bool = False
    state: dict[str, Any] | None = field(default=None, repr=False)  # the SDK's state, parsed
    # The Durable Task SDKs' way (gRPC) rather than the 1.x SDK's: `actions` are this episode's
    # new ones only, each with the id the SDK gave it (`taskId`), and the SDK keeps the raised
    # events nobody waits for yet itself, so every event is handed over as it arrives.
    incremental: bool = False


@dataclass
class HistoryCache:
    """An execution's history, with each old event serialized once (IsPlayed true), when an
    episode first needs it: a host whose episodes run in worker processes never does."""

    events: list[dict[str, Any]] = field(default_factory=list)
    _played: list[str] = field(default_factory=list)  # JSON of events[: len(_played)]
    _made: dict[int, str] = field(default_factory=dict)  # JSON of events offered as new
    _kept: dict[int, str] = field(default_factory=dict)  # that JSON, by place in history

    @property
    def played_json(self) -> list[str]:
        played = self._played
        for index in range(len(played), len(self.events)):
            text = self._kept.pop(index, None) or _event_text(self.events[index])
            played.append(_with_played(text, True))
        return played

    def new_event_json(self, evt: dict[str, Any]) -> str:
        """An event offered to the SDK as new; its JSON is kept for when it joins history."""
        text = self._made[id(evt)] = _event_text(evt)
        return _with_played(text, False)

    def forget_new(self) -> None:
        """Drop JSON kept for events of an episode that never joined history."""
        self._made.clear()

    def extend(self, events: list[dict[str, Any]]) -> None:
        start = len(self.events)
        self.events.extend(events)
        if self._made:
            for offset, evt in enumerate(events):
                text = self._made.pop(id(evt), None)
                if text is not None:
                    self._kept[start + offset] = text
            self._made.clear()

    def clear(self) -> None:
        self.events.clear()
        self._played.clear()
        self._made.clear()
        self._kept.clear()


@dataclass
class EpisodeCall:
    """One orchestrator episode: the instance's history so far and the episode's new events."""

    name: str
    instance_id: str
    execution_id: str
    history: HistoryCache
    new_events: list[dict[str, Any]]
    parent_instance_id: str | None
    input_json: str | None


def _event_text(evt: dict[str, Any]) -> str:
    return json.dumps(evt, separators=(",", ":"))


def _with_played(text: str, played: bool) -> str:
    """An event's JSON with IsPlayed added, without serializing it again."""
    return f'{text[:-1]},"IsPlayed":{"true" if played else "false"}}}'


def build_context(
    cache: HistoryCache,
    new_events: list[dict[str, Any]],
    instance_id: str,
    parent_instance_id: str | None,
    input_json: str | None,
) -> str:
    cache.forget_new()
    history = ",".join([*cache.played_json, *(cache.new_event_json(e) for e in new_events)])
    head = json.dumps(
        {
            "instanceId": instance_id,
            "isReplaying": bool(cache.events),
            "parentInstanceId": parent_instance_id,
            "input": input_json,
            "upperSchemaVersion": REPLAY_SCHEMA_V2,
        },
        separators=(",", ":"),
    )
    return f'{head[:-1]},"history":[{history}]}}'


def result_from_state(state: dict[str, Any]) -> ReplayResult:
    """What the engine needs of the SDK's orchestrator state (its JSON, parsed)."""
    actions = state.get("actions") or []
    flat_top = actions[0] if actions and isinstance(actions[0], list) else actions
    return ReplayResult(
        actions=flat_top,
        is_done=bool(state.get("isDone")),
        output=state.get("output"),
        error=state.get("error"),
        custom_status=state.get("customStatus"),
        has_custom_status="customStatus" in state,
        state=state,
        incremental=bool(state.get(INCREMENTAL_KEY)),
    )


def failure_result(err: Exception) -> ReplayResult:
    """An orchestrator that raised: the error, with the actions so far when the SDK sent them."""
    message = str(err)
    marker = message.find(OUT_OF_PROC_MARKER)
    if marker < 0:
        return ReplayResult(actions=[], is_done=True, error=f"{type(err).__name__}: {message}")
    result = result_from_state(json.loads(message[marker + len(OUT_OF_PROC_MARKER) :]))
    result.error = message[:marker].rstrip() or result.error
    result.is_done = True
    result.state = None  # a failure is not a state a warm episode is compared with
    return result


def run_orchestrator(handle: Callable[[Any], str], context_json: str) -> ReplayResult:
    """Call the SDK; an orchestrator failure comes back as an error with the actions so far."""
    try:
        state = json.loads(handle(OrchestrationContext(context_json)))
    except Exception as err:  # noqa: BLE001 - user code failures are results, not host crashes
        return failure_result(err)
    return result_from_state(state)
