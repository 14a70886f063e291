"""Control operations, failure logs and payload sizes as the real runtime has them."""

import logging

import pytest

from devhost.taskhub.rules import MAX_CUSTOM_STATUS_CHARS, MAX_PAYLOAD_CHARS

WEBHOOKS = "/runtime/webhooks/durabletask"
UNEXPECTED_500 = "^The operation failed with an unexpected status code 500$"


def start(host, name, input_=None, instance_id=None):
    return host.run(host.client.start_new(name, instance_id, input_))


def test_suspending_a_suspended_instance_is_a_500_with_the_runtimes_sentence(host):
    instance_id = start(host, "Waiter")
    host.idle()
    code, _, _ = host.http("POST", f"{WEBHOOKS}/instances/{instance_id}/suspend")
    assert code == 202
    code, _, body = host.http("POST", f"{WEBHOOKS}/instances/{instance_id}/suspend")
    assert code == 500
    assert body["Message"] == "Cannot suspend orchestration instance in the Suspended state."
    with pytest.raises(Exception, match=UNEXPECTED_500):
        host.run(host.client.suspend(instance_id, "again"))
    host.idle()
    assert host.status(instance_id).runtime_status.value == "Suspended"


def test_resuming_a_running_instance_is_a_500_with_the_runtimes_sentence(host):
    instance_id = start(host, "Waiter")
    host.idle()
    code, _, body = host.http("POST", f"{WEBHOOKS}/instances/{instance_id}/resume")
    assert code == 500
    assert body["Message"] == "Cannot resume orchestration instance in the Running state."
    with pytest.raises(Exception, match=UNEXPECTED_500):
        host.run(host.client.resume(instance_id, "not suspended"))
    host.http("POST", f"{WEBHOOKS}/instances/{instance_id}/suspend")
    code, _, _ = host.http("POST", f"{WEBHOOKS}/instances/{instance_id}/resume")
    assert code == 202
    host.run(host.client.raise_event(instance_id, "Never", "done"))
    assert host.wait_for(instance_id).output == "done"


def test_purging_a_running_instance_deletes_nothing_and_says_why(host):
    instance_id = start(host, "Waiter")
    host.idle()
    assert host.run(host.client.purge_instance_history(instance_id)).instances_deleted == 0
    code, _, body = host.http("DELETE", f"{WEBHOOKS}/instances/{instance_id}")
    assert code == 404 and body == {
        "instancesDeleted": 0,
        "Message": f"Only a finished instance can be purged: instance '{instance_id}' is "
        "Running; nothing was deleted.",
    }
    code, _, body = host.http("DELETE", f"{WEBHOOKS}/instances?createdTimeFrom=2000-01-01")
    assert code == 404 and "Only a finished instance can be purged" in body["Message"]
    code, _, body = host.http("DELETE", f"{WEBHOOKS}/instances/never-started")
    assert code == 404 and body == {"instancesDeleted": 0}
    assert host.status(instance_id).runtime_status.value == "Running"


def test_rewind_refuses_live_and_completed_instances(host):
    live = start(host, "Waiter")
    done = start(host, "Sequence", "Oslo")
    host.wait_for(done)
    code, _, body = host.http("POST", f"{WEBHOOKS}/instances/{live}/rewind")
    assert code == 409 and "only supported on failed" in body["Message"]
    code, _, _ = host.http("POST", f"{WEBHOOKS}/instances/{done}/rewind")
    assert code == 410
    code, _, _ = host.http("POST", f"{WEBHOOKS}/instances/{done}/terminate")
    assert code == 410


def test_failures_are_logged_as_the_host_logs_them(host, caplog):
    caplog.set_level(logging.ERROR, logger="devhost.engine")
    failing = start(host, "ActivityFails")
    host.wait_for(failing)
    counter = start(host, "TallyUser", "logged")
    host.wait_for(counter)
    lines = [r.getMessage() for r in caplog.records]
    assert any(
        line.startswith(f"{failing}: Function 'Fail (Activity)' failed with an error. Reason: ")
        and "ValueError: cannot handle this" in line
        and "TaskEventId: 0" in line
        for line in lines
    ), lines
    assert any(
        line.startswith(f"{failing}: Function 'ActivityFails (Orchestrator)' failed")
        for line in lines
    )
    assert any(
        "Function 'tally (Entity)' failed 'explode' operation" in line
        and "the counter exploded" in line
        for line in lines
    ), lines


def test_a_five_megabyte_output_completes(host):
    size = 5 * 1024 * 1024
    instance_id = start(host, "BigOutput", size)
    status = host.wait_for(instance_id, timeout=60)
    assert status.runtime_status.value == "Completed"
    assert status.output == "x" * size
    history = host.run(
        host.client.get_status(instance_id, show_history=True, show_history_output=True)
    )
    assert history.historyEvents[1]["Result"] == "x" * size


def test_an_activity_result_past_the_limit_fails_the_instance_clearly(host):
    instance_id = start(host, "BigOutput", MAX_PAYLOAD_CHARS + 1)
    status = host.wait_for(instance_id, timeout=60)
    assert status.runtime_status.value == "Failed"
    assert "result of activity 'Big'" in status.output
    assert "devhost keeps at most" in status.output


def test_a_custom_status_past_16_kb_fails_the_instance(host):
    fits = start(host, "BigStatus", MAX_CUSTOM_STATUS_CHARS - 2)
    too_big = start(host, "BigStatus", MAX_CUSTOM_STATUS_CHARS)
    host.idle()
    assert host.status(fits).runtime_status.value == "Running"
    status = host.wait_for(too_big)
    assert status.runtime_status.value == "Failed"
    assert "16 KB of UTF-16" in status.output
