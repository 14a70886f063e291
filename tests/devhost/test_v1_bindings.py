"""A v1-model app of our own: queue, blob and timer triggers; table, blob and queue bindings."""

import json
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devhost.store.azure import AzureStore
from devhost.store.memory import MemoryStore
from devhost.testing import DurableHarness

from .storage_checks import Account, eventually, listing

APP = Path(__file__).parent / "apps" / "v1_bindings"


@pytest.fixture
def account(azurite, monkeypatch):
    """Azurite as AzureWebJobsStorage, and names of this test's own in the app's settings."""
    account = Account(azurite.connection_string)
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    monkeypatch.setenv("AzureFunctionsWebHost__hostid", account.name("host"))
    for setting in ("ORDERS_QUEUE", "SHIPPED_QUEUE", "FRAGILE_QUEUE", "TICKS_QUEUE"):
        monkeypatch.setenv(setting, account.name(setting.split("_")[0].lower()))
    monkeypatch.setenv("UPLOADED_QUEUE", account.name("uploaded"))
    for setting in ("RECEIPTS", "UPLOADS", "COPIES"):
        monkeypatch.setenv(setting, account.name(setting.lower()))
    monkeypatch.setenv("ORDERS_TABLE", account.table_name("orders"))
    return account


@pytest.fixture(params=["memory", "azure"])
def host(request, account, hub_name):
    store = AzureStore(account.connection, hub_name) if request.param == "azure" else MemoryStore()
    with DurableHarness(APP, store=store) as harness:
        yield harness


def env(name: str) -> str:
    return os.environ[name]


def test_start_lists_every_function_with_its_trigger(account):
    lines = listing(APP)
    assert "Tick: timerTrigger (schedule 0 */5 * * * *, next " in lines
    assert f"Orders: queueTrigger (queue {env('ORDERS_QUEUE')})" in lines
    assert f"Uploaded: blobTrigger (container {env('UPLOADS')}" in lines
    assert "ReadOrder: [GET] http://127.0.0.1:7071/api/orders/{id}" in lines
    assert "Disabled: disabled" in lines


def test_a_disabled_function_does_not_answer(host):
    assert host.http("GET", "/api/disabled")[0] == 404


def logged_by(caplog, function):
    return [r.getMessage() for r in caplog.records if r.name == f"Function.{function}.User"]


def test_queue_blob_and_timer_functions_log_under_their_function(host, account, caplog):
    caplog.set_level(logging.INFO)
    account.send(env("ORDERS_QUEUE"), json.dumps({"orderId": "o9", "item": "map"}))
    account.upload(env("UPLOADS"), "logged.txt", b"x")
    host.advance(minutes=5)
    eventually(lambda: logged_by(caplog, "Orders"), what="the queue function's log")
    eventually(lambda: logged_by(caplog, "Uploaded"), what="the blob function's log")
    assert logged_by(caplog, "Orders") == ["order o9"]
    assert logged_by(caplog, "Uploaded") == [f"uploaded {env('UPLOADS')}/logged.txt"]
    assert logged_by(caplog, "Tick") == ["tick, past due: False"]
    assert not [r for r in caplog.records if r.name == "root"]


def test_a_queue_message_writes_a_table_row_a_blob_and_a_queue_message(host, account):
    account.send(env("ORDERS_QUEUE"), json.dumps({"orderId": "o1", "item": "lantern"}))
    shipped = eventually(lambda: account.messages(env("SHIPPED_QUEUE")), what="shipped message")
    assert shipped == ["shipped o1"]
    row = account.entity(env("ORDERS_TABLE"), "orders", "o1")
    assert row is not None and row["item"] == "lantern" and row["tries"] == 1
    assert account.blob(env("RECEIPTS"), "o1.txt") == b"lantern for order o1"
    # The message is gone once handled.
    eventually(lambda: not account.messages(env("ORDERS_QUEUE")), what="orders queue empty")


def test_table_and_blob_inputs_bind_the_route_parameter(host, account):
    account.send(env("ORDERS_QUEUE"), json.dumps({"orderId": "o2", "item": "rope"}))
    eventually(lambda: account.messages(env("SHIPPED_QUEUE")), what="shipped message")
    code, _, body = host.http("GET", "/api/orders/o2")
    assert code == 200
    assert body["order"]["item"] == "rope" and body["order"]["RowKey"] == "o2"
    assert body["count"] == 1
    assert body["receipt"] == "rope for order o2"
    assert host.http("GET", "/api/orders/nope")[0] == 404


def test_blob_trigger_runs_for_new_and_changed_blobs_matching_the_path(host, account):
    uploads, seen = env("UPLOADS"), env("UPLOADED_QUEUE")
    account.upload(uploads, "notes.bin", b"not matched")
    account.upload(uploads, "map.txt", b"north")
    first = eventually(lambda: account.messages(seen), what="first upload seen")
    assert first == [f"{uploads}/map.txt 5 north"]
    assert account.blob(env("COPIES"), "map.copy") == b"NORTH"
    account.upload(uploads, "map.txt", b"south!")
    both = eventually(lambda: len(account.messages(seen)) >= 2 and account.messages(seen))
    assert both == [f"{uploads}/map.txt 5 north", f"{uploads}/map.txt 6 south!"]
    assert account.blob(env("COPIES"), "map.copy") == b"SOUTH!"


def test_a_poison_message_moves_after_five_tries_and_never_blocks_its_queue(host, account, caplog):
    fragile = env("FRAGILE_QUEUE")
    account.send(fragile, "poison")
    for text in ("first", "second"):
        account.send(fragile, text)
    for text in ("first", "second"):
        done = eventually(lambda t=text: account.blob(env("RECEIPTS"), f"fragile-{t}.txt"))
        assert done == text.encode()
    poisoned = eventually(lambda: account.messages(f"{fragile}-poison"), what="poison queue")
    assert poisoned == ["poison"]
    tries = [r for r in caplog.records if "Function 'Fragile' failed on message" in r.message]
    assert [int(r.message.split("(try ")[1].split()[0]) for r in tries] == [1, 2, 3, 4, 5]
    eventually(lambda: not account.messages(fragile), what="fragile queue empty")


def test_timer_fires_on_the_virtual_clock_with_its_schedule_status(host, account):
    ticks = env("TICKS_QUEUE")
    assert account.messages(ticks) == []
    host.advance(minutes=5)  # the timer function ran (and wrote) before advance returned
    first = [json.loads(m) for m in account.messages(ticks)]
    assert len(first) == 1 and first[0]["past_due"] is False
    host.advance(minutes=10)
    nexts = [json.loads(m)["next"] for m in account.messages(ticks)]
    assert len(nexts) == 3
    assert all(n.endswith(":00+00:00") and int(n[14:16]) % 5 == 0 for n in nexts)


def test_without_a_storage_account_queue_and_blob_triggers_are_named_not_runnable(monkeypatch):
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    for setting in ("ORDERS_QUEUE", "FRAGILE_QUEUE", "UPLOADS"):
        monkeypatch.setenv(setting, setting.lower().replace("_", "-"))
    lines = listing(APP)
    assert "Orders: queueTrigger (not runnable: the storage account setting" in lines
    assert "Uploaded: blobTrigger (not runnable" in lines
    assert "Tick: timerTrigger (schedule" in lines


def test_an_occurrence_missed_while_the_host_was_down_runs_at_start_as_past_due(account):
    """The schedule's status lives in the account, as the host keeps it."""
    status_path = f"timers/{os.environ['AzureFunctionsWebHost__hostid']}/Tick/status"
    missed = datetime.now(UTC) - timedelta(hours=1)
    status = {"Last": missed.isoformat(), "Next": missed.isoformat(), "LastUpdated": ""}
    account.upload("azure-webjobs-hosts", status_path, json.dumps(status).encode())
    with DurableHarness(APP) as host:
        ticks = [json.loads(m) for m in account.messages(env("TICKS_QUEUE"))]
        assert [t["past_due"] for t in ticks] == [True]
        saved = json.loads(account.blob("azure-webjobs-hosts", status_path))
        assert datetime.fromisoformat(saved["Next"]) > host.clock.now()
