"""The Durable Functions HTTP API: every method of the SDK's client, and the raw routes."""

from datetime import UTC, datetime, timedelta

import azure.durable_functions as df
import pytest

WEBHOOKS = "/runtime/webhooks/durabletask"


def start(host, name, input_=None, instance_id=None):
    return host.run(host.client.start_new(name, instance_id, input_))


def test_check_status_response_hands_out_working_urls(host):
    status, headers, body = host.http("POST", "/api/start/Sequence", "Rome")
    assert status == 202
    assert headers["Location"] == body["statusQueryGetUri"]
    assert body["statusQueryGetUri"].startswith(host.base_url)
    host.idle()
    code, _, state = host.http("GET", body["statusQueryGetUri"][len(host.base_url) :])
    assert code == 200
    assert state["runtimeStatus"] == "Completed"
    assert state["output"][0] == "Hello Rome!"
    assert state["input"] == "Rome"


def test_status_codes_follow_the_instance(host):
    instance_id = start(host, "Waiter")
    host.idle()
    code, headers, body = host.http("GET", f"{WEBHOOKS}/instances/{instance_id}")
    assert code == 202 and body["runtimeStatus"] == "Running" and "Location" in headers
    host.run(host.client.raise_event(instance_id, "Never", 5))
    host.idle()
    code, _, body = host.http("GET", f"{WEBHOOKS}/instances/{instance_id}")
    assert code == 200 and body["output"] == 5
    code, _, _ = host.http("GET", f"{WEBHOOKS}/instances/nobody-here")
    assert code == 404


def test_history_in_the_public_shape(host):
    instance_id = start(host, "Sequence", "Kyiv")
    host.wait_for(instance_id)
    status = host.run(
        host.client.get_status(instance_id, show_history=True, show_history_output=True)
    )
    events = status.historyEvents
    kinds = [e["EventType"] for e in events]
    assert kinds == [
        "ExecutionStarted",
        "TaskCompleted",
        "TaskCompleted",
        "TaskCompleted",
        "ExecutionCompleted",
    ]
    assert events[0]["FunctionName"] == "Sequence"
    assert events[1]["FunctionName"] == "Hello" and events[1]["Result"] == "Hello Kyiv!"
    assert "ScheduledTime" in events[1]
    assert events[-1]["OrchestrationStatus"] == "Completed"
    without_output = host.run(host.client.get_status(instance_id, show_history=True))
    assert "Result" not in without_output.historyEvents[1]


def test_show_input_can_be_turned_off(host):
    instance_id = start(host, "Sequence", "Quito")
    host.idle()
    _, _, body = host.http("GET", f"{WEBHOOKS}/instances/{instance_id}?showInput=false")
    assert body["input"] is None


def test_list_and_query_with_filters_and_paging(host):
    ids = [start(host, "Sequence", f"c{i}", f"city-{i}") for i in range(5)]
    waiting = start(host, "Waiter", None, "other-1")
    host.idle()
    everything = host.run(host.client.get_status_all())
    assert {s.instance_id for s in everything} >= {*ids, waiting}
    running = host.run(
        host.client.get_status_by(runtime_status=[df.OrchestrationRuntimeStatus.Running])
    )
    assert [s.instance_id for s in running] == [waiting]
    by_prefix = host.run(host.client.get_status_by(instance_id_prefix="city-"))
    assert sorted(s.instance_id for s in by_prefix) == ids
    future = host.run(
        host.client.get_status_by(created_time_from=datetime.now(UTC) + timedelta(days=1))
    )
    assert future == []
    code, headers, page = host.http("GET", f"{WEBHOOKS}/instances?top=2&instanceIdPrefix=city-")
    assert code == 200 and len(page) == 2
    token = headers["x-ms-continuation-token"]
    seen = [p["instanceId"] for p in page]
    while token:
        _, headers, page = host.http(
            "GET",
            f"{WEBHOOKS}/instances?top=2&instanceIdPrefix=city-",
            headers={"x-ms-continuation-token": token},
        )
        seen += [p["instanceId"] for p in page]
        token = headers.get("x-ms-continuation-token")
    assert sorted(seen) == ids


def test_raise_event_errors(host):
    with pytest.raises(Exception, match="No instance"):
        host.run(host.client.raise_event("missing", "Never", 1))
    instance_id = host.wait_for(start(host, "Sequence")).instance_id
    with pytest.raises(Exception, match="gone"):
        host.run(host.client.raise_event(instance_id, "Never", 1))
    code, _, _ = host.http("POST", f"{WEBHOOKS}/instances/{instance_id}/raiseEvent/X", {"a": 1})
    assert code == 410


def test_terminate(host):
    instance_id = start(host, "Waiter")
    host.idle()
    host.run(host.client.terminate(instance_id, "enough"))
    status = host.wait_for(instance_id)
    assert status.runtime_status.value == "Terminated"
    assert status.output == "enough"
    host.run(host.client.terminate(instance_id, "again"))  # 410 is not an error for the SDK
    with pytest.raises(Exception, match="No instance"):
        host.run(host.client.terminate("missing", "x"))


def test_suspend_holds_events_until_resume(host):
    instance_id = start(host, "Waiter")
    host.idle()
    host.run(host.client.suspend(instance_id, "pause"))
    host.idle()
    assert host.status(instance_id).runtime_status.value == "Suspended"
    host.run(host.client.raise_event(instance_id, "Never", "late"))
    host.idle()
    assert host.status(instance_id).runtime_status.value == "Suspended"
    host.run(host.client.resume(instance_id, "go on"))
    assert host.wait_for(instance_id).output == "late"


def test_rewind_runs_the_failed_activity_again(host):
    attempts = __import__("sys").modules["function_app"].attempts
    attempts.pop("rewind-key", None)
    instance_id = start(host, "FlakyChild", "rewind-key")
    assert host.wait_for(instance_id).runtime_status.value == "Failed"
    host.run(host.client.rewind(instance_id, "try again"))
    assert host.wait_for(instance_id).runtime_status.value == "Failed"
    host.run(host.client.rewind(instance_id, "once more"))
    status = host.wait_for(instance_id)
    assert status.runtime_status.value == "Completed"
    assert status.output == "rewind-key succeeded on attempt 3"
    with pytest.raises(Exception, match="only supported on failed"):
        host.run(host.client.rewind(instance_id, "not failed"))


def test_restart_with_and_without_a_new_id(host):
    instance_id = host.wait_for(start(host, "Sequence", "Oslo", "first-run")).instance_id
    again = host.run(host.client.restart(instance_id, restart_with_new_instance_id=True))
    assert again != instance_id
    assert host.wait_for(again).output[0] == "Hello Oslo!"
    same = host.run(host.client.restart(instance_id, restart_with_new_instance_id=False))
    assert same == instance_id
    assert host.wait_for(same).output[0] == "Hello Oslo!"


def test_starting_a_running_instance_again_is_refused(host):
    start(host, "Waiter", None, "only-one")
    with pytest.raises(Exception, match="already running"):
        start(host, "Waiter", None, "only-one")


def test_purge_one_and_by_filter(host):
    done = host.wait_for(start(host, "Sequence")).instance_id
    running = start(host, "Waiter")
    host.idle()
    result = host.run(host.client.purge_instance_history(done))
    assert result.instances_deleted == 1
    assert host.http("GET", f"{WEBHOOKS}/instances/{done}")[0] == 404
    assert host.run(host.client.purge_instance_history(done)).instances_deleted == 0
    others = [host.wait_for(start(host, "Sequence")).instance_id for _ in range(3)]
    result = host.run(
        host.client.purge_instance_history_by(
            created_time_from=datetime(2000, 1, 1, tzinfo=UTC),
            runtime_status=[df.OrchestrationRuntimeStatus.Completed],
        )
    )
    assert result.instances_deleted == len(others)
    assert host.status(running).runtime_status.value == "Running"


def test_wait_for_completion_or_check_status_response(host):
    import azure.functions as func

    instance_id = start(host, "Sequence", "Bern")
    request = func.HttpRequest("GET", f"{host.base_url}/api/x", body=b"")
    response = host.run(
        host.client.wait_for_completion_or_create_check_status_response(
            request, instance_id, timeout_in_milliseconds=5000, retry_interval_in_milliseconds=10
        )
    )
    assert response.status_code == 200
    assert b"Hello Bern!" in response.get_body()


def test_bad_filters_are_clear_errors(host):
    code, _, body = host.http("GET", f"{WEBHOOKS}/instances?runtimeStatus=Sleeping")
    assert code == 400 and "Sleeping" in body["Message"]
    code, _, body = host.http("GET", f"{WEBHOOKS}/instances?createdTimeFrom=yesterday")
    assert code == 400 and "createdTimeFrom" in body["Message"]
    code, _, body = host.http("POST", f"{WEBHOOKS}/orchestrators/Sequence", b"{not json")
    assert code == 400


def test_purge_by_filter_and_paging_leave_entities_out(host):
    counter = df.EntityId("Tally", "counted")
    host.signal_entity(counter, "add", 1)
    done = start(host, "Sequence", "Lima")
    host.wait_for(done)
    code, headers, page = host.http("GET", f"{WEBHOOKS}/instances?top=1")
    assert code == 200 and [i["instanceId"] for i in page] == [done]
    assert "x-ms-continuation-token" not in {k.lower() for k in headers}
    code, _, body = host.http(
        "DELETE", f"{WEBHOOKS}/instances?createdTimeFrom=2000-01-01T00:00:00Z"
    )
    assert code == 200 and body == {"instancesDeleted": 1}
    assert host.entity_state(counter) == {"total": 1, "seen": [1]}
