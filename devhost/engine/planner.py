"""Turns an orchestrator's actions into history and work, numbering tasks as the SDK does.

The planner is the host-side half of the replay protocol, with no I/O: it chooses which inbox
messages an episode sees, and after the SDK has run, which new history events and which work
(activities, timers, sub-orchestrations) the new actions mean.

An SDK of the Durable Task family (the gRPC protocol) answers incrementally instead: only the
episode's new actions, each numbered by the SDK itself, and it buffers raised events itself; the
planner then takes the SDK's numbers and delivers every event as it arrives (`incremental`).

Task ids follow the SDK's sequence: every numbered action takes the next id in the order the SDK
yields them; a retry takes further ids for its timer and each new attempt. Because the SDK hands
out a retry's id while it processes the failure (or the retry timer), such an event is given to
an episode last and alone, so that the ids of the actions it yields before it come first.

Longer than 400 lines because the task-id sequence is one rule over every kind of action
(activities, retries, timers, sub-orchestrations, entity messages, compound actions) and over
both directions (planning an episode, rebuilding after a restart): split by kind, each part
would have to know the others' numbering.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from ..taskhub.history import (
    CARRIED_OVER,
    EventType,
    completion_target,
    event,
    format_time,
    parse_time,
)
from ..taskhub.model import Message, is_entity_id
from .actions import ENTITY_MESSAGES, NUMBERED, ActionType, Path, at_path, leaves
from .entities import EntityRequest
from .replay import ReplayResult

SCHEDULING_EVENTS = frozenset(
    {
        EventType.TaskScheduled,
        EventType.TimerCreated,
        EventType.SubOrchestrationInstanceCreated,
        EventType.EventSent,
    }
)
ENTITY_RESPONSE_FIELD = "EntityResponse"
CHILD_KINDS = frozenset({ActionType.CallSubOrchestrator, ActionType.CallSubOrchestratorWithRetry})


@dataclass
class PendingTask:
    """A task the orchestrator scheduled and has not yet seen complete."""

    kind: ActionType
    name: str | None = None
    input: str | None = None
    instance_id: str | None = None
    retry: dict[str, Any] | None = None
    attempt: int = 1
    retry_of: int | None = None
    retried_kind: ActionType | None = None
    fire_at: datetime | None = None
    position: Path | None = None
    target: str | None = None
    version: str | None = None  # a Durable Task worker's activity or child version

    def retry_fields(self) -> dict[str, Any]:
        """What a retry timer's event keeps of the task it repeats, to rebuild after a restart."""
        return {
            "Of": self.retry_of,
            "Kind": int(self.retried_kind or 0),
            "Name": self.name,
            "Input": self.input,
            "InstanceId": self.instance_id,
            "Options": self.retry,
            "Attempt": self.attempt,
        }

    @property
    def is_timer(self) -> bool:
        return self.kind == ActionType.CreateTimer


@dataclass
class Work:
    """What the engine must start once an episode is stored."""

    activities: list[tuple[int, PendingTask]] = field(default_factory=list)
    timers: list[tuple[int, datetime]] = field(default_factory=list)
    canceled_timers: list[int] = field(default_factory=list)
    children: list[tuple[int, PendingTask]] = field(default_factory=list)
    entity_messages: list[tuple[str, EntityRequest]] = field(default_factory=list)


@dataclass
class Outcome:
    """How an execution ended in this episode; None in EpisodePlan while it goes on."""

    status: str  # "Completed", "Failed" or "ContinuedAsNew"
    output: Any = None
    error: str | None = None
    continue_input: str | None = None


@dataclass
class EpisodePlan:
    new_events: list[dict[str, Any]]
    work: Work
    outcome: Outcome | None = None


@dataclass
class WaitingOn:
    """What an execution waits for now: the open tasks of its planner, and awaited events."""

    timers: list[tuple[int, datetime]] = field(default_factory=list)  # task id, due time
    retry_timers: list[int] = field(default_factory=list)  # those timers that delay a retry
    events: list[str] = field(default_factory=list)  # names of awaited external events
    activities: list[tuple[int, str]] = field(default_factory=list)  # task id, function
    suborchestrations: list[tuple[int, str, str]] = field(default_factory=list)  # + instance id
    entities: list[tuple[str, str]] = field(default_factory=list)  # entity id, operation called

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with due times in ISO 8601."""
        return {
            "timers": [
                {"task": t, "due": format_time(due), "retry": t in self.retry_timers}
                for t, due in self.timers
            ],
            "events": list(self.events),
            "activities": [{"task": t, "name": name} for t, name in self.activities],
            "suborchestrations": [
                {"task": t, "name": name, "instance_id": target}
                for t, name, target in self.suborchestrations
            ],
            "entities": [{"entity": e, "operation": op} for e, op in self.entities],
        }


@dataclass
class Selection:
    events: list[dict[str, Any]]
    consumed: list[str]


class Planner:
    """The host's view of one execution: open tasks, the id sequence, event waits."""

    def __init__(self, instance_id: str, execution_id: str) -> None:
        self.instance_id = instance_id
        self.execution_id = execution_id
        self.started = False
        self.next_id = 0
        self.top_actions_seen = 0
        self.tasks: dict[int | str, PendingTask] = {}
        self.waits: Counter[str] = Counter()
        self.delivered: Counter[str] = Counter()
        self.incremental = False  # learnt from the SDK's answers (see the module docstring)
        self.scheduled: Counter[int] = Counter()  # times each task id was scheduled (retries)

    def waiting_on(self) -> WaitingOn:
        """The open tasks in task-id order, and the events awaited and not yet delivered."""
        awaited = [name for name, count in self.waits.items() if count > self.delivered[name]]
        view = WaitingOn(events=sorted(awaited))
        for key, task in self.tasks.items():
            if isinstance(key, str):  # an entity call, keyed by its request id
                view.entities.append((task.instance_id or "", task.name or ""))
        numbered = sorted(
            ((k, t) for k, t in self.tasks.items() if isinstance(k, int)), key=lambda i: i[0]
        )
        for task_id, task in numbered:
            if task.is_timer and task.fire_at is not None:
                view.timers.append((task_id, task.fire_at))
                if task.retry_of is not None:
                    view.retry_timers.append(task_id)
            elif task.kind in CHILD_KINDS:
                view.suborchestrations.append((task_id, task.name or "", task.target or ""))
            else:
                view.activities.append((task_id, task.name or ""))
        return view

    # -- choosing what an episode sees -------------------------------------------------------

    def select(self, inbox: list[Message]) -> Selection:
        """Messages for this episode, in arrival order; duplicates and stale results consumed."""
        events: list[dict[str, Any]] = []
        consumed: list[str] = []
        retry_event: Message | None = None
        offered: Counter[str] = Counter()
        taken: set[int | str] = set()  # one result a task: a second (after a crash) is a duplicate
        for message in inbox:
            evt = message.event
            kind = evt["EventType"]
            if kind == EventType.ExecutionStarted:
                if message.execution_id != self.execution_id:
                    consumed.append(message.message_id)  # a duplicate start of a live instance
                elif not self.started and not events:
                    events.append(evt)
                    consumed.append(message.message_id)
                    self.started = True
                continue
            if not self.started:
                continue
            if kind == EventType.EventRaised and not evt.get(ENTITY_RESPONSE_FIELD):
                if evt.get(CARRIED_OVER) == self.execution_id:
                    continue  # for the next execution (this one's last episode runs again)
                name = evt.get("Name") or ""
                if self.incremental or self.waits[name] > self.delivered[name] + offered[name]:
                    offered[name] += 1
                    events.append(evt)
                    consumed.append(message.message_id)
                continue
            target = _target_of(evt)
            task = self.tasks.get(target) if target is not None else None
            stale = message.execution_id not in (None, self.execution_id)
            if task is None or stale or target in taken:
                consumed.append(message.message_id)  # a duplicate, or for an older execution
                continue
            if _is_retry_step(evt, task):
                if retry_event is None:
                    retry_event = message
                continue
            taken.add(target)
            events.append(evt)
            consumed.append(message.message_id)
        if retry_event is not None:
            events.append(retry_event.event)
            consumed.append(retry_event.message_id)
        self.delivered.update(offered)
        return Selection(events=carried_first(events), consumed=consumed)

    # -- turning the SDK's answer into history and work --------------------------------------

    def plan(
        self, result: ReplayResult, now: datetime, delivered: list[dict[str, Any]]
    ) -> EpisodePlan:
        """New history and work for the events just delivered and the actions just returned."""
        work = Work()
        new_events: list[dict[str, Any]] = []
        retry_step = None
        self.incremental = result.incremental
        for evt in delivered:
            target = _target_of(evt)
            if evt["EventType"] == EventType.EventRaised and not evt.get(ENTITY_RESPONSE_FIELD):
                continue
            task = self.tasks.pop(target, None) if target is not None else None
            if task is not None and _is_retry_step(evt, task):
                retry_step = (target, task)

        outcome = self._outcome(result)
        seen = 0 if result.incremental else self.top_actions_seen
        if outcome is None or outcome.status != "Failed":
            for path, action in leaves(result.actions, seen):
                self._schedule(action, path, now, new_events, work)
        if not result.incremental:
            self.top_actions_seen += len(result.actions) - seen
        if retry_step is not None:
            self._retry(retry_step[0], retry_step[1], now, new_events, work)
        self._find_canceled_timers(result.actions, work)
        return EpisodePlan(new_events=new_events, work=work, outcome=outcome)

    def _outcome(self, result: ReplayResult) -> Outcome | None:
        if result.error is not None:
            return Outcome("Failed", error=result.error)
        if not result.is_done:
            return None
        for action in result.actions:
            if action.get("actionType") == ActionType.ContinueAsNew:
                return Outcome("ContinuedAsNew", continue_input=action.get("input"))
        return Outcome("Completed", output=result.output)

    def _take_id(self, action: dict[str, Any] | None = None) -> int:
        """The next id of the sequence, or the id an incremental SDK gave the action."""
        given = action.get("taskId") if action is not None else None
        task_id = self.next_id if given is None else int(given)
        self.next_id = max(self.next_id, task_id + 1)
        self.scheduled[task_id] += 1
        return task_id

    def _schedule(
        self,
        action: dict[str, Any],
        path: Path,
        now: datetime,
        new_events: list[dict[str, Any]],
        work: Work,
    ) -> None:
        kind = action.get("actionType")
        if kind == ActionType.WaitForExternalEvent:
            self.waits[action.get("externalEventName") or ""] += 1
            return
        if kind not in NUMBERED:
            return
        task_id = self._take_id(action)
        kind = ActionType(kind)
        if kind in (ActionType.CallActivity, ActionType.CallActivityWithRetry):
            task = PendingTask(
                kind,
                action["functionName"],
                action.get("input"),
                retry=action.get("retryOptions"),
                version=action.get("version"),
            )
            self._add_activity(task_id, task, now, new_events, work)
        elif kind == ActionType.CallHttp:
            task = PendingTask(kind, BUILTIN_HTTP_ACTIVITY, _json_text(action.get("httpRequest")))
            self._add_activity(task_id, task, now, new_events, work)
        elif kind in (ActionType.CallSubOrchestrator, ActionType.CallSubOrchestratorWithRetry):
            task = PendingTask(
                kind,
                action["functionName"],
                action.get("input"),
                instance_id=action.get("instanceId") or None,
                retry=action.get("retryOptions"),
                attempt=self.scheduled[task_id],
                version=action.get("version"),
            )
            self._add_child(task_id, task, now, new_events, work)
        elif kind == ActionType.CreateTimer:
            fire_at = parse_time(action["fireAt"])
            task = PendingTask(kind, fire_at=fire_at, position=path)
            self.tasks[task_id] = task
            new_events.append(
                event(
                    EventType.TimerCreated,
                    now,
                    task_id,
                    FireAt=action["fireAt"],
                    Position=list(path),
                )
            )
            work.timers.append((task_id, fire_at))
        elif kind == ActionType.SendEvent:
            # Recorded here; the runner of the SDK that asked delivers it, before the commit
            # (a crash in between sends it again, under the same message id: dropped).
            new_events.append(
                event(
                    EventType.EventSent,
                    now,
                    task_id,
                    InstanceId=action.get("instanceId"),
                    Name=action.get("name"),
                    Input=action.get("input"),
                )
            )
        elif kind in ENTITY_MESSAGES:
            self._add_entity_message(kind, task_id, action, now, new_events, work)

    def _add_entity_message(
        self,
        kind: ActionType,
        task_id: int,
        action: dict[str, Any],
        now: datetime,
        new_events: list,
        work: Work,
    ) -> None:
        """A call, a signal, a lock request or an unlock, recorded as the EventSent the SDKs
        replay; the request goes to its entity before the episode's commit. A call and a lock
        request stay open until their answer (an EventRaised named by the request id)."""
        request_id = action.get("requestId") or str(
            uuid5(NAMESPACE_URL, f"{self.instance_id}/{self.execution_id}/{task_id}")
        )
        target = action.get("instanceId") or ""
        request = EntityRequest(
            request_id,
            action.get("operation") or "",
            kind in (ActionType.SignalEntity, ActionType.UnlockEntity),
            action.get("input"),
            self.instance_id,
            self.execution_id,
            due=action.get("scheduledTime"),
            lock_set=action.get("lockSet"),
            unlock=kind == ActionType.UnlockEntity,
        )
        if kind in (ActionType.CallEntity, ActionType.LockEntities):
            self.tasks[request_id] = PendingTask(
                kind, request.operation, request.input, instance_id=target, target=request_id
            )
        new_events.append(
            event(
                EventType.EventSent,
                now,
                task_id,
                InstanceId=target,
                Name="op",
                Input=request.to_json(),
            )
        )
        work.entity_messages.append((target, request))

    def _add_activity(
        self, task_id: int, task: PendingTask, now: datetime, new_events: list, work: Work
    ) -> None:
        self.tasks[task_id] = task
        extra = {"RetryOptions": task.retry, "Attempt": task.attempt} if task.retry else {}
        if task.version:
            extra["Version"] = task.version
        new_events.append(
            event(EventType.TaskScheduled, now, task_id, Name=task.name, Input=task.input, **extra)
        )
        work.activities.append((task_id, task))

    def _add_child(
        self, task_id: int, task: PendingTask, now: datetime, new_events: list, work: Work
    ) -> None:
        task.target = task.instance_id or f"{self.instance_id}:{task_id:04d}"
        self.tasks[task_id] = task
        extra = {"RetryOptions": task.retry, "Attempt": task.attempt} if task.retry else {}
        if task.attempt > 1:
            extra["Attempt"] = task.attempt
        if task.instance_id is None:
            extra["GeneratedId"] = True
        if task.version:
            extra["Version"] = task.version
        new_events.append(
            event(
                EventType.SubOrchestrationInstanceCreated,
                now,
                task_id,
                Name=task.name,
                Input=task.input,
                InstanceId=task.target,
                **extra,
            )
        )
        work.children.append((task_id, task))

    def _retry(
        self, task_id: int, task: PendingTask, now: datetime, new_events: list, work: Work
    ) -> None:
        """The host's part of a retry: a timer after a failure, a new attempt after the timer."""
        if not task.is_timer:
            delay = timedelta(milliseconds=int(task.retry["firstRetryIntervalInMilliseconds"]))
            timer_id = self._take_id()
            fire_at = now + delay
            timer = PendingTask(
                ActionType.CreateTimer,
                fire_at=fire_at,
                retry_of=task_id,
                retried_kind=task.kind,
                retry=task.retry,
                attempt=task.attempt,
                name=task.name,
                input=task.input,
                instance_id=task.instance_id,
            )
            self.tasks[timer_id] = timer
            new_events.append(
                event(
                    EventType.TimerCreated,
                    now,
                    timer_id,
                    FireAt=format_time(fire_at),
                    Retry=timer.retry_fields(),
                )
            )
            work.timers.append((timer_id, fire_at))
            return
        if task.attempt >= int(task.retry["maxNumberOfAttempts"]):
            return  # the SDK fails the task on this timer; nothing more to schedule
        again_id = self._take_id()
        kind = task.retried_kind or ActionType.CallActivityWithRetry
        again = PendingTask(
            kind,
            task.name,
            task.input,
            instance_id=task.instance_id,
            retry=task.retry,
            attempt=task.attempt + 1,
        )
        if kind == ActionType.CallSubOrchestratorWithRetry:
            self._add_child(again_id, again, now, new_events, work)
        else:
            self._add_activity(again_id, again, now, new_events, work)

    def _find_canceled_timers(self, actions: list[dict[str, Any]], work: Work) -> None:
        for task_id, task in list(self.tasks.items()):
            if task.position is None:
                continue
            action = at_path(actions, task.position)
            if action is not None and action.get("isCanceled"):
                del self.tasks[task_id]
                work.canceled_timers.append(task_id)

    # -- rebuilding after a restart ------------------------------------------------------------

    def rebuild(self, history: list[dict[str, Any]], result: ReplayResult | None) -> None:
        """Recover this view from stored history and a replay of it (no new events).

        A task is open if nothing completed it after it was scheduled: a Durable Task SDK
        schedules each attempt of a retried activity under the same id again."""
        open_tasks: dict[int, dict[str, Any]] = {}
        entity_waits: dict[str, PendingTask] = {}  # calls and lock requests, by request id
        for evt in history:
            kind = evt["EventType"]
            if kind == EventType.ExecutionStarted:
                self.started = True
            elif kind in SCHEDULING_EVENTS:
                self.next_id = max(self.next_id, evt["EventId"] + 1)
                self.scheduled[evt["EventId"]] += 1
                open_tasks[evt["EventId"]] = evt
                waits = _entity_wait(evt)
                if waits is not None:
                    entity_waits[waits.target or ""] = waits
            elif kind == EventType.EventRaised and evt.get(ENTITY_RESPONSE_FIELD):
                entity_waits.pop(evt.get("Name") or "", None)
            elif kind == EventType.EventRaised:
                self.delivered[evt.get("Name") or ""] += 1
            target = completion_target(evt)
            if target is not None:
                open_tasks.pop(target, None)
        for task_id, evt in open_tasks.items():
            task = _task_from_event(evt)
            if task is not None:
                self.tasks[task_id] = task
        self.tasks.update(entity_waits)
        if result is not None:
            self.incremental = result.incremental
            self.top_actions_seen = len(result.actions)
            for _path, action in leaves(result.actions):
                if action.get("actionType") == ActionType.WaitForExternalEvent:
                    self.waits[action.get("externalEventName") or ""] += 1

    def pending_work(self) -> Work:
        """All open tasks as work to start again (activities run at least once)."""
        work = Work()
        for task_id, task in self.tasks.items():
            if task.is_timer:
                work.timers.append((task_id, task.fire_at))
            elif task.kind in CHILD_KINDS:
                work.children.append((task_id, task))
            elif task.kind in ENTITY_MESSAGES:
                continue
            else:
                work.activities.append((task_id, task))
        return work


BUILTIN_HTTP_ACTIVITY = "BuiltIn::HttpActivity"


def _target_of(evt: dict[str, Any]) -> int | str | None:
    """The task id (or an event's name) an incoming event answers."""
    if evt["EventType"] == EventType.EventRaised:
        return evt.get("Name")
    return completion_target(evt)


def _is_retry_step(evt: dict[str, Any], task: PendingTask) -> bool:
    """A failure its retry policy answers, or the timer before a retry: not the task's end."""
    failed = evt["EventType"] in (EventType.TaskFailed, EventType.SubOrchestrationInstanceFailed)
    return (failed and task.retry is not None) or (task.is_timer and task.retry_of is not None)


def carried_first(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events carried over into a continue-as-new come right after the execution's start,
    before events raised while the last episode ran, as the Durable Task SDK's backends deliver
    them (they were raised before those). The 1.x SDK carries none: its order is untouched."""
    carried = [e for e in events if e.get(CARRIED_OVER)]
    if not carried:
        return events
    rest = [e for e in events if not e.get(CARRIED_OVER)]
    head = 1 if rest and rest[0]["EventType"] == EventType.ExecutionStarted else 0
    return [*rest[:head], *carried, *rest[head:]]


def _json_text(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def _entity_wait(evt: dict[str, Any]) -> PendingTask | None:
    """The open task of a recorded entity message that waits for an answer (a call, a lock
    request); None for any other event, a signal or an unlock."""
    if evt["EventType"] != EventType.EventSent or not is_entity_id(evt.get("InstanceId") or ""):
        return None
    request = EntityRequest.from_message(Message("", evt["InstanceId"], evt))
    if request.unlock or (request.signal and request.lock_set is None):
        return None
    kind = ActionType.LockEntities if request.lock_set is not None else ActionType.CallEntity
    return PendingTask(
        kind, request.operation, request.input, instance_id=evt["InstanceId"], target=request.id
    )


def _task_from_event(evt: dict[str, Any]) -> PendingTask | None:
    kind = evt["EventType"]
    retry = evt.get("RetryOptions")
    attempt = int(evt.get("Attempt") or 1)
    if kind == EventType.TaskScheduled:
        action = ActionType.CallActivityWithRetry if retry else ActionType.CallActivity
        return PendingTask(
            action,
            evt.get("Name"),
            evt.get("Input"),
            retry=retry,
            attempt=attempt,
            version=evt.get("Version"),
        )
    if kind == EventType.SubOrchestrationInstanceCreated:
        action = (
            ActionType.CallSubOrchestratorWithRetry if retry else ActionType.CallSubOrchestrator
        )
        given = None if evt.get("GeneratedId") else evt.get("InstanceId")
        return PendingTask(
            action,
            evt.get("Name"),
            evt.get("Input"),
            instance_id=given,
            retry=retry,
            attempt=attempt,
            target=evt.get("InstanceId"),
            version=evt.get("Version"),
        )
    if kind == EventType.TimerCreated:
        fire_at = parse_time(evt["FireAt"])
        spec = evt.get("Retry")
        if spec is None:
            position = evt.get("Position")
            return PendingTask(
                ActionType.CreateTimer,
                fire_at=fire_at,
                position=tuple(position) if position is not None else None,
            )
        return PendingTask(
            ActionType.CreateTimer,
            fire_at=fire_at,
            retry_of=spec["Of"],
            retried_kind=ActionType(spec["Kind"]),
            name=spec["Name"],
            input=spec["Input"],
            instance_id=spec["InstanceId"],
            retry=spec["Options"],
            attempt=spec["Attempt"],
        )
    return None
