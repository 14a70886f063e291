"""The dashboard's JSON under /_devhost/api/, on both stores, through real HTTP."""

import uuid
from urllib.parse import quote, urlencode

import azure.durable_functions as df
import grpc
import pytest
from google.protobuf import wrappers_pb2

from devhost.clock import Clock
from devhost.grpc.proto import pb, stubs
from devhost.host import DevHost, ListenAddress
from devhost.settings import load_settings
from devhost.store.azure import AzureStore
from devhost.store.memory import MemoryStore
from devhost.testing import DurableHarness

from .conftest import PATTERNS_APP

API = "/_devhost/api"


def get(host, path: str, **params):
    query = f"?{urlencode(params)}" if params else ""
    status, _, body = host.http("GET", f"{API}{path}{query}")
    return status, body


def test_the_list_pages_through_every_instance_with_filters_and_counts(host):
    done = [host.start("Sequence", "Oslo", instance_id=f"seq-{i}") for i in range(5)]
    waiting = host.start("Approval", instance_id="approval-1")
    for instance_id in done:
        host.wait_for(instance_id)
    host.signal_entity(df.EntityId("Tally", "k"), "add", 1)  # entities stay out of the list
    host.idle()

    seen, token, pages = [], None, 0
    while True:
        params = {"top": 2, **({"continuationToken": token} if token else {})}
        status, body = get(host, "/instances", **params)
        assert status == 200
        seen += [item["instanceId"] for item in body["instances"]]
        pages += 1
        token = body["continuationToken"]
        if not token:
            break
    assert sorted(seen) == sorted([*done, waiting]) and pages == 3

    assert [i["instanceId"] for i in get(host, "/instances", name="Approval")[1]["instances"]] == [
        waiting
    ]
    running = get(host, "/instances", runtimeStatus="Running")[1]["instances"]
    assert [i["instanceId"] for i in running] == [waiting]
    prefixed = get(host, "/instances", instanceIdPrefix="seq-")[1]["instances"]
    assert len(prefixed) == 5
    future = get(host, "/instances", createdTimeFrom="2999-01-01T00:00:00Z")[1]["instances"]
    assert future == []
    assert get(host, "/counts")[1] == {"Completed": 5, "Running": 1}
    assert get(host, "/counts", name="Sequence")[1] == {"Completed": 5}


def test_an_instance_shows_its_timer_due_time_and_awaited_event(host):
    instance_id = host.start("Approval", instance_id="wait-1")
    host.idle()
    status, body = get(host, f"/instances/{instance_id}")
    assert status == 200
    assert body["status"]["runtimeStatus"] == "Running"
    waiting = body["waitingOn"]
    assert waiting["events"] == ["Approval"]
    assert len(waiting["timers"]) == 1 and waiting["timers"][0]["due"].endswith("Z")
    timer = next(b for b in body["timeline"]["bars"] if b["kind"] == "timer")
    assert timer["status"] == "open" and timer["due"] == waiting["timers"][0]["due"]
    assert {"kind": "event", "name": "Approval"}.items() <= next(
        b for b in body["timeline"]["bars"] if b["kind"] == "event"
    ).items()
    assert body["history"][0]["EventType"] in ("OrchestratorStarted", "ExecutionStarted")

    host.raise_event(instance_id, "Approval", "yes")
    host.wait_for(instance_id)
    body = get(host, f"/instances/{instance_id}")[1]
    assert body["waitingOn"] is None and body["status"]["output"] == "approved: yes"
    event_bar = next(b for b in body["timeline"]["bars"] if b["kind"] == "event")
    assert event_bar["status"] == "completed"


def test_a_parent_links_to_its_children_and_a_child_to_its_parent(host):
    parent = host.start("Parent", instance_id="family")
    host.wait_for(parent)
    body = get(host, f"/instances/{parent}")[1]
    children = [c["instanceId"] for c in body["children"]]
    assert children[0] == "family-named" and len(children) == 2
    bars = [b for b in body["timeline"]["bars"] if b["kind"] == "suborchestration"]
    assert all(b["status"] == "completed" and b["end"] for b in bars)
    child = get(host, f"/instances/{quote(children[1], safe='')}")[1]
    assert child["parentInstanceId"] == parent


def test_a_failed_instance_shows_why(host):
    instance_id = host.start("ActivityFails", instance_id="fails")
    host.wait_for(instance_id)
    failure = get(host, f"/instances/{instance_id}")[1]["failure"]
    assert "Orchestrator function 'ActivityFails' failed" in failure["message"]
    assert failure["reason"]


def test_entities_show_their_state(host):
    host.signal_entity(df.EntityId("Tally", "a"), "add", 5)
    host.idle()
    status, body = get(host, "/entities")
    assert status == 200
    [entity] = body["entities"]
    assert (entity["name"], entity["key"], entity["state"]["total"]) == ("tally", "a", 5)
    assert entity["queue"] == []


def test_bad_requests_answer_json_with_a_sentence(host):
    status, body = get(host, "/instances", top="0")
    assert status == 400 and body["Message"] == "top must be a number from 1 to 1000."
    status, body = get(host, "/instances", runtimeStatus="Sleeping")
    assert status == 400 and "Sleeping" in body["Message"]
    status, body = get(host, "/instances", createdTimeFrom="yesterday")
    assert status == 400 and "ISO-8601" in body["Message"]
    status, body = get(host, "/instances/nobody")
    assert status == 404 and body["Message"] == "No instance with ID 'nobody' found."
    status, body = get(host, "/nothing")
    assert status == 404
    assert body["Message"] == "No dashboard page or API route matches /_devhost/api/nothing."
    status, headers, body = host.http("POST", f"{API}/hub")
    assert status == 405 and headers["Allow"] == "DELETE,GET,HEAD" and "POST" in body["Message"]


def test_the_page_and_its_modules_are_served(host):
    status, headers, body = host.http("GET", "/_devhost")  # redirected to the page
    assert status == 200 and '<script type="module" src="static/app.js">' in body
    status, headers, _ = host.http("GET", "/_devhost/static/instance.js")
    assert status == 200 and "javascript" in headers["Content-Type"]


def test_the_start_banner_names_the_dashboard_beside_the_function_urls():
    settings = load_settings(PATTERNS_APP, apply_environment=False)
    host = DevHost(settings, MemoryStore(), Clock(), listen=ListenAddress("127.0.0.1", 7071))
    lines = host.describe()
    api = lines.index(
        "Durable Functions HTTP API: http://127.0.0.1:7071/runtime/webhooks/durabletask/"
    )
    assert lines[api + 1] == "Dashboard: http://127.0.0.1:7071/_devhost/"
    host.executor.shutdown()


def test_earlier_generations_of_a_continue_as_new_loop_are_shown_while_it_runs(host):
    instance_id = host.start("Counter", instance_id="loop")
    for ping in ("a", "b"):
        host.raise_event(instance_id, "Ping", ping)
        host.idle()
    body = get(host, f"/instances/{instance_id}")[1]
    assert body["status"]["input"] == {"generation": 2, "pings": ["a", "b"]}
    generations = body["generations"]
    assert len(generations) == 2
    assert len({g["executionId"] for g in generations}) == 2
    for generation in generations:
        kinds = {b["kind"]: b for b in generation["timeline"]["bars"]}
        assert kinds["generation"]["status"] == "continued"
        assert (kinds["event"]["name"], kinds["event"]["status"]) == ("Ping", "completed")
    assert body["waitingOn"]["events"] == ["Ping"]


def ids(body) -> list[str]:
    return [i["instanceId"] for i in body["instances"]]


def test_the_list_is_newest_first_and_sorts_by_name_status_and_last_update(host):
    # ids in the opposite order of their starts: the list must not be by id
    host.start("Status", instance_id="c-status")
    host.advance(seconds=1)
    host.start("Sequence", "Oslo", instance_id="b-seq")
    host.advance(seconds=1)
    host.start("Approval", instance_id="a-wait")
    host.wait_for("b-seq")
    host.idle()
    host.signal_entity(df.EntityId("Tally", "k"), "add", 1)  # entities stay out of the list
    host.idle()

    assert ids(get(host, "/instances")[1]) == ["a-wait", "b-seq", "c-status"]
    assert ids(get(host, "/instances", order="asc")[1]) == ["c-status", "b-seq", "a-wait"]
    assert ids(get(host, "/instances", sort="name")[1]) == ["a-wait", "b-seq", "c-status"]
    assert ids(get(host, "/instances", sort="name", order="desc")[1]) == [
        "c-status",
        "b-seq",
        "a-wait",
    ]
    # running ones first, then finished; the newest first within a status
    assert ids(get(host, "/instances", sort="runtimeStatus")[1]) == ["a-wait", "c-status", "b-seq"]
    host.advance(seconds=1)
    host.raise_event("c-status", "Go")  # c-status moves on: the latest update
    host.wait_for("c-status")
    assert ids(get(host, "/instances", sort="lastUpdatedTime")[1])[0] == "c-status"
    host.advance(seconds=1)
    host.start("Sequence", "Rome", instance_id="0-newest")
    assert ids(get(host, "/instances")[1])[0] == "0-newest"

    rows = {i["instanceId"]: i for i in get(host, "/instances")[1]["instances"]}
    assert rows["c-status"]["customStatus"] == '{"step": 2}'
    assert rows["b-seq"]["customStatus"] is None
    assert "input" not in rows["b-seq"] and "output" not in rows["b-seq"]


def test_sorted_pages_follow_each_other_and_filters_still_apply(host):
    for n in range(5):
        host.start("Sequence", "Oslo", instance_id=f"p-{n}")
        host.advance(seconds=1)
    host.start("Approval", instance_id="p-wait")
    host.idle()
    for sort in ("createdTime", "name", "runtimeStatus", "lastUpdatedTime"):
        seen, token = [], None
        while True:
            params = {"top": 2, "sort": sort, **({"continuationToken": token} if token else {})}
            status, body = get(host, "/instances", **params)
            assert status == 200, body
            seen += ids(body)
            token = body["continuationToken"]
            if not token:
                break
        assert sorted(seen) == sorted([*(f"p-{n}" for n in range(5)), "p-wait"]), sort
        assert len(seen) == 6
    newest = get(host, "/instances", top=3, runtimeStatus="Completed", name="Sequence")[1]
    assert ids(newest) == ["p-4", "p-3", "p-2"]
    after = get(
        host,
        "/instances",
        top=3,
        runtimeStatus="Completed",
        continuationToken=newest["continuationToken"],
    )[1]
    assert ids(after) == ["p-1", "p-0"] and after["continuationToken"] is None


def test_a_bad_sort_order_or_token_is_refused_with_a_sentence(host):
    host.start("Sequence", "Oslo", instance_id="only")
    host.start("Sequence", "Rome", instance_id="other")
    host.idle()
    status, body = get(host, "/instances", sort="input")
    assert status == 400 and body["Message"].startswith("sort must be one of createdTime")
    status, body = get(host, "/instances", order="sideways")
    assert status == 400 and body["Message"] == "order must be asc or desc, not 'sideways'."
    status, body = get(host, "/instances", continuationToken="not-a-token")
    assert status == 400 and "continuation token" in body["Message"]
    token = get(host, "/instances", top=1)[1]["continuationToken"]
    status, body = get(host, "/instances", sort="name", continuationToken=token)
    assert status == 400 and "another order" in body["Message"]


def test_a_purged_instance_is_gone_from_the_page_and_the_list(host):
    instance_id = host.start("Sequence", "Oslo", instance_id="to-purge")
    host.wait_for(instance_id)
    assert ids(get(host, "/instances")[1]) == [instance_id]
    status, _, _ = host.http("DELETE", f"/runtime/webhooks/durabletask/instances/{instance_id}")
    assert status == 200
    status, body = get(host, f"/instances/{instance_id}")
    assert status == 404 and body["Message"] == "No instance with ID 'to-purge' found."
    assert get(host, "/instances")[1]["instances"] == []


def test_a_deleted_hub_leaves_an_empty_list(host):
    for name in ("b", "a"):
        host.wait_for(host.start("Sequence", "Oslo", instance_id=name))
    assert ids(get(host, "/instances", sort="name")[1]) == ["a", "b"]
    status, _, _ = host.http("DELETE", f"{API}/hub")
    assert status == 200
    for sort in ("name", "createdTime"):
        assert get(host, "/instances", sort=sort)[1]["instances"] == []


def test_a_retry_timer_is_named_as_one(host):
    key = f"dash-{uuid.uuid4().hex[:8]}"
    instance_id = host.start("Retry", key, instance_id="retrying")
    host.idle()
    body = get(host, f"/instances/{instance_id}")[1]
    [timer] = body["waitingOn"]["timers"]
    assert (timer["retryOf"], timer["attempt"]) == ("Flaky", 1)
    [bar] = [b for b in body["timeline"]["bars"] if b["kind"] == "timer"]
    assert (bar["name"], bar["retry"], bar["status"]) == ("Flaky", 1, "open")
    step = next(s for s in body["steps"] if s["kind"] == "retry timer")
    assert (step["name"], step["attempt"], step["status"]) == ("Flaky", 1, "open")
    host.advance(seconds=5)
    host.advance(seconds=5)
    host.wait_for(instance_id)
    body = get(host, f"/instances/{instance_id}")[1]
    timers = [b for b in body["timeline"]["bars"] if b["kind"] == "timer"]
    assert [(b["name"], b["retry"], b["status"]) for b in timers] == [
        ("Flaky", 1, "completed"),
        ("Flaky", 2, "completed"),
    ]


def test_history_steps_pair_each_task_with_its_result_and_keep_tracebacks_as_text(host):
    instance_id = host.start("CatchActivity", instance_id="caught")
    host.wait_for(instance_id)
    body = get(host, f"/instances/{instance_id}")[1]
    kinds = [(s["kind"], s["name"]) for s in body["steps"]]
    assert kinds == [("started", "CatchActivity"), ("activity", "Fail"), ("completed", "")]
    activity = body["steps"][1]
    assert (activity["status"], activity["input"]) == ("failed", "that")
    assert activity["start"] and activity["end"] and len(activity["events"]) == 2
    details = activity["failure"]["details"]
    assert details.startswith("Traceback (most recent call last):\n")  # text, not JSON
    assert activity["failure"]["reason"].endswith("ValueError: cannot handle that")
    assert "cannot handle that" in body["steps"][2]["result"]

    sequence = host.start("Sequence", "Oslo", instance_id="steps-seq")
    host.wait_for(sequence)
    steps = get(host, f"/instances/{sequence}")[1]["steps"]
    activities = [s for s in steps if s["kind"] == "activity"]
    assert [(s["name"], s["status"]) for s in activities] == [("Hello", "completed")] * 3
    assert activities[0]["input"] == "Oslo" and activities[0]["result"] == "Hello Oslo!"
    assert [s["task"] for s in activities] == [0, 1, 2]


def test_a_long_timer_beside_seconds_of_work_is_drawn_with_a_break(host):
    instance_id = host.start("Timer", 86_400, instance_id="a-day")
    host.idle()
    host.advance(seconds=30)
    body = get(host, f"/instances/{instance_id}")[1]
    axis = body["timeline"]["axis"]
    assert [s["break"] for s in axis] == [False, True]
    work, wait = axis
    assert work["width"] > 80 and wait["width"] < 10
    assert wait["end"] == next(b["due"] for b in body["timeline"]["bars"] if b["kind"] == "timer")


def test_a_host_that_reopens_a_hub_lists_it_newest_first(azurite, hub_name):
    """The summaries in memory are built from the listing the first time a page is asked for."""
    with DurableHarness(PATTERNS_APP, store=AzureStore(azurite.connection_string, hub_name)) as h:
        for name in ("z-first", "y-second", "x-third"):
            h.start("Sequence", "Oslo", instance_id=name)
            h.wait_for(name)
            h.advance(seconds=1)
    with DurableHarness(PATTERNS_APP, store=AzureStore(azurite.connection_string, hub_name)) as h:
        assert ids(get(h, "/instances")[1]) == ["x-third", "y-second", "z-first"]
        h.advance(seconds=60)  # past the first host's virtual clock
        h.start("Approval", instance_id="w-fourth")
        h.idle()
        assert ids(get(h, "/instances", top=2)[1]) == ["w-fourth", "x-third"]
        assert ids(get(h, "/instances", sort="runtimeStatus", top=1)[1]) == ["w-fourth"]


@pytest.fixture(params=["memory", "azure"])
def grpc_host(request, hub_name):
    """The patterns app with a gRPC port, for a Durable Task worker's instances."""
    if request.param == "azure":
        store = AzureStore(request.getfixturevalue("azurite").connection_string, hub_name)
    else:
        store = MemoryStore()
    with DurableHarness(PATTERNS_APP, store=store, grpc=True) as harness:
        yield harness


def answer_one_episode(address: str, output: str | None, custom_status: str) -> str:
    """Play a Durable Task worker by hand: take one orchestrator work item and answer it with
    payloads the SDK encoded itself (not JSON, as a large-payload reference is not); with no
    output, the orchestration goes on waiting."""
    with grpc.insecure_channel(address) as channel:
        stub = stubs.TaskHubSidecarServiceStub(channel)
        stream = stub.GetWorkItems(pb.GetWorkItemsRequest())
        item = next(i for i in stream if i.HasField("orchestratorRequest"))
        request = item.orchestratorRequest
        done = pb.CompleteOrchestrationAction(
            orchestrationStatus=pb.ORCHESTRATION_STATUS_COMPLETED,
            result=wrappers_pb2.StringValue(value=output),
        )
        actions = (
            [] if output is None else [pb.OrchestratorAction(id=1, completeOrchestration=done)]
        )
        stub.CompleteOrchestratorTask(
            pb.OrchestratorResponse(
                instanceId=request.instanceId,
                completionToken=item.completionToken,
                actions=actions,
                customStatus=wrappers_pb2.StringValue(value=custom_status),
            )
        )
        stream.cancel()
        return request.instanceId


def test_payloads_that_are_not_json_are_shown_as_text(grpc_host):
    with grpc.insecure_channel(grpc_host.grpc_address) as channel:
        stubs.TaskHubSidecarServiceStub(channel).StartInstance(
            pb.CreateInstanceRequest(
                instanceId="raw-1",
                name="WorkerOnly",
                input=wrappers_pb2.StringValue(value="blob:v1:inputs/raw-1"),
            )
        )
    answer_one_episode(grpc_host.grpc_address, "blob:v1:outputs/raw-1", "half way, in words")
    grpc_host.wait_for("raw-1")
    status, body = get(grpc_host, "/instances/raw-1")
    assert status == 200
    assert body["status"]["runtimeStatus"] == "Completed"
    assert body["status"]["input"] == "blob:v1:inputs/raw-1"
    assert body["status"]["output"] == "blob:v1:outputs/raw-1"
    assert body["status"]["customStatus"] == "half way, in words"
    listed = get(grpc_host, "/instances")[1]
    assert "raw-1" in ids(listed)


def test_a_terminate_reason_that_is_not_json_is_shown_as_text(grpc_host):
    with grpc.insecure_channel(grpc_host.grpc_address) as channel:
        stub = stubs.TaskHubSidecarServiceStub(channel)
        stub.StartInstance(pb.CreateInstanceRequest(instanceId="raw-2", name="WorkerOnly"))
        answer_one_episode(grpc_host.grpc_address, None, "waiting")
        reason = wrappers_pb2.StringValue(value="blob:v1:reasons/raw-2")
        stub.TerminateInstance(pb.TerminateRequest(instanceId="raw-2", output=reason))
    grpc_host.wait_for("raw-2", statuses=("Terminated",))
    status, body = get(grpc_host, "/instances/raw-2")
    assert status == 200
    assert body["status"]["output"] == "blob:v1:reasons/raw-2"
    assert body["failure"] is None
