"""The dashboard's JSON under /_devhost/api/, on both stores, through real HTTP."""

from urllib.parse import quote, urlencode

import azure.durable_functions as df

from devhost.clock import Clock
from devhost.host import DevHost, ListenAddress
from devhost.settings import load_settings
from devhost.store.memory import MemoryStore

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
    timer = next(b for b in body["timeline"] if b["kind"] == "timer")
    assert timer["status"] == "open" and timer["due"] == waiting["timers"][0]["due"]
    assert {"kind": "event", "name": "Approval"}.items() <= next(
        b for b in body["timeline"] if b["kind"] == "event"
    ).items()
    assert body["history"][0]["EventType"] in ("OrchestratorStarted", "ExecutionStarted")

    host.raise_event(instance_id, "Approval", "yes")
    host.wait_for(instance_id)
    body = get(host, f"/instances/{instance_id}")[1]
    assert body["waitingOn"] is None and body["status"]["output"] == "approved: yes"
    event_bar = next(b for b in body["timeline"] if b["kind"] == "event")
    assert event_bar["status"] == "completed"


def test_a_parent_links_to_its_children_and_a_child_to_its_parent(host):
    parent = host.start("Parent", instance_id="family")
    host.wait_for(parent)
    body = get(host, f"/instances/{parent}")[1]
    children = [c["instanceId"] for c in body["children"]]
    assert children[0] == "family-named" and len(children) == 2
    bars = [b for b in body["timeline"] if b["kind"] == "suborchestration"]
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
        kinds = {b["kind"]: b for b in generation["timeline"]}
        assert kinds["generation"]["status"] == "continued"
        assert (kinds["event"]["name"], kinds["event"]["status"]) == ("Ping", "completed")
    assert body["waitingOn"]["events"] == ["Ping"]
