"""The work an episode asks for: activities in the runner, timers on the clock, and (after a
restart) children; each result goes back to its instance as a message.

Work is dispatched the moment it becomes ready: an activity's result or a timer's firing puts a
message in the instance's inbox and schedules the instance; an instance already in an episode
picks the message up in its next one.
"""

from __future__ import annotations

import functools
import logging
from datetime import datetime

from ..app.app_index import FunctionIndex
from ..app.durable_http import DurableHttp
from ..app.invoke import ActivityOutcome, failed_activity
from ..clock import Clock
from ..taskhub.model import InstanceRecord
from ..taskhub.rules import MAX_PAYLOAD_CHARS, payload_too_large
from .background import Background
from .instances import Orchestration
from .messages import activity_result_message, failure_line, timer_fired_message
from .planner import BUILTIN_HTTP_ACTIVITY, PendingTask, Work
from .routing import Routing
from .timers import TimerKey, TimerService
from .user_code import ActivityTask, UserCode

log = logging.getLogger("devhost.engine")


class Dispatch:
    """Starts activities and arms timers for instances, and hands back what they give."""

    def __init__(
        self,
        index: FunctionIndex,
        clock: Clock,
        runner: UserCode,
        timers: TimerService,
        background: Background,
        routing: Routing,
    ) -> None:
        self.index = index
        self.clock = clock
        self.runner = runner
        self.timers = timers
        self.background = background
        self.routing = routing
        # context.call_http: made here, as the extension makes it (background idles while a
        # request waits on the clock to poll again)
        self.http = DurableHttp(clock, on_wait=background.release, on_wake=background.hold)

    def start_work(self, orch: Orchestration, work: Work, ensure_children: bool) -> None:
        record = orch.record
        for task_id, task in work.activities:
            self.start_activity(record, task_id, task)
        for task_id, due in work.timers:
            self.timers.arm((record.instance_id, record.execution_id, task_id), due)
        for task_id in work.canceled_timers:
            self.timers.cancel((record.instance_id, record.execution_id, task_id))
        if ensure_children:
            for task_id, task in work.children:
                self.background.spawn(self.routing.ensure_child(orch, task_id, task))

    def resume(self, orch: Orchestration) -> None:
        """After a restart or a rewind: run open activities again, re-arm timers, start children."""
        self.start_work(orch, orch.planner.pending_work(), ensure_children=True)

    def start_activity(self, record: InstanceRecord, task_id: int, task: PendingTask) -> None:
        instance_id, execution_id = record.instance_id, record.execution_id
        name = task.name or ""
        self.background.hold()
        done = functools.partial(self._activity_done, instance_id, execution_id, task_id, name)
        if name == BUILTIN_HTTP_ACTIVITY:
            self.http.start(task.input, done)
            return
        if name not in self.index.activities:
            reason = LookupError(
                f"The function '{name}' doesn't exist, is disabled, or is not an activity function."
            )
            self._activity_done(
                instance_id, execution_id, task_id, name, failed_activity(name, reason)
            )
            return
        origin = ActivityTask(instance_id, execution_id, task_id, task.version)
        self.runner.start_activity(name, task.input, done, record.created_time, origin)

    def _activity_done(
        self,
        instance_id: str,
        execution_id: str,
        task_id: int,
        name: str,
        outcome: ActivityOutcome,
    ) -> None:
        if outcome.ok and outcome.result is not None and len(outcome.result) > MAX_PAYLOAD_CHARS:
            message = payload_too_large(f"result of activity '{name}'", len(outcome.result))
            outcome = ActivityOutcome(ok=False, reason=message, details=message)
        if not outcome.ok:
            log.error(
                "%s\n%s",
                failure_line(instance_id, name, "Activity", outcome.reason or "", task_id),
                outcome.details,
            )
        now = self.clock.now()
        self.routing.deliver_result(
            activity_result_message(now, instance_id, execution_id, task_id, outcome)
        )
        self.background.release()

    def timer_fired(self, key: TimerKey, due: datetime) -> None:
        instance_id, execution_id, timer_id = key
        message = timer_fired_message(self.clock.now(), instance_id, execution_id, timer_id, due)
        self.background.spawn(self.routing.deliver(message))
