"""Durable entities on the harness (both stores): signals, calls, order, failures, the API."""

import asyncio

import azure.durable_functions as df

WEBHOOKS = "/runtime/webhooks/durabletask"


def test_orchestration_signals_and_calls_an_entity(host):
    instance_id = host.run(host.client.start_new("TallyUser", None, "orch"))
    status = host.wait_for(instance_id)
    assert status.runtime_status.value == "Completed", status.output
    assert status.output["total"] == 6
    assert "the counter exploded" in status.output["failure"]
    assert status.output["after"] == 6, "a failed operation must leave the state as it was"


def test_client_signals_are_applied_in_the_order_sent(host):
    counter = df.EntityId("Tally", "ordered")
    for value in range(1, 21):
        host.run(host.client.signal_entity(counter, "add", value))
    host.idle()
    state = host.run(host.client.read_entity_state(counter))
    assert state.entity_exists
    assert state.entity_state == {"total": 210, "seen": list(range(1, 21))}


def test_read_state_of_an_entity_without_state(host):
    state = host.run(host.client.read_entity_state(df.EntityId("Tally", "nobody")))
    assert state.entity_exists is False


def test_entity_http_api(host):
    base = f"{WEBHOOKS}/entities/Tally/web"
    assert host.http("GET", base)[0] == 404
    assert host.http("POST", f"{base}?op=add", 5)[0] == 202
    assert host.http("POST", f"{base}?op=add", 7)[0] == 202
    host.idle()
    code, _, body = host.http("GET", base)
    assert code == 200 and body == {"total": 12, "seen": [5, 7]}
    code, _, listing = host.http("GET", f"{WEBHOOKS}/entities/Tally?fetchState=true")
    assert code == 200
    entry = next(e for e in listing if e["entityId"]["key"] == "web")
    assert entry["entityId"]["name"] == "tally" and entry["state"]["total"] == 12
    assert "lastOperationTime" in entry
    assert host.http("POST", f"{WEBHOOKS}/entities/NoSuchEntity/x?op=add", 1)[0] == 404
    assert host.http("POST", f"{base}", 1)[0] == 400
    assert host.http("POST", f"{base}?op=delete")[0] == 202
    host.idle()
    assert host.http("GET", base)[0] == 404
    code, _, instances = host.http("GET", f"{WEBHOOKS}/instances")
    assert all(not i["instanceId"].startswith("@") for i in instances)


def test_a_failing_signal_changes_nothing_and_later_ones_apply(host):
    counter = df.EntityId("Tally", "boom")
    host.run(host.client.signal_entity(counter, "add", 1))
    host.run(host.client.signal_entity(counter, "explode"))
    host.run(host.client.signal_entity(counter, "add", 2))
    host.idle()
    state = host.run(host.client.read_entity_state(counter))
    assert state.entity_state == {"total": 3, "seen": [1, 2]}


def test_an_empty_entity_is_not_removed_while_a_request_is_on_its_way(host, monkeypatch):
    runtimes = host._started.engine.entity_runtime
    real_send = runtimes.store.send

    async def race() -> bool:
        await runtimes.resume("@tally@race")  # in memory, no state: removable
        storing, stored = asyncio.Event(), asyncio.Event()

        async def held_send(messages):
            storing.set()
            await stored.wait()
            await real_send(messages)

        monkeypatch.setattr(runtimes.store, "send", held_send)
        signal = asyncio.create_task(runtimes.signal("Tally", "race", "add", "4"))
        await storing.wait()
        removed = await runtimes.remove_if_empty("@tally@race")
        stored.set()
        await signal
        return removed

    assert host.run(race()) is False
    monkeypatch.setattr(runtimes.store, "send", real_send)
    host.idle()
    state = host.run(host.client.read_entity_state(df.EntityId("Tally", "race")))
    assert state.entity_state == {"total": 4, "seen": [4]}
