"""Orchestration episodes and their commits.

An episode hands the orchestrator every ready event of its instance in one replay, turns the
actions it returns into new history and work (the planner), and commits that in one store write;
only then does the work start and the outbox go out. A control message (terminate, suspend,
resume) is applied on its own, without a replay.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from datetime import datetime
from typing import Any

from ..app.app_index import FunctionIndex
from ..clock import Clock
from ..store.base import StorageRequestError, TaskHubStore
from ..taskhub.history import EventType, event
from ..taskhub.model import EpisodeCommit, Message, RuntimeStatus
from ..taskhub.rules import MAX_CUSTOM_STATUS_CHARS, MAX_PAYLOAD_CHARS, payload_too_large
from .dispatch import Dispatch
from .entities import request_message
from .entity_runtime import EntityRuntimes
from .instances import LiveInstances, Orchestration, parent_id
from .messages import failure_line, parent_message, start_message, to_json_text
from .planner import Outcome, Planner
from .replay import EpisodeCall, ReplayResult
from .routing import Routing
from .scheduled_start import ScheduledStarts
from .user_code import UserCode

log = logging.getLogger("devhost.engine")
GENERATIONS_KEPT = 5  # earlier executions of a continue-as-new loop kept for the dashboard

CONTROL_EVENTS = frozenset(
    {EventType.ExecutionTerminated, EventType.ExecutionSuspended, EventType.ExecutionResumed}
)


class Episodes:
    """Runs an instance's episodes, at most `max_orchestrations` instances at once."""

    def __init__(
        self,
        index: FunctionIndex,
        store: TaskHubStore,
        clock: Clock,
        runner: UserCode,
        instances: LiveInstances,
        routing: Routing,
        entities: EntityRuntimes,
        dispatch: Dispatch,
        max_orchestrations: int,
    ) -> None:
        self.index = index
        self.store = store
        self.clock = clock
        self.runner = runner
        self.instances = instances
        self.routing = routing
        self.entities = entities
        self.dispatch = dispatch
        self._slots = asyncio.Semaphore(max_orchestrations)
        self.scheduled_starts = ScheduledStarts(clock, instances.notify)

    async def process(self, orch: Orchestration) -> None:
        """Episodes of the instance until nothing can be done now."""
        async with self._slots:
            orch.scheduled = False
            orch.busy = True
            try:
                while await self._step(orch):
                    pass
            except StorageRequestError as err:
                await self._fail_unstorable(orch, err)
            finally:
                orch.busy = False

    async def _fail_unstorable(self, orch: Orchestration, err: StorageRequestError) -> None:
        """Storage refused an episode for good: fail the instance rather than leave it stuck."""
        record = orch.record.copy()
        now = self.clock.now()
        record.last_updated_time = now
        commit = EpisodeCommit(
            record,
            [event(EventType.OrchestratorStarted, now)],
            [m.message_id for m in orch.inbox if m.stored],
        )
        self._finish(commit, Outcome("Failed", error=f"its state could not be stored: {err}"), now)
        try:
            await self._commit(orch, commit)
        except StorageRequestError:
            log.exception("Instance '%s' could not be stored, even as failed", record.instance_id)
            self.instances.evict(orch)

    async def _step(self, orch: Orchestration) -> bool:
        """One unit of progress for an instance; False when nothing can be done now."""
        record = orch.record
        if not self.instances.holds(orch):
            return False
        if record.runtime_status.is_terminal:
            self.instances.evict(orch)
            return False
        control = next((m for m in orch.inbox if m.event["EventType"] in CONTROL_EVENTS), None)
        if control is not None:
            await self._apply_control(orch, control)
            return True
        if record.runtime_status == RuntimeStatus.Suspended:
            return False
        if self.scheduled_starts.not_yet(orch):
            return False
        selection = orch.planner.select(orch.inbox)
        if not selection.events and not orch.force_episode:
            if selection.consumed:
                await self._commit(orch, EpisodeCommit(record.copy(), [], selection.consumed))
            return False
        orch.force_episode = False
        await self._episode(orch, selection.events, selection.consumed)
        return True

    async def _apply_control(self, orch: Orchestration, message: Message) -> None:
        record = orch.record.copy()
        now = self.clock.now()
        record.last_updated_time = now
        kind = message.event["EventType"]
        events = [message.event]
        consumed = [message.message_id]
        if kind == EventType.ExecutionTerminated:
            reason = message.event.get("Input")
            record.runtime_status = RuntimeStatus.Terminated
            record.output = to_json_text(reason)
            events.append(
                event(
                    EventType.ExecutionCompleted,
                    now,
                    OrchestrationStatus="Terminated",
                    Result=record.output,
                )
            )
            consumed = [m.message_id for m in orch.inbox]
        elif kind == EventType.ExecutionSuspended:
            if record.runtime_status in (RuntimeStatus.Running, RuntimeStatus.Pending):
                record.runtime_status = RuntimeStatus.Suspended
        elif (
            kind == EventType.ExecutionResumed and record.runtime_status == RuntimeStatus.Suspended
        ):
            started = any(e["EventType"] == EventType.ExecutionStarted for e in orch.history.events)
            record.runtime_status = RuntimeStatus.Running if started else RuntimeStatus.Pending
        await self._commit(orch, EpisodeCommit(record, events, consumed))

    async def _episode(
        self, orch: Orchestration, delivered: list[dict[str, Any]], consumed: list[str]
    ) -> None:
        record = orch.record.copy()
        now = self.clock.now()
        info = self.index.orchestrators.get(record.name)
        new_events = [event(EventType.OrchestratorStarted, now), *delivered]
        if info is None:
            result = ReplayResult(
                actions=[],
                is_done=True,
                error=f"The orchestrator function '{record.name}' doesn't exist.",
            )
        else:
            result = await self.runner.episode(
                EpisodeCall(
                    record.name,
                    record.instance_id,
                    record.execution_id,
                    orch.history,
                    new_events,
                    parent_id(record),
                    record.input,
                )
            )
        plan = orch.planner.plan(result, now, delivered)
        new_events.extend(plan.new_events)
        record.last_updated_time = now
        record.runtime_status = RuntimeStatus.Running
        record.custom_status = (
            to_json_text(result.custom_status) if result.has_custom_status else None
        )
        plan.outcome = within_limits(plan.outcome, record.custom_status)
        outbox = self.routing.child_starts(orch, plan.work)
        for entity_id, request in plan.work.entity_messages:
            # Sent before the commit: a crash in between replays the episode, which sends the
            # same request id again, and the entity drops the repeat.
            await self.entities.send(request_message(entity_id, request, now))
        commit = EpisodeCommit(record, new_events, consumed, outbox)
        if plan.outcome is not None:
            self._finish(commit, plan.outcome, now)
        else:
            new_events.append(event(EventType.OrchestratorCompleted, now))
        ended = [*orch.history.events, *new_events] if commit.new_execution else None
        await self._commit(orch, commit)
        if ended is not None:
            orch.generations = [*orch.generations, ended][-GENERATIONS_KEPT:]
        if not commit.new_execution and not record.runtime_status.is_terminal:
            self.dispatch.start_work(orch, plan.work, ensure_children=False)

    def _finish(self, commit: EpisodeCommit, outcome: Outcome, now: datetime) -> None:
        """The execution ends: completed, failed, or continued as new (a new execution)."""
        record = commit.record
        if outcome.status == "ContinuedAsNew":
            start = start_message(
                self.clock.now(),
                record.instance_id,
                record.name,
                outcome.continue_input,
                record.parent,
                record.start_options,
            )
            record.execution_id = start.execution_id
            record.input = outcome.continue_input
            record.output = None
            commit.new_events = []
            commit.new_execution = True
            commit.outbox = [start]
            return
        if outcome.status == "Completed":
            record.runtime_status = RuntimeStatus.Completed
            record.output = to_json_text(outcome.output)
        else:
            record.runtime_status = RuntimeStatus.Failed
            record.output = to_json_text(
                f"Orchestrator function '{record.name}' failed: {outcome.error}"
            )
            log.error(failure_line(record.instance_id, record.name, "Orchestrator", outcome.error))
        commit.new_events.append(
            event(
                EventType.ExecutionCompleted,
                now,
                OrchestrationStatus=str(record.runtime_status),
                Result=record.output,
            )
        )
        commit.new_events.append(event(EventType.OrchestratorCompleted, now))
        parent = record.parent
        if parent:
            failed = outcome.status != "Completed"
            commit.outbox.append(
                parent_message(
                    self.clock.now(),
                    parent["OrchestrationInstance"]["InstanceId"],
                    parent["OrchestrationInstance"]["ExecutionId"],
                    parent["TaskScheduledId"],
                    failed=failed,
                    result=record.output,
                    reason=json.loads(record.output) if failed and record.output else None,
                )
            )

    async def _commit(self, orch: Orchestration, commit: EpisodeCommit) -> None:
        consumed = set(commit.consumed)
        stored = [m.message_id for m in orch.inbox if m.stored and m.message_id in consumed]
        previous = orch.record
        commit.status_changed = (
            previous.runtime_status != commit.record.runtime_status
            or previous.custom_status != commit.record.custom_status
            or previous.execution_id != commit.record.execution_id
        )
        # The store deletes the stored messages it consumed; the outbox stays in memory.
        await self.store.commit(dataclasses.replace(commit, consumed=stored, outbox=[]))
        orch.record = commit.record
        if commit.new_execution:
            self.instances.timers.cancel_instance(commit.record.instance_id)
            orch.planner = Planner(commit.record.instance_id, commit.record.execution_id)
            orch.history.clear()
        else:
            orch.history.extend(commit.new_events)
        orch.inbox = [m for m in orch.inbox if m.message_id not in consumed]
        await self.routing.send(commit.record.instance_id, commit.outbox)
        if commit.record.runtime_status.is_terminal:
            self.instances.finished.remember(commit.record)
            self.instances.evict(orch)
        self.instances.committed(commit.record.instance_id)


def within_limits(outcome: Outcome | None, custom_status: str | None) -> Outcome | None:
    """The episode's outcome, turned into a failure where a payload passes the runtime's limits."""
    if custom_status is not None and len(custom_status) > MAX_CUSTOM_STATUS_CHARS:
        return Outcome(
            "Failed",
            error=f"the custom status is {len(custom_status):,} characters of JSON; the runtime "
            f"allows at most {MAX_CUSTOM_STATUS_CHARS:,} (16 KB of UTF-16)",
        )
    if outcome is None:
        return None
    if outcome.status == "Completed":
        output = to_json_text(outcome.output)
        if output is not None and len(output) > MAX_PAYLOAD_CHARS:
            return Outcome("Failed", error=payload_too_large("output", len(output)))
    if outcome.status == "ContinuedAsNew":
        text = outcome.continue_input
        if text is not None and len(text) > MAX_PAYLOAD_CHARS:
            return Outcome("Failed", error=payload_too_large("new input", len(text)))
    return outcome
