"""The planner from hand-built actions and histories: the task-id sequence the SDK expects,
which events an episode sees, and what it rebuilds after a restart. No host, no I/O."""

from datetime import UTC, datetime, timedelta

from devhost.engine.planner import Planner
from devhost.engine.replay import ReplayResult
from devhost.taskhub.history import (
    CARRIED_OVER,
    EventType,
    event,
    event_raised,
    execution_started,
    format_time,
)
from devhost.taskhub.model import Message

T0 = datetime(2026, 1, 1, tzinfo=UTC)
STARTED = execution_started(T0, "Orchestrator", "inst", "exec", None)


# -- named constructors for the SDK's actions and the host's events ------------------------------


def activity(name: str, input_: str | None = None) -> dict:
    return {"actionType": 0, "functionName": name, "input": input_}


def with_retry(name: str, first_ms: int = 1000, attempts: int = 3) -> dict:
    options = {"firstRetryIntervalInMilliseconds": first_ms, "maxNumberOfAttempts": attempts}
    return {"actionType": 1, "functionName": name, "input": None, "retryOptions": options}


def child(name: str, instance_id: str | None = None) -> dict:
    return {"actionType": 2, "functionName": name, "input": None, "instanceId": instance_id}


def timer(at: datetime, canceled: bool = False) -> dict:
    return {"actionType": 5, "fireAt": format_time(at), "isCanceled": canceled}


def wait(name: str) -> dict:
    return {"actionType": 6, "externalEventName": name, "reason": "ExternalEvent"}


def when_all(*actions: dict) -> dict:
    return {"actionType": 12, "compoundActions": list(actions)}


def when_any(*actions: dict) -> dict:
    return {"actionType": 11, "compoundActions": list(actions)}


def completed(task_id: int) -> dict:
    return event(EventType.TaskCompleted, T0, TaskScheduledId=task_id, Result='"ok"')


def failed(task_id: int) -> dict:
    return event(EventType.TaskFailed, T0, TaskScheduledId=task_id, Reason="no", Details="no")


def fired(timer_id: int) -> dict:
    return event(EventType.TimerFired, T0, TimerId=timer_id, FireAt=format_time(T0))


def raised(name: str) -> dict:
    return event(EventType.EventRaised, T0, Name=name, Input='"x"')


def message(evt: dict, message_id: str, execution_id: str | None = "exec") -> Message:
    return Message(message_id, "inst", evt, execution_id)


def scheduled(plan) -> list[tuple[str, int, str | None]]:
    """The new scheduling events of a plan as (kind, task id, name)."""
    return [(EventType(e["EventType"]).name, e["EventId"], e.get("Name")) for e in plan.new_events]


def started_planner() -> Planner:
    planner = Planner("inst", "exec")
    planner.select([message(STARTED, "start")])
    return planner


# -- the task-id sequence ---------------------------------------------------------------------


def test_tasks_are_numbered_in_the_order_the_sdk_yields_them_across_episodes():
    planner = started_planner()
    first = planner.plan(ReplayResult([activity("A")]), T0, [STARTED])
    assert scheduled(first) == [("TaskScheduled", 0, "A")]
    fan_out = when_all(activity("B"), timer(T0 + timedelta(minutes=1)), activity("C"))
    second = planner.plan(ReplayResult([activity("A"), fan_out]), T0, [completed(0)])
    assert scheduled(second) == [
        ("TaskScheduled", 1, "B"),
        ("TimerCreated", 2, None),
        ("TaskScheduled", 3, "C"),
    ]
    assert [task_id for task_id, _ in second.work.activities] == [1, 3]
    assert second.work.timers == [(2, T0 + timedelta(minutes=1))]


def test_waiting_for_an_event_takes_no_task_id():
    planner = started_planner()
    plan = planner.plan(ReplayResult([when_any(wait("Go"), activity("A"))]), T0, [STARTED])
    assert scheduled(plan) == [("TaskScheduled", 0, "A")]
    assert planner.waiting_on().events == ["Go"]


def test_a_retry_takes_the_next_ids_for_its_timer_and_its_new_attempt():
    planner = started_planner()
    actions = [when_all(activity("A"), with_retry("Flaky", first_ms=5000))]
    assert scheduled(planner.plan(ReplayResult(actions), T0, [STARTED])) == [
        ("TaskScheduled", 0, "A"),
        ("TaskScheduled", 1, "Flaky"),
    ]
    failure = planner.plan(ReplayResult(actions), T0, [completed(0), failed(1)])
    assert scheduled(failure) == [("TimerCreated", 2, None)]
    assert failure.new_events[0]["FireAt"] == format_time(T0 + timedelta(seconds=5))
    attempt = planner.plan(ReplayResult(actions), T0, [fired(2)])
    assert scheduled(attempt) == [("TaskScheduled", 3, "Flaky")]
    assert attempt.new_events[0]["Attempt"] == 2
    after = planner.plan(ReplayResult([*actions, activity("B")]), T0, [completed(3)])
    assert scheduled(after) == [("TaskScheduled", 4, "B")]


def test_the_last_attempt_failing_schedules_no_further_retry():
    planner = started_planner()
    actions = [with_retry("Flaky", attempts=2)]
    planner.plan(ReplayResult(actions), T0, [STARTED])
    planner.plan(ReplayResult(actions), T0, [failed(0)])  # timer 1
    planner.plan(ReplayResult(actions), T0, [fired(1)])  # attempt 2, task 2
    timer_of_last = planner.plan(ReplayResult(actions), T0, [failed(2)])
    assert scheduled(timer_of_last) == [("TimerCreated", 3, None)]
    assert scheduled(planner.plan(ReplayResult(actions), T0, [fired(3)])) == []


def test_sub_orchestrations_keep_a_given_id_and_get_one_from_parent_and_task_otherwise():
    planner = started_planner()
    plan = planner.plan(ReplayResult([when_all(child("C", "named"), child("C"))]), T0, [STARTED])
    ids = [(e["EventId"], e["InstanceId"], e.get("GeneratedId")) for e in plan.new_events]
    assert ids == [(0, "named", None), (1, "inst:0001", True)]
    assert [task.target for _, task in plan.work.children] == ["named", "inst:0001"]


def test_a_canceled_timer_is_reported_once_and_leaves_the_open_tasks():
    planner = started_planner()
    deadline = T0 + timedelta(minutes=2)
    planner.plan(ReplayResult([when_any(wait("Go"), timer(deadline))]), T0, [STARTED])
    assert planner.waiting_on().timers == [(0, deadline)]
    canceled = [when_any(wait("Go"), timer(deadline, canceled=True))]
    assert planner.plan(ReplayResult(canceled), T0, [raised("Go")]).work.canceled_timers == [0]
    assert planner.waiting_on().timers == []


# -- which events an episode sees ---------------------------------------------------------------


def test_an_event_waits_in_the_inbox_until_the_orchestrator_waits_for_it():
    planner = started_planner()
    planner.plan(ReplayResult([activity("A")]), T0, [STARTED])
    inbox = [message(raised("Go"), "go", None)]
    assert planner.select(inbox).events == [] and planner.select(inbox).consumed == []
    planner.plan(ReplayResult([activity("A"), wait("Go")]), T0, [completed(0)])
    selection = planner.select(inbox)
    assert selection.events == [inbox[0].event] and selection.consumed == ["go"]


def test_a_retry_step_is_delivered_last_and_alone():
    planner = started_planner()
    actions = [when_all(with_retry("F"), with_retry("G"), activity("A"))]
    planner.plan(ReplayResult(actions), T0, [STARTED])
    inbox = [message(failed(0), "f"), message(failed(1), "g"), message(completed(2), "a")]
    selection = planner.select(inbox)
    assert selection.events == [completed(2), failed(0)]
    assert selection.consumed == ["a", "f"]


def test_duplicates_and_results_of_an_older_execution_are_consumed_unseen():
    planner = started_planner()
    planner.plan(ReplayResult([activity("A")]), T0, [STARTED])
    inbox = [
        message(completed(7), "unknown-task"),
        message(completed(0), "old", execution_id="older"),
        message(STARTED, "start-again", execution_id="another"),
    ]
    selection = planner.select(inbox)
    assert selection.events == []
    assert sorted(selection.consumed) == ["old", "start-again", "unknown-task"]


def test_two_results_for_one_task_in_one_inbox_deliver_the_first_only():
    """After a restart a finished child's outcome can be handed over twice (by the child and by
    the parent's recovery); history must record it once."""
    planner = started_planner()
    planner.plan(ReplayResult([child("Child", "kid")]), T0, [STARTED])
    outcome = event(EventType.SubOrchestrationInstanceCompleted, T0, TaskScheduledId=0, Result="1")
    selection = planner.select([message(outcome, "first"), message(dict(outcome), "second")])
    assert selection.events == [outcome]
    assert selection.consumed == ["first", "second"]


# -- after a restart ----------------------------------------------------------------------------


def test_rebuilding_from_history_restores_the_sequence_and_the_open_tasks():
    due = T0 + timedelta(hours=1)
    history = [
        event(EventType.OrchestratorStarted, T0),
        STARTED,
        event(EventType.TaskScheduled, T0, 0, Name="A", Input=None),
        event(EventType.OrchestratorCompleted, T0),
        event(EventType.OrchestratorStarted, T0),
        completed(0),
        event(EventType.TimerCreated, T0, 1, FireAt=format_time(due), Position=[1, 0]),
        event(EventType.TaskScheduled, T0, 2, Name="B", Input='"b"'),
        event(EventType.OrchestratorCompleted, T0),
    ]
    planner = Planner("inst", "exec")
    planner.rebuild(history, None)
    assert planner.next_id == 3 and planner.started
    work = planner.pending_work()
    assert work.timers == [(1, due)]
    assert [(task_id, task.name, task.input) for task_id, task in work.activities] == [
        (2, "B", '"b"')
    ]


# -- events carried over into a continue-as-new --------------------------------------------------


def numbered(name: str, value: int, carried: bool = False) -> dict:
    return event_raised(T0, name, str(value), carried_from="earlier" if carried else None)


def test_only_a_carried_over_event_has_the_marker_so_1x_events_are_unchanged():
    assert CARRIED_OVER not in event_raised(T0, "item", "1")
    assert event_raised(T0, "item", "1", carried_from="exec")[CARRIED_OVER] == "exec"


def test_the_execution_that_carried_an_event_over_leaves_it_for_the_next():
    """Carried events are raised while the last episode runs, before its commit: after a crash
    that episode runs again, with the carried copies in the inbox, and must not take them."""
    carried = event_raised(T0, "item", "2", carried_from="exec")
    inbox = [
        message(STARTED, "start"),
        message(numbered("item", 1), "item-1", None),
        message(carried, "carried-2", None),
    ]
    carrier = Planner("inst", "exec")
    carrier.plan(ReplayResult(actions=[], incremental=True), T0, [])
    selection = carrier.select(inbox)
    assert [e.get("Input") for e in selection.events] == [None, "1"]
    assert "carried-2" not in selection.consumed
    next_start = execution_started(T0, "Orchestrator", "inst", "exec-2", None)
    successor = Planner("inst", "exec-2")
    successor.plan(ReplayResult(actions=[], incremental=True), T0, [])
    inbox = [message(next_start, "start-2", "exec-2"), message(carried, "carried-2", None)]
    assert [e.get("Input") for e in successor.select(inbox).events] == [None, "2"]


def test_carried_over_events_come_right_after_the_start_before_events_raised_meanwhile():
    planner = Planner("inst", "exec")
    planner.plan(ReplayResult(actions=[], incremental=True), T0, [])
    inbox = [
        message(STARTED, "start"),
        message(numbered("item", 3), "late", None),
        message(numbered("item", 1, carried=True), "kept-1", None),
        message(numbered("item", 2, carried=True), "kept-2", None),
    ]
    events = planner.select(inbox).events
    assert [e.get("Input") for e in events] == [None, "1", "2", "3"]
    assert events[0]["EventType"] == EventType.ExecutionStarted


def test_without_carried_over_events_the_arrival_order_stays():
    planner = Planner("inst", "exec")
    planner.plan(ReplayResult(actions=[], incremental=True), T0, [])
    inbox = [message(STARTED, "start")] + [
        message(numbered("item", value), f"m{value}", None) for value in (3, 1, 2)
    ]
    assert [e.get("Input") for e in planner.select(inbox).events] == [None, "3", "1", "2"]
