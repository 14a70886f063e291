"""Storage that is away or wrong: requests answer within their deadline, starts can be stopped,
and a permanent refusal fails at once instead of being retried as an outage."""

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from azure.data.tables.aio import TableClient

from devhost.azurite import ACCOUNT, ACCOUNT_KEY, Azurite, free_port
from devhost.store.azure import AzureStore
from devhost.store.base import StorageRequestError
from devhost.taskhub.model import InstanceQuery, InstanceRecord, Message, RuntimeStatus
from devhost.testing import DurableHarness

pytestmark = pytest.mark.azure  # every test here runs on Azure Storage

PATTERNS = Path(__file__).parent / "apps" / "patterns"
WEBHOOKS = "/runtime/webhooks/durabletask"


def storage_at(port: int) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};"
        f"TableEndpoint=http://127.0.0.1:{port}/{ACCOUNT};"
    )


def start_host(connection: str) -> subprocess.Popen:
    env = dict(os.environ, AzureWebJobsStorage=connection)
    return subprocess.Popen(
        [sys.executable, "-m", "devhost", "start", "--app-dir", str(PATTERNS)]
        + ["--store", "azure", "--port", str(free_port())],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def read_until(process: subprocess.Popen, text: str, timeout: float = 30) -> str:
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: [lines.append(line) for line in iter(process.stdout.readline, "")],
        daemon=True,
    )
    reader.start()
    deadline = time.monotonic() + timeout
    while not any(text in line for line in lines):
        assert time.monotonic() < deadline, "".join(lines)
        time.sleep(0.02)
    return "".join(lines)


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_a_host_waiting_for_storage_stops_on_ctrl_c_and_says_how_to_fix_it(stop_signal):
    process = start_host(storage_at(free_port()))
    try:
        output = read_until(process, "waiting for storage")
        assert "devhost up" in output and "--store memory" in output
        process.send_signal(stop_signal)
        assert process.wait(timeout=15) is not None
    finally:
        process.kill()


class NotStorage(BaseHTTPRequestHandler):
    """Another server on the storage port: it refuses every request it does not know."""

    def do_POST(self) -> None:  # noqa: N802 - the http.server naming
        self.send_error(400, "What is this?")

    do_GET = do_PUT = do_POST  # noqa: N815

    def log_message(self, *args: object) -> None:
        pass


def test_a_server_that_is_not_storage_stops_the_start_at_once():
    server = HTTPServer(("127.0.0.1", 0), NotStorage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        process = start_host(storage_at(server.server_address[1]))
        output, _ = process.communicate(timeout=30)
    finally:
        server.shutdown()
    assert process.returncode == 2
    assert "cannot start: Azure Storage refused the request (400)" in output
    assert "--store memory" in output


def test_keys_and_values_table_storage_refuses_fail_at_once(azurite, hub_name):
    async def scenario() -> None:
        store = AzureStore(azurite.connection_string, hub_name)
        await store.open()
        try:
            began = time.monotonic()
            with pytest.raises(StorageRequestError, match="cannot hold the key"):
                await store.get_instance("../../x")
            now = datetime.now(UTC)
            huge_name = "é" * 40_000  # one property past 64 KiB
            record = InstanceRecord("huge", huge_name, RuntimeStatus.Pending, now, now, "e")
            with pytest.raises(StorageRequestError, match="refused the request") as refused:
                await store.create_instance(record, Message("m", "huge", {"EventType": 0}, "e"))
            assert refused.value.status in (400, 413)
            assert time.monotonic() - began < 5
        finally:
            await store.close()

    asyncio.run(scenario())


def test_requests_in_an_outage_answer_503_and_acknowledged_work_completes(
    tmp_path, hub_name, monkeypatch
):
    monkeypatch.setenv("DEVHOST_REQUEST_DEADLINE_SECONDS", "1")
    storage = Azurite(tmp_path / "azurite").start()
    try:
        store = AzureStore(storage.connection_string, hub_name)
        with DurableHarness(PATTERNS, store=store, virtual_clock=False) as host:
            waiting = host.run(host.client.start_new("Waiter", "waiting"))
            host.wait_for(waiting, statuses=("Running",))
            timed = host.run(host.client.start_new("Timer", "timed", 2))
            storage.stop()  # graceful: Azurite saves its data (a SIGKILL would lose it)
            began = time.monotonic()
            code, headers, body = host.http(
                "POST", f"{WEBHOOKS}/instances/{waiting}/raiseEvent/Never", "early"
            )
            assert code == 503 and headers["Retry-After"] == "5", body
            assert "unreachable" in body["Message"] and "nothing was done" in body["Message"]
            code, _, _ = host.http("GET", f"{WEBHOOKS}/instances/never-seen")
            assert code == 503
            assert time.monotonic() - began < 10
            storage.start()
            code, _, _ = host.http(
                "POST", f"{WEBHOOKS}/instances/{waiting}/raiseEvent/Never", "later"
            )
            assert code == 202
            assert host.wait_for(waiting, timeout=60).output == "later"
            assert host.wait_for(timed, timeout=60).runtime_status.value == "Completed"
    finally:
        storage.stop()


def test_recovery_finds_starts_the_listing_missed_and_drops_rows_it_should_not_hold(
    azurite, hub_name
):
    """The listing is written behind the commits: a crash can leave a stored start out of it,
    or leave a row whose instance was purged. Recovery reads the state rows, which win."""

    async def scenario() -> None:
        store = AzureStore(azurite.connection_string, hub_name)
        await store.open()
        now = datetime.now(UTC)
        evt = {"EventType": 0, "Name": "Waiter", "OrchestrationInstance": {"ExecutionId": "e"}}
        start = Message("m", "stored", {**evt, "Input": None}, "e", stored=True)
        record = InstanceRecord("stored", "Waiter", RuntimeStatus.Pending, now, now, "e")
        await store.create_instance(record, start)
        await store.close()  # the listing is written on the way out
        async with TableClient.from_connection_string(
            azurite.connection_string, f"{hub_name}Instances"
        ) as listing:
            await listing.delete_entity("listing", "stored")  # as if the host died first
            orphan = {"PartitionKey": "listing", "RowKey": "orphan", "Name": "Waiter"}
            orphan |= {"RuntimeStatus": "Running", "ExecutionId": "e"}
            await listing.upsert_entity(orphan | {"CreatedTime": now, "LastUpdatedTime": now})
        store = AzureStore(azurite.connection_string, hub_name)
        await store.open()
        try:
            assert await store.active_instances() == ["stored"]
            listed, _ = await store.query(InstanceQuery(), None, None)
            assert [(r.instance_id, r.runtime_status) for r in listed] == [
                ("stored", RuntimeStatus.Pending)
            ]
            assert await store.get_instance("orphan") is None
        finally:
            await store.close()

    asyncio.run(scenario())
