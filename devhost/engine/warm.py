"""Warm orchestrations: keep an instance's live SDK state between episodes, feed it only new events.

The SDK replays an orchestration's whole history at every episode. A warm instance keeps what
that replay builds (the SDK's context, its TaskOrchestrationExecutor and the user's generator)
in a bounded LRU, and its next episode hands the executor only the events that joined history
since (played) and the episode's new ones, through the SDK's own `process_event`. The result is
the orchestrator state a full replay returns: the state's head (isDone, output, error,
customStatus) comes from the SDK's own `get_orchestrator_state_str`, and each action is
serialized once, except those whose JSON can still change (timers, which `cancel()` changes, and
compound actions holding them), which are checked every episode.

The live state differs from a full replay's in two ways only: its context keeps no history, and
the SDK's played flags of events and tasks stay as the episode that processed them set them,
where a replay would see them as old. Those are what `histories` and `is_replaying` answer from,
and code that reads either is never kept warm.

A full replay (the SDK's handle over the whole history) stays the reference and runs instead
on a cache miss or eviction, after a restart, for a new execution (continue-as-new, rewind,
restart), when the SDK is not the version verified here, when the user's code raises, and for
code that reads `is_replaying` or `histories` (which a replay answers differently).

Warm state hides nothing: a warm instance never replays, so code that is not deterministic
(random numbers, the clock, a set's order) would go unnoticed. Every full replay is compared with
the history it replays (determinism.py), and a warm episode that ends its execution (completes,
or continues as new) runs once more as a full replay of the whole history, which must schedule
what the instance did in its whole life; with `verify` on (tests), every warm episode does. A
divergence fails the instance with the Durable extension's non-determinism error. A replay that
schedules the same work but answers otherwise (another output or custom status) is logged as an
error and its answer is kept, as Azure, which replays every episode, would give it.

Longer than 400 lines because keeping the SDK's state live and the cases that must fall back
to a full replay are one job: each fallback sits beside the shortcut it guards.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from types import GeneratorType
from typing import Any

import azure.durable_functions
from azure.durable_functions.models.actions.CallActivityAction import CallActivityAction
from azure.durable_functions.models.actions.CallActivityWithRetryAction import (
    CallActivityWithRetryAction,
)
from azure.durable_functions.models.actions.CallEntityAction import CallEntityAction
from azure.durable_functions.models.actions.CallSubOrchestratorAction import (
    CallSubOrchestratorAction,
)
from azure.durable_functions.models.actions.CallSubOrchestratorWithRetryAction import (
    CallSubOrchestratorWithRetryAction,
)
from azure.durable_functions.models.actions.ContinueAsNewAction import ContinueAsNewAction
from azure.durable_functions.models.actions.CreateTimerAction import CreateTimerAction
from azure.durable_functions.models.actions.SignalEntityAction import SignalEntityAction
from azure.durable_functions.models.actions.WaitForExternalEventAction import (
    WaitForExternalEventAction,
)
from azure.durable_functions.models.actions.WhenAllAction import WhenAllAction
from azure.durable_functions.models.actions.WhenAnyAction import WhenAnyAction
from azure.durable_functions.models.DurableOrchestrationContext import (
    DurableOrchestrationContext,
)
from azure.durable_functions.models.history.HistoryEvent import HistoryEvent
from azure.durable_functions.models.ReplaySchema import ReplaySchema
from azure.durable_functions.models.TaskOrchestrationExecutor import TaskOrchestrationExecutor
from azure.durable_functions.models.utils.df_serialization import df_dumps

from ..settings import DEFAULT_WARM_INSTANCES
from .determinism import Divergence, find_divergence, nondeterministic
from .replay import (
    REPLAY_SCHEMA_V2,
    HistoryCache,
    ReplayResult,
    build_context,
    failure_result,
    result_from_state,
    run_orchestrator,
)

log = logging.getLogger("devhost.warm")


# The SDK whose internals this module was checked against: its version and a digest of the files
# whose code a warm episode relies on (see sdk_files). Another SDK runs on full replay.
VERIFIED_SDK_VERSION = "1.7.0"
VERIFIED_SDK_DIGEST = "64f600599caa240f9b5769a2bbf46758c6483332503763eda98565877a0cf8a6"
SDK_FILES = (
    "orchestrator.py",
    "models/TaskOrchestrationExecutor.py",
    "models/DurableOrchestrationContext.py",
    "models/Task.py",
    "models/OrchestratorState.py",
    "models/ReplaySchema.py",
    "models/history/HistoryEvent.py",
)

# Actions whose JSON the SDK never changes once they are made.
FIXED_ACTIONS = frozenset(
    {
        CallActivityAction,
        CallActivityWithRetryAction,
        CallSubOrchestratorAction,
        CallSubOrchestratorWithRetryAction,
        ContinueAsNewAction,
        WaitForExternalEventAction,
        CallEntityAction,
        SignalEntityAction,
    }
)
Fingerprint = tuple[bool, ...] | None  # what an action's JSON still depends on; None: anything

# A timestamp as devhost writes it (taskhub.history.format_time), and the time zone the SDK's
# parser (dateutil) gives its "Z" on this machine: tzlocal() where local time is UTC, else UTC.
HOST_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\Z")
Z_ZONE = HistoryEvent(0, -1, False, "2000-01-01T00:00:00.000000Z").timestamp.tzinfo


@functools.cache
def sdk_digest() -> str:
    """SHA-256 of the SDK files a warm episode relies on, as installed."""
    root = Path(azure.durable_functions.__file__).parent
    actions = sorted(str(p.relative_to(root)) for p in (root / "models" / "actions").glob("*.py"))
    digest = hashlib.sha256()
    for name in (*SDK_FILES, *actions):
        digest.update(name.encode())
        digest.update(b"\0")
        digest.update((root / name).read_bytes())
    return digest.hexdigest()


def unverified_sdk() -> str | None:
    """Why the installed SDK cannot run warm, or None if it is the one verified."""
    installed = version("azure-functions-durable")
    try:
        same = installed == VERIFIED_SDK_VERSION and sdk_digest() == VERIFIED_SDK_DIGEST
    except OSError as err:
        return f"its sources cannot be read ({err})"
    if not same:
        return f"azure-functions-durable {installed} is not the verified {VERIFIED_SDK_VERSION}"
    return None


class WatchedContext(DurableOrchestrationContext):
    """The SDK's context, noting when user code reads what only a replay can answer.

    `is_replaying` and `histories` answer differently when code runs once than when a full replay
    runs it again, so an instance whose code reads them is not kept warm.
    """

    read_replay_state = False

    @property
    def is_replaying(self) -> bool:
        self.read_replay_state = True
        return self._is_replaying

    @property
    def histories(self) -> list[HistoryEvent]:
        self.read_replay_state = True
        return self._histories


class WarmExecutor(TaskOrchestrationExecutor):
    """The SDK's executor, sharing one event-to-task table with every other warm executor.

    The SDK makes this table (and a namedtuple class for it) per executor, 5 KB for each warm
    instance; its content never changes.
    """

    shared_completions: dict[Any, Any] = {}

    def __init__(self) -> None:
        super().__init__()
        shared = WarmExecutor.shared_completions
        if not shared:
            shared.update(self.event_to_SetTaskValuePayload)
        self.event_to_SetTaskValuePayload = shared
        self.task_completion_events = shared.keys()


def _fingerprint(action: Any) -> Fingerprint:
    kind = type(action)
    if kind in FIXED_ACTIONS:
        return ()
    if kind is CreateTimerAction:
        return (bool(action.is_cancelled),)
    if kind in (WhenAllAction, WhenAnyAction):
        flags: list[bool] = []
        for child in action.compound_tasks:
            part = _fingerprint(child)
            if part is None:
                return None
            flags.extend(part)
        return tuple(flags)
    return None


def _action_json(action: Any) -> dict[str, Any]:
    """One action as it appears in the parsed state JSON (the SDK serializes with df_dumps)."""
    return json.loads(df_dumps(action.to_json()))


@dataclass
class WarmInstance:
    """One instance's live SDK state, and where in its history that state stands."""

    handle: Callable[[Any], str]
    context: WatchedContext
    executor: WarmExecutor
    events: list[dict[str, Any]]  # the history list it follows (the engine's HistoryCache.events)
    start: int  # where its last episode's events begin in that list, once stored
    first: dict[str, Any]  # that episode's OrchestratorStarted: proof that the episode was stored
    seen: int  # history events the executor has processed, once that episode is stored
    actions: list[dict[str, Any]] = field(default_factory=list)  # the state's actions, as JSON
    watched: dict[int, Fingerprint] = field(default_factory=dict)  # actions that may change

    def follows(self, handle: Callable[[Any], str], history: HistoryCache) -> bool:
        events = history.events
        return (
            handle is self.handle
            and events is self.events
            and len(events) >= self.seen
            and events[self.start] is self.first
        )

    def took(self, history: HistoryCache, new_events: list[dict[str, Any]]) -> None:
        """The executor has processed `new_events`, which join history after it when stored."""
        self.start = len(history.events)
        self.first = new_events[0]
        self.seen = self.start + len(new_events)

    def watch(self, payload: list[Any], start: int) -> None:
        for index in range(start, len(payload)):
            mark = _fingerprint(payload[index])
            if mark != ():
                self.watched[index] = mark

    def sync_actions(self, payload: list[Any]) -> list[dict[str, Any]]:
        """The actions as JSON: new ones serialized once, changeable ones when they change."""
        for index, mark in self.watched.items():
            now = _fingerprint(payload[index])
            if now is None or now != mark:
                self.actions[index] = _action_json(payload[index])
                self.watched[index] = now
        known = len(self.actions)
        self.actions.extend(_action_json(action) for action in payload[known:])
        self.watch(payload, known)
        return self.actions


@dataclass
class WarmStats:
    """How episodes ran: warm, by full replay, and why warm state was dropped."""

    warm: int = 0
    replayed: int = 0
    fell_back: int = 0
    evicted: int = 0


class WarmOrchestrations:
    """The warm instances, least recently used first, at most `limit` of them (0: none)."""

    def __init__(self, limit: int = DEFAULT_WARM_INSTANCES, verify: bool | None = False) -> None:
        self.limit = max(0, limit)
        self.verify = bool(verify)
        self.unverified = unverified_sdk() if self.limit else None
        self.stats = WarmStats()
        self._instances: OrderedDict[str, WarmInstance] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.limit > 0 and self.unverified is None

    def describe(self) -> str:
        """The one line saying which mode runs, and why."""
        if self.limit == 0:
            return "orchestrations: full replay every episode (warm instances set to 0)"
        if self.unverified is not None:
            return f"orchestrations: full replay every episode ({self.unverified})"
        checked = "each episode" if self.verify else "each instance at its end"
        return (
            f"orchestrations: warm, up to {self.limit} instances in memory; "
            f"{checked} checked against a full replay"
        )

    def __len__(self) -> int:
        return len(self._instances)

    def discard(self, instance_id: str) -> None:
        self._instances.pop(instance_id, None)

    def run(
        self,
        handle: Callable[[Any], str],
        instance_id: str,
        history: HistoryCache,
        new_events: list[dict[str, Any]],
        parent_instance_id: str | None,
        input_json: str | None,
    ) -> ReplayResult:
        """One episode: warm if this instance's live state follows `history`, else replayed."""
        args = (handle, instance_id, history, new_events, parent_instance_id, input_json)
        if not self.enabled:
            return _matching_history(_full_replay(*args), history)
        warm = self._instances.pop(instance_id, None)
        result = None
        if warm is not None and warm.follows(handle, history):
            result = _continue(warm, history, new_events)
            if result is None:
                self.stats.fell_back += 1
        ran_warm = result is not None
        if result is None:
            warm, result = _replay_keeping_state(*args)
            self.stats.replayed += 1
            result = _matching_history(result, history)
        else:
            self.stats.warm += 1
        # A warm episode that ends the execution is its last chance to be replayed.
        if result.error is None and (self.verify or (ran_warm and result.is_done)):
            reference = _replay_parsed(*args)
            result = _checked(result, reference, history, len(new_events), instance_id)
        keep = warm is not None and not warm.context.read_replay_state
        if keep and result.state is not None and not result.is_done:
            self._instances[instance_id] = warm
            while len(self._instances) > self.limit:
                self._instances.popitem(last=False)
                self.stats.evicted += 1
        return result


def _full_replay(
    handle: Callable[[Any], str],
    instance_id: str,
    history: HistoryCache,
    new_events: list[dict[str, Any]],
    parent_instance_id: str | None,
    input_json: str | None,
) -> ReplayResult:
    context = build_context(history, new_events, instance_id, parent_instance_id, input_json)
    return run_orchestrator(handle, context)


def _replay_keeping_state(
    handle: Callable[[Any], str],
    instance_id: str,
    history: HistoryCache,
    new_events: list[dict[str, Any]],
    parent_instance_id: str | None,
    input_json: str | None,
) -> tuple[WarmInstance | None, ReplayResult]:
    """A full replay made as the SDK's handle makes it, keeping its live objects."""
    context_json = build_context(history, new_events, instance_id, parent_instance_id, input_json)
    user_code = getattr(handle, "orchestrator_function", None)
    if user_code is None:  # not the SDK's Orchestrator.create handle
        return None, run_orchestrator(handle, context_json)
    context = WatchedContext.from_json(context_json)
    context._input_expected_type = getattr(handle, "_df_input_type", None)
    context.read_replay_state = False  # the SDK's own read, in the constructor
    executor = WarmExecutor()
    try:
        state = json.loads(executor.execute(context, context._histories, user_code))
    except Exception as err:  # noqa: BLE001 - user code failures are results, not host crashes
        return None, failure_result(err)
    result = result_from_state(state)
    if (
        context.read_replay_state
        or not isinstance(getattr(executor, "generator", None), GeneratorType)
        or context._replay_schema is not ReplaySchema.V2
    ):
        return None, result
    warm = WarmInstance(handle, context, executor, history.events, 0, new_events[0], 0)
    warm.actions = result.actions
    warm.watch(context._action_payload_v2, 0)
    warm.took(history, new_events)
    context._histories = []  # only code that reads it needs it, and such code is not kept warm
    return warm, result


def _history_event(fields: dict[str, Any]) -> HistoryEvent:
    """`HistoryEvent(**fields)` as the verified SDK builds it, but a timestamp that devhost wrote
    is read by `datetime.fromisoformat`, to the value dateutil gives: parsing timestamps is most
    of the SDK's cost of a replay, and a warm instance's check replays its whole history."""
    stamp = fields.get("Timestamp")
    if not isinstance(stamp, str) or not HOST_TIMESTAMP.match(stamp):
        return HistoryEvent(**fields)
    evt = HistoryEvent.__new__(HistoryEvent)
    rest = dict(fields)
    evt._event_type = rest.pop("EventType")
    evt._event_id = rest.pop("EventId")
    evt._is_played = rest.pop("IsPlayed")
    del rest["Timestamp"]
    evt._timestamp = datetime.fromisoformat(stamp[:-1]).replace(tzinfo=Z_ZONE)
    evt._is_processed = False
    evt.Name = evt.InstanceId = evt.TaskScheduledId = None
    evt.Reason = evt.Details = evt.Input = None
    for key, value in rest.items():
        setattr(evt, key, value)
    return evt


def _replay_parsed(
    handle: Callable[[Any], str],
    instance_id: str,
    history: HistoryCache,
    new_events: list[dict[str, Any]],
    parent_instance_id: str | None,
    input_json: str | None,
) -> ReplayResult:
    """A full replay as the SDK's handle makes it, its events built by `_history_event`."""
    args = (handle, instance_id, history, new_events, parent_instance_id, input_json)
    user_code = getattr(handle, "orchestrator_function", None)
    history.forget_new()
    texts = [*history.played_json, *map(history.new_event_json, new_events)]
    if user_code is None or len(texts) < 2:
        return _full_replay(*args)
    fields = [json.loads(text) for text in texts]
    head = {
        "instanceId": instance_id,
        "isReplaying": bool(history.events),
        "parentInstanceId": parent_instance_id,
        "input": input_json,
        "upperSchemaVersion": REPLAY_SCHEMA_V2,
        "history": fields[:2],  # what the context reads of it: its start and version
    }
    context = DurableOrchestrationContext.from_json(json.dumps(head))
    context._input_expected_type = getattr(handle, "_df_input_type", None)
    context._histories = [_history_event(f) for f in fields]
    try:
        state = WarmExecutor().execute(context, context._histories, user_code)
    except Exception as err:  # noqa: BLE001 - user code failures are results, not host crashes
        return failure_result(err)
    return result_from_state(json.loads(state))


def _continue(
    warm: WarmInstance, history: HistoryCache, new_events: list[dict[str, Any]]
) -> ReplayResult | None:
    """The episode on live state; None when it must be replayed instead (the state is spent)."""
    context, executor = warm.context, warm.executor
    history.forget_new()
    texts = [*history.played_json[warm.seen :], *map(history.new_event_json, new_events)]
    try:
        events = [_history_event(json.loads(text)) for text in texts]
        boundary = executor._find_new_events_start_index(events)
        executor._is_processing_new_events = False
        for index, evt in enumerate(events):
            if index >= boundary:
                executor._is_processing_new_events = True
            executor.process_event(evt)
            if executor.has_execution_completed:
                break
        if executor.exception is not None or context.read_replay_state:
            return None
        head = _state_head(context, executor)
    except Exception:  # noqa: BLE001 - anything unusual is left to the full replay
        log.debug("warm episode fell back to a full replay", exc_info=True)
        return None
    head["actions"] = [warm.sync_actions(context._action_payload_v2)]
    warm.took(history, new_events)
    return result_from_state(head)


def _state_head(context: WatchedContext, executor: WarmExecutor) -> dict:
    """The SDK's own state JSON without its actions (the costly part, kept incrementally)."""
    payload = context._action_payload_v2
    context._action_payload_v2 = []
    try:
        return json.loads(executor.get_orchestrator_state_str())
    finally:
        context._action_payload_v2 = payload


def _matching_history(result: ReplayResult, history: HistoryCache) -> ReplayResult:
    """A full replay's result, or the instance's failure if it no longer matches its history."""
    if not history.events:
        return result
    divergence = find_divergence(history.events, result)
    return result if divergence is None else nondeterministic(divergence)


def _checked(
    result: ReplayResult,
    reference: ReplayResult,
    history: HistoryCache,
    new_events: int,
    instance_id: str,
) -> ReplayResult:
    """The episode's result once checked against its full replay `reference`."""
    if result == reference:
        return result
    divergence: Divergence | None = find_divergence(
        history.events, reference, result, len(history.events) + new_events
    )
    if divergence is not None:
        return nondeterministic(divergence)
    ours = result.state if result.state is not None else {"error": result.error}
    theirs = reference.state if reference.state is not None else {"error": reference.error}
    keys = sorted({*ours, *theirs}, key=str)
    differing = [k for k in keys if ours.get(k) != theirs.get(k)]
    detail = "; ".join(
        f"{k}: warm {_short(ours.get(k))} vs replay {_short(theirs.get(k))}" for k in differing
    )
    log.error(
        "%s: the orchestrator answers otherwise when its episode is replayed (%s): its code is "
        "not deterministic; the replay's answer is kept, as Azure replays every episode",
        instance_id,
        detail,
    )
    return reference


def _short(value: Any, limit: int = 300) -> str:
    text = json.dumps(value, default=repr)
    return text if len(text) <= limit else f"{text[:limit]}..."
