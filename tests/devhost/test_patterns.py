"""Every orchestration pattern, driven through the SDK's own client on the harness."""

import sys
from datetime import datetime

import pytest


def attempts() -> dict:
    """The patterns app's call counter, in the module the host loaded."""
    return sys.modules["function_app"].attempts


def start(host, name, input_=None, instance_id=None):
    return host.run(host.client.start_new(name, instance_id, input_))


def test_activity_chain_returns_each_result_in_order(host):
    status = host.wait_for(start(host, "Sequence", "Lima"))
    assert status.runtime_status.value == "Completed"
    assert status.output == ["Hello Lima!", "Hello Lima North!", "Hello Lima South!"]


def test_fan_out_fan_in_collects_every_result(host):
    status = host.wait_for(start(host, "FanOut", 200))
    assert status.output == sum(2 * i for i in range(200))


def test_fan_out_hands_ready_results_to_one_episode(host):
    instance_id = start(host, "FanOut", 300)
    host.wait_for(instance_id)
    history = host.history(instance_id)
    episodes = sum(1 for e in history if e["EventType"] == 12)
    assert episodes < 30, f"{episodes} episodes for 300 results"


def test_durable_timer_fires_when_the_virtual_clock_reaches_it(host):
    instance_id = start(host, "Timer", 120)
    host.advance(seconds=119)
    assert host.status(instance_id).runtime_status.value == "Running"
    host.advance(seconds=1)
    assert host.wait_for(instance_id).output == 120.0


def test_external_event_beats_the_timer_and_cancels_it(host):
    instance_id = start(host, "Approval")
    host.idle()
    host.run(host.client.raise_event(instance_id, "Approval", {"by": "Pat"}))
    status = host.wait_for(instance_id)
    assert status.output == "approved: {'by': 'Pat'}"
    host.advance(minutes=5)
    assert all(e["EventType"] != 11 for e in host.history(instance_id)), "the timer fired"


def test_timer_wins_when_no_event_arrives(host):
    instance_id = start(host, "Approval")
    host.advance(minutes=2)
    assert host.wait_for(instance_id).output == "timed out"


def test_events_raised_before_the_wait_and_several_of_one_name_arrive_in_order(host):
    instance_id = start(host, "Collect")
    for item in ("first", "second", "third"):
        host.run(host.client.raise_event(instance_id, "Item", item))
    assert host.wait_for(instance_id).output == ["first", "second", "third"]


def test_events_raised_before_the_instance_starts_are_kept(host):
    instance_id = "early-bird"
    host.run(host.client.start_new("Collect", instance_id))
    host.run(host.client.raise_event(instance_id, "Item", 1))
    host.run(host.client.raise_event(instance_id, "Item", 2))
    host.idle()
    host.run(host.client.raise_event(instance_id, "Item", 3))
    assert host.wait_for(instance_id).output == [1, 2, 3]


def test_task_all_of_two_events(host):
    instance_id = start(host, "BothEvents")
    host.run(host.client.raise_event(instance_id, "B", "b"))
    host.idle()
    assert host.status(instance_id).runtime_status.value == "Running"
    host.run(host.client.raise_event(instance_id, "A", "a"))
    assert host.wait_for(instance_id).output == ["a", "b"]


def test_sub_orchestrations_with_given_and_generated_ids(host):
    status = host.wait_for(start(host, "Parent", instance_id="mom"))
    named, generated = status.output
    assert named == {"child": "mom-named", "parent": "mom", "value": 2}
    assert generated["parent"] == "mom" and generated["child"].startswith("mom:")
    assert generated["value"] == 4
    child = host.status("mom-named")
    assert child.runtime_status.value == "Completed"


def test_sub_orchestration_failure_reaches_the_parent(host):
    status = host.wait_for(start(host, "ParentOfFailing"))
    assert status.runtime_status.value == "Completed"
    assert "the orchestrator gave up" in status.output


def test_orchestrator_exception_fails_the_instance(host):
    status = host.wait_for(start(host, "Failing"))
    assert status.runtime_status.value == "Failed"
    assert "Orchestrator function 'Failing' failed" in status.output
    assert "the orchestrator gave up" in status.output


def test_activity_failure_fails_the_orchestration_with_its_reason(host):
    status = host.wait_for(start(host, "ActivityFails"))
    assert status.runtime_status.value == "Failed"
    assert "Activity function 'Fail' failed: ValueError: cannot handle this" in status.output


def test_activity_failure_can_be_caught(host):
    status = host.wait_for(start(host, "CatchActivity"))
    assert status.runtime_status.value == "Completed"
    assert "ValueError: cannot handle that" in status.output


def test_activity_retry_waits_on_the_engine_clock_and_succeeds(host):
    attempts().pop("retry-key", None)
    instance_id = start(host, "Retry", "retry-key")
    host.idle()
    assert attempts()["retry-key"] == 1
    host.advance(seconds=4)
    assert attempts()["retry-key"] == 1, "retried before the first retry interval passed"
    host.advance(seconds=1)
    assert attempts()["retry-key"] == 2
    host.advance(seconds=5)
    status = host.wait_for(instance_id)
    assert status.output == ["Hello before!", "retry-key succeeded on attempt 3", "Hello after!"]


def test_activity_retry_gives_up_after_the_last_attempt(host):
    instance_id = start(host, "RetryExhausted")
    host.advance(seconds=10)
    status = host.wait_for(instance_id)
    assert status.output.startswith("gave up:")
    assert "cannot handle always" in status.output


def test_sub_orchestration_retry(host):
    attempts().pop("sub-key", None)
    instance_id = start(host, "SubRetry", "sub-key")
    host.advance(seconds=10)
    status = host.wait_for(instance_id)
    assert status.output == "sub-key succeeded on attempt 3"


def test_continue_as_new_resets_history_and_carries_input_and_pending_events(host):
    instance_id = start(host, "Counter")
    for ping in ("a", "b", "c"):
        host.run(host.client.raise_event(instance_id, "Ping", ping))
    status = host.wait_for(instance_id)
    assert status.output == {"generation": 3, "pings": ["a", "b", "c"]}
    history = host.history(instance_id)
    started = [e for e in history if e["EventType"] == 0]
    assert len(started) == 1, "history was not reset"


def test_continue_as_new_keeps_history_bounded(host):
    instance_id = start(host, "Countdown", 20)
    status = host.wait_for(instance_id)
    assert status.output == "liftoff"
    assert len(host.history(instance_id)) < 10


def test_custom_status_is_visible_while_running(host):
    instance_id = start(host, "Status")
    host.idle()
    assert host.status(instance_id).custom_status == {"step": 1}
    host.run(host.client.raise_event(instance_id, "Go"))
    status = host.wait_for(instance_id)
    assert status.custom_status == {"step": 2}


def test_time_uuid_and_replay_flag_are_stable_across_replays(host):
    before = host.clock.now()
    status = host.wait_for(start(host, "Replay"))
    output = status.output
    first = datetime.fromisoformat(output["first_time"])
    assert first >= before.replace(microsecond=0)
    assert output["first_uuid"] != output["second_uuid"]
    assert output["replaying_before"] is True, "a replayed point must say it is replaying"
    assert output["replaying_after"] is False
    history = host.history(status.instance_id)
    starts = [e["Timestamp"] for e in history if e["EventType"] == 12]
    assert output["first_time"].replace("+00:00", "") in starts[0].replace("Z", "")


def test_activity_can_start_an_orchestration_with_its_client_binding(host):
    status = host.wait_for(start(host, "Starter", "Oslo"))
    child = host.wait_for(status.output)
    assert child.output[0] == "Hello Oslo!"


def test_unknown_orchestrator_is_a_clear_error(host):
    with pytest.raises(Exception, match="NoSuchThing"):
        start(host, "NoSuchThing")


def test_retries_in_parallel_with_other_tasks_keep_task_ids_in_step(host):
    attempts().pop("par", None)
    attempts().pop("par-b", None)
    instance_id = start(host, "ParallelRetry", "par")
    host.advance(seconds=5)
    status = host.wait_for(instance_id)
    assert status.output == [
        "Hello one!",
        "par succeeded on attempt 3",
        "Hello two!",
        "par-b succeeded on attempt 3",
        "Hello last!",
    ]
