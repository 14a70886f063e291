"""The harness's public surface: apps built in a test, time, waits, activities, entities."""

import threading
import time
from datetime import timedelta
from pathlib import Path

import azure.durable_functions as df
import azure.functions as func
import pytest

from devhost.taskhub.history import parse_time
from devhost.testing import ActivityError, DurableHarness, EntityOperationError

PATTERNS_APP = Path(__file__).parent / "apps" / "patterns"
gate = threading.Event()

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.activity_trigger(input_name="name")
def Gate(name: str) -> str:
    """Blocks until the test opens the gate, so the test can see it in flight."""
    gate.wait(10)
    return f"through {name}"


@app.orchestration_trigger(context_name="context")
def Ticks(context: df.DurableOrchestrationContext):
    """Three one-minute timers in a row: each is created when the one before fires."""
    times = []
    for _ in range(3):
        yield context.create_timer(context.current_utc_datetime + timedelta(minutes=1))
        times.append(context.current_utc_datetime.isoformat())
    return times


@app.orchestration_trigger(context_name="context")
def Hangs(context: df.DurableOrchestrationContext):
    return (yield context.wait_for_external_event("Never"))


@app.orchestration_trigger(context_name="context")
def Waits(context: df.DurableOrchestrationContext):
    child = yield context.call_sub_orchestrator("Hangs", None, f"{context.instance_id}-child")
    return child


@app.orchestration_trigger(context_name="context")
def Gated(context: df.DurableOrchestrationContext):
    return (yield context.call_activity(Gate, "the gate"))


@pytest.fixture(scope="module")
def host():
    with DurableHarness.from_app(app) as harness:
        yield harness


def test_an_app_built_in_the_test_file_runs(host):
    instance_id = host.start("Ticks", instance_id="ticks")
    assert instance_id == "ticks"
    assert host.status(instance_id).runtime_status.value == "Running"


def test_advance_fires_timers_created_on_the_way_each_at_its_time(host):
    start = host.clock.now()
    instance_id = host.start("Ticks")
    host.advance(timedelta(minutes=2), seconds=59)
    assert host.waiting_on(instance_id)["timers"], "the third timer has not fired yet"
    host.advance(seconds=1)
    fired = [parse_time(t) for t in host.wait_for(instance_id).output]
    assert [round((t - start).total_seconds()) for t in fired] == [60, 120, 180]


def test_waiting_on_lists_timers_events_and_children(patterns):
    approval = patterns.start("Approval")
    waiting = patterns.waiting_on(approval)
    assert waiting["events"] == ["Approval"]
    (timer,) = waiting["timers"]
    due = parse_time(timer["due"])
    assert due - patterns.clock.now() == timedelta(minutes=2)
    assert waiting["activities"] == [] and waiting["suborchestrations"] == []
    patterns.raise_event(approval, "Approval", "yes")
    patterns.wait_for(approval)
    assert patterns.waiting_on(approval) == {
        "timers": [],
        "events": [],
        "activities": [],
        "suborchestrations": [],
        "entities": [],
    }


def test_waiting_on_shows_sub_orchestrations_and_activities_in_flight(host):
    parent = host.start("Waits", instance_id="parent")
    assert host.waiting_on(parent)["suborchestrations"] == [
        {"task": 0, "name": "Hangs", "instance_id": "parent-child"}
    ]
    assert host.waiting_on("parent-child")["events"] == ["Never"]
    gate.clear()
    gated = host.start("Gated")
    deadline = time.monotonic() + 10
    while not (in_flight := host.waiting_on(gated, settle=False)["activities"]):
        assert time.monotonic() < deadline, "the activity never started"
    assert in_flight == [{"task": 0, "name": "Gate"}]
    gate.set()
    assert host.wait_for(gated).output == "through the gate"


def test_terminate_ends_a_waiting_instance_with_the_reason(host):
    instance_id = host.start("Hangs")
    host.idle()
    host.terminate(instance_id, "no longer needed")
    status = host.wait_for(instance_id)
    assert status.runtime_status.value == "Terminated"
    assert status.output == "no longer needed"


@pytest.fixture
def patterns():
    with DurableHarness(PATTERNS_APP) as harness:
        yield harness


def test_an_activity_runs_alone_through_the_converters(patterns):
    assert patterns.run_activity("Hello", "Ada") == "Hello Ada!"
    assert patterns.run_activity("Double", 21) == 42
    with pytest.raises(ActivityError, match="Activity function 'Fail' failed: ValueError"):
        patterns.run_activity("Fail", "this")
    with pytest.raises(KeyError, match="no activity named 'Nope'"):
        patterns.run_activity("Nope")


def test_entities_are_called_signalled_and_read(patterns):
    counter = df.EntityId("Tally", "harness")
    assert patterns.entity_state(counter) is None
    patterns.signal_entity(counter, "add", 2)
    patterns.call_entity(counter, "add", 3)
    assert patterns.call_entity(counter, "get") == 5
    with pytest.raises(EntityOperationError, match="the counter exploded"):
        patterns.call_entity(counter, "explode")
    assert patterns.entity_state(counter) == {"total": 5, "seen": [2, 3]}


def test_history_is_json_ready_with_the_ids_the_sdk_sees(patterns):
    instance_id = patterns.start("Sequence", "Oslo")
    patterns.wait_for(instance_id)
    history = patterns.history(instance_id)
    scheduled = [(e["EventId"], e["Name"]) for e in history if e["EventType"] == 4]
    completed = [e["TaskScheduledId"] for e in history if e["EventType"] == 5]
    assert scheduled == [(0, "Hello"), (1, "Hello"), (2, "Hello")]
    assert completed == [0, 1, 2]


def test_wait_for_fails_at_once_naming_the_retry_timer_and_the_sub_orchestration(patterns, host):
    retry = patterns.start("RetryExhausted", instance_id="retry")
    with pytest.raises(AssertionError) as failed:
        patterns.wait_for(retry)
    assert str(failed.value) == (
        "retry is Running, not Canceled, Completed, Failed, Terminated: "
        "waiting on the retry timer due in 1 s: call advance()"
    )
    patterns.advance(seconds=5)
    assert patterns.wait_for(retry).output.startswith("gave up:")
    parent = host.start("Waits", instance_id="waits")
    with pytest.raises(
        AssertionError,
        match=(
            "waits is Running, not .*: waiting on sub-orchestration 'Hangs' \\(waits-child\\), "
            "waiting on the external event 'Never': call raise_event\\(\\)"
        ),
    ):
        host.wait_for(parent)
