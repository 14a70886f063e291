"""The dashboard's timeline, from hand-built histories."""

from datetime import UTC, datetime, timedelta

from devhost.dashboard.timeline import axis, bars
from devhost.taskhub.history import EventType, event, execution_started, format_time

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_each_task_is_a_bar_from_its_schedule_to_its_result():
    history = [
        event(EventType.OrchestratorStarted, at(0)),
        execution_started(at(0), "Order", "o-1", "e-1", None),
        event(EventType.TaskScheduled, at(0), 0, Name="Reserve"),
        event(EventType.SubOrchestrationInstanceCreated, at(0), 1, Name="Ship", InstanceId="s-1"),
        event(EventType.TimerCreated, at(0), 2, FireAt=format_time(at(60))),
        event(EventType.OrchestratorCompleted, at(1)),
        event(EventType.TaskFailed, at(5), TaskScheduledId=0, Reason="sold out"),
        event(EventType.SubOrchestrationInstanceCompleted, at(7), TaskScheduledId=1),
        event(EventType.OrchestratorCompleted, at(8)),
        event(EventType.EventRaised, at(20), Name="Paid"),
        event(EventType.TimerFired, at(60), TimerId=2),
        event(EventType.ExecutionCompleted, at(61), OrchestrationStatus="Completed"),
    ]
    drawn = [(b["kind"], b["name"], b["start"], b["end"], b["status"]) for b in bars(history)]
    assert drawn == [
        ("generation", "Order", format_time(at(0)), format_time(at(61)), "completed"),
        ("activity", "Reserve", format_time(at(0)), format_time(at(5)), "failed"),
        ("suborchestration", "Ship", format_time(at(0)), format_time(at(7)), "completed"),
        ("timer", "", format_time(at(0)), format_time(at(60)), "completed"),
        # an event is awaited from the end of the episode before it arrived
        ("event", "Paid", format_time(at(8)), format_time(at(20)), "completed"),
    ]
    assert bars(history)[2]["instanceId"] == "s-1"


def test_open_work_and_awaited_events_are_open_bars():
    history = [
        event(EventType.OrchestratorStarted, at(0)),
        execution_started(at(0), "Approval", "a-1", "e-1", None),
        event(EventType.TimerCreated, at(0), 0, FireAt=format_time(at(120))),
        event(EventType.OrchestratorCompleted, at(1)),
    ]
    timer, event_bar = bars(history, awaited=["Approved"])[1:]
    assert (timer["status"], timer["end"], timer["due"]) == ("open", None, format_time(at(120)))
    assert (event_bar["name"], event_bar["start"], event_bar["status"]) == (
        "Approved",
        format_time(at(1)),
        "open",
    )


def test_a_generation_that_continued_as_new_ends_at_its_last_event():
    history = [
        event(EventType.OrchestratorStarted, at(0)),
        execution_started(at(0), "Loop", "l-1", "e-1", None),
        event(EventType.OrchestratorCompleted, at(1)),
        event(EventType.OrchestratorStarted, at(9)),
        event(EventType.EventRaised, at(9), Name="Ping"),
    ]
    generation = bars(history, continued=True)[0]
    assert (generation["end"], generation["status"]) == (format_time(at(9)), "continued")


def test_a_retry_timer_names_the_task_and_the_attempt_it_waits_to_repeat():
    history = [
        event(EventType.OrchestratorStarted, at(0)),
        execution_started(at(0), "Order", "o-1", "e-1", None),
        event(EventType.TaskScheduled, at(0), 0, Name="Charge"),
        event(EventType.TaskFailed, at(1), TaskScheduledId=0, Reason="busy"),
        event(
            EventType.TimerCreated,
            at(1),
            1,
            FireAt=format_time(at(6)),
            Retry={"Of": 0, "Name": "Charge", "Attempt": 1},
        ),  # fmt: skip
    ]
    timer = bars(history)[-1]
    assert (timer["kind"], timer["name"], timer["retry"]) == ("timer", "Charge", 1)


def work_beside_a_day_long_timer() -> list[dict]:
    history = [
        event(EventType.OrchestratorStarted, at(0)),
        execution_started(at(0), "Order", "o-1", "e-1", None),
        event(EventType.TaskScheduled, at(0), 0, Name="Reserve"),
        event(EventType.OrchestratorCompleted, at(0)),
        event(EventType.TaskCompleted, at(2), TaskScheduledId=0),
        event(EventType.TaskScheduled, at(2), 1, Name="Charge"),
        event(EventType.TaskCompleted, at(5), TaskScheduledId=1),
        event(EventType.TimerCreated, at(5), 2, FireAt=format_time(at(86_405))),
    ]
    return bars(history)


def test_a_day_long_wait_beside_seconds_of_work_is_a_narrow_break():
    segments = axis(work_beside_a_day_long_timer(), format_time(at(30)))
    assert [(s["start"], s["end"], s["break"]) for s in segments] == [
        (format_time(at(0)), format_time(at(5)), False),
        # idle from the timer's creation to its due time: now (30 s) falls inside the break
        (format_time(at(5)), format_time(at(86_405)), True),
    ]
    work, wait = segments
    assert (work["left"], work["width"], wait["left"], wait["width"]) == (0, 94, 94, 6)
    # so the 2 s activity takes 2/5 of the work's 94%, not 2/86405 of the axis


def test_work_spread_evenly_has_a_linear_axis():
    history = [
        event(EventType.OrchestratorStarted, at(0)),
        execution_started(at(0), "Order", "o-1", "e-1", None),
        event(EventType.TimerCreated, at(0), 0, FireAt=format_time(at(600))),
        event(EventType.TimerFired, at(600), TimerId=0),
        event(EventType.TaskScheduled, at(600), 1, Name="Ship"),
        event(EventType.TaskCompleted, at(1200), TaskScheduledId=1),
        event(EventType.ExecutionCompleted, at(1200), OrchestrationStatus="Completed"),
    ]
    segments = axis(bars(history), format_time(at(5000)))  # a finished instance: no "now"
    assert [(s["left"], s["width"], s["break"]) for s in segments] == [(0, 100, False)]
    assert segments[0]["end"] == format_time(at(1200))


def test_an_axis_of_one_moment_is_empty():
    only = bars([execution_started(at(0), "Order", "o-1", "e-1", None)])
    assert axis(only, format_time(at(0))) == []
