"""`devhost start --grpc-port`: durabletask workers and clients on a function app's engine and hub.

The app's functions run where the app's runner runs them; every other name goes to the gRPC
workers. Both kinds of instance share the hub: each side sees and steers the other's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from durabletask import client, entities, task, worker
from durabletask.azuremanaged.client import DurableTaskSchedulerClient

from devhost.settings import load_settings
from devhost.store.azure import AzureStore
from devhost.store.memory import MemoryStore
from devhost.testing import DurableHarness

PATTERNS_APP = Path(__file__).parent / "apps" / "patterns"
Status = client.OrchestrationStatus


@pytest.fixture
def host() -> Iterator[DurableHarness]:
    with DurableHarness(PATTERNS_APP, grpc=True) as harness:
        yield harness


def shout(_: task.ActivityContext, text: str) -> str:
    return text.upper()


def greet_loudly(ctx: task.OrchestrationContext, city: str):
    greeting = yield ctx.call_activity("Hello", input=city)  # the app's activity
    return (yield ctx.call_activity(shout, input=greeting))  # the worker's own


def test_a_worker_orchestration_calls_the_apps_activity_and_the_app_sees_it(host):
    w = worker.TaskHubGrpcWorker(host_address=host.grpc_address)
    w.add_orchestrator(greet_loudly)
    w.add_activity(shout)
    w.start()
    c = client.TaskHubGrpcClient(host_address=host.grpc_address)
    try:
        instance_id = c.schedule_new_orchestration(greet_loudly, input="Oslo")
        state = c.wait_for_orchestration_completion(instance_id, timeout=30)
        assert state.serialized_output == '"HELLO OSLO!"'
        assert host.status(instance_id).output == "HELLO OSLO!"  # the app's own client
    finally:
        c.close()
        w.stop()


def test_a_grpc_client_runs_the_apps_orchestrator(host):
    c = client.TaskHubGrpcClient(host_address=host.grpc_address)
    try:
        instance_id = c.schedule_new_orchestration("Sequence", input="Rome")
        state = c.wait_for_orchestration_completion(instance_id, timeout=30)
        assert json.loads(state.serialized_output) == [
            "Hello Rome!",
            "Hello Rome North!",
            "Hello Rome South!",
        ]
    finally:
        c.close()


def test_the_taskhub_metadata_may_name_the_apps_hub_and_no_other(host):
    hub = load_settings(PATTERNS_APP).hub_name
    address = f"http://{host.grpc_address}"
    own = DurableTaskSchedulerClient(
        host_address=address, taskhub=hub, token_credential=None, secure_channel=False
    )
    other = DurableTaskSchedulerClient(
        host_address=address, taskhub="elsewhere", token_credential=None, secure_channel=False
    )
    try:
        instance_id = own.schedule_new_orchestration("Sequence", input="Lima")
        assert own.wait_for_orchestration_completion(instance_id, timeout=30) is not None
        with pytest.raises(grpc.RpcError) as refused:
            other.get_orchestration_state(instance_id)
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND
        assert "serves the task hub" in refused.value.details()
    finally:
        own.close()
        other.close()


def fails_loudly(ctx: task.OrchestrationContext, _):
    yield ctx.call_activity(shout, input="step")
    raise ValueError("the worker's orchestration failed")


def test_the_dashboard_and_management_api_show_a_worker_orchestration(host):
    w = worker.TaskHubGrpcWorker(host_address=host.grpc_address)
    w.add_orchestrator(fails_loudly)
    w.add_activity(shout)
    w.start()
    c = client.TaskHubGrpcClient(host_address=host.grpc_address)
    try:
        instance_id = c.schedule_new_orchestration(fails_loudly)
        state = c.wait_for_orchestration_completion(instance_id, timeout=30)
        assert state.failure_details.error_type == "builtins.ValueError"
    finally:
        c.close()
        w.stop()
    code, _, shown = host.http("GET", f"/_devhost/api/instances/{instance_id}")
    assert code == 200, shown
    assert "fails_loudly" in json.dumps(shown)
    webhooks = "/runtime/webhooks/durabletask"
    code, _, status = host.http("GET", f"{webhooks}/instances/{instance_id}?showHistory=true")
    assert code == 200, status
    assert status["runtimeStatus"] == "Failed"
    assert "the worker's orchestration failed" in json.dumps(status["output"])


def gauge(ctx: entities.EntityContext, value: int) -> None:
    ctx.set_state(value)


def test_a_workers_entity_is_listed_beside_the_apps_entity(host):
    w = worker.TaskHubGrpcWorker(host_address=host.grpc_address)
    w.add_entity(gauge)
    w.start()
    c = client.TaskHubGrpcClient(host_address=host.grpc_address)
    try:
        c.signal_entity(entities.EntityInstanceId("gauge", "boiler"), "set", 7)
        c.signal_entity(entities.EntityInstanceId("Tally", "app"), "add", 2)  # the app's entity
        until = time.monotonic() + 30
        while c.get_entity(entities.EntityInstanceId("gauge", "boiler")) is None:
            assert time.monotonic() < until, "the worker's entity did not run"
            time.sleep(0.01)
        host.idle()
    finally:
        c.close()
        w.stop()
    code, _, listed = host.http("GET", "/_devhost/api/entities")
    assert code == 200, listed
    states = {e["instanceId"]: e["state"] for e in listed["entities"]}
    assert states == {"@gauge@boiler": 7, "@tally@app": {"total": 2, "seen": [2]}}
    code, _, read = host.http("GET", "/runtime/webhooks/durabletask/entities/gauge/boiler")
    assert (code, read) == (200, 7)


@pytest.fixture(params=["memory", "azure"])
def stored_host(request, hub_name) -> Iterator[DurableHarness]:
    """The app with a gRPC port, on each store."""
    if request.param == "azure":
        store = AzureStore(request.getfixturevalue("azurite").connection_string, hub_name)
    else:
        store = MemoryStore()
    with DurableHarness(PATTERNS_APP, store=store, grpc=True) as harness:
        yield harness


def late_comer(ctx: task.OrchestrationContext, name: str):
    return f"finally, {name}"


def test_an_http_start_of_a_name_no_one_registers_says_it_waits_for_such_a_worker(
    stored_host, caplog
):
    host = stored_host
    webhooks = "/runtime/webhooks/durabletask"
    code, _, started = host.http("POST", f"{webhooks}/orchestrators/late_comer", body="Ada")
    assert code == 202, started
    instance_id = started["id"]
    code, _, shown = host.http("GET", f"/_devhost/api/instances/{instance_id}")
    assert code == 200, shown
    wanted = "a Durable Task worker that registers the orchestrator 'late_comer'"
    assert shown["waitingOn"]["worker"] == f"waits for {wanted}"
    assert shown["status"]["runtimeStatus"] == "Pending"
    assert any(wanted in r.getMessage() for r in caplog.records)
    w = worker.TaskHubGrpcWorker(host_address=host.grpc_address)
    w.add_orchestrator(late_comer)
    w.start()
    try:
        assert host.wait_for(instance_id).output == "finally, Ada"
    finally:
        w.stop()
    code, _, shown = host.http("GET", f"/_devhost/api/instances/{instance_id}")
    assert code == 200 and shown["waitingOn"] is None


def test_delete_task_hub_is_refused_while_an_entity_waits_for_a_worker_and_done_once_one_came(
    stored_host,
):
    """Work for a worker that is not there never ends: the delete names it (409) at once
    rather than wait for it forever; with the worker connected, the work ends and the delete
    goes through."""
    host = stored_host
    gauge_id = entities.EntityInstanceId("gauge", "boiler")
    c = client.TaskHubGrpcClient(host_address=host.grpc_address)
    try:
        c.signal_entity(gauge_id, "set", 7)
        code, _, refused = host.http("DELETE", "/_devhost/api/hub")
        assert code == 409, refused
        wanted = "a Durable Task worker that registers the entity 'gauge'"
        assert f"entity '@gauge@boiler' waits for {wanted}" in refused["Message"]
        w = worker.TaskHubGrpcWorker(host_address=host.grpc_address)
        w.add_entity(gauge)
        w.start()
        try:
            host.idle()
            assert c.get_entity(gauge_id).get_state(int) == 7
            assert host.http("DELETE", "/_devhost/api/hub")[0] == 200
            assert c.get_entity(gauge_id) is None
        finally:
            w.stop()
    finally:
        c.close()
