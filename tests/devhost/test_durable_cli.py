"""`python -m devhost durable`: every command, on both stores, as a user types it."""

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import aiohttp
import azure.durable_functions as df
import pytest

from devhost.azurite import free_port
from devhost.commands import durable_hubs
from devhost.commands.cli import main
from devhost.commands.running_hosts import forget_memory_host, memory_host, record_memory_host
from devhost.store.azure import AzureStore
from devhost.store.memory import MemoryStore
from devhost.taskhub.model import InstanceRecord, RuntimeStatus
from devhost.testing import DurableHarness

from .conftest import PATTERNS_APP

API = "/runtime/webhooks/durabletask/instances"


class Cli:
    """The app folder and how the CLI reaches the hub: --url (memory) or the settings (azure)."""

    def __init__(self, host, app_dir, url_args, capsys):
        self.host, self.app_dir, self.url_args, self.capsys = host, app_dir, url_args, capsys

    def __call__(self, command, *args):
        self.capsys.readouterr()
        argv = ["durable", command, "--app-dir", str(self.app_dir), *self.url_args, *args]
        # in a thread of its own, as a process would be: the caller's thread may run a loop
        with ThreadPoolExecutor(max_workers=1) as thread:
            code = thread.submit(main, argv).result()
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err

    def json(self, command, *args):
        code, out, err = self(command, "--json", *args)
        assert code == 0, err
        return json.loads(out)


def app_folder(tmp_path, port=None):
    app_dir = tmp_path / "app"
    shutil.copytree(PATTERNS_APP, app_dir, dirs_exist_ok=True)
    local = {"IsEncrypted": False, "Values": {}, "Host": {"LocalHttpPort": port or 7071}}
    (app_dir / "local.settings.json").write_text(json.dumps(local))
    return app_dir


@pytest.fixture(params=["memory", "azure"])
def cli(request, tmp_path, hub_name, capsys, monkeypatch):
    if request.param == "azure":
        azurite = request.getfixturevalue("azurite")
        monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
        store = AzureStore(azurite.connection_string, hub_name)
    else:
        store = MemoryStore()
    with DurableHarness(app_folder(tmp_path), store=store) as host:
        # the CLI finds this host by the address it keeps in the hub's lease (azure), on
        # whatever port, or is told its address (memory)
        app_dir = app_folder(tmp_path, port=1)
        url_args = (
            ["--url", host.base_url] if request.param == "memory" else ["--task-hub-name", hub_name]
        )
        yield Cli(host, app_dir, url_args, capsys)


def test_start_new_status_history_and_instances(cli):
    code, out, _ = cli("start-new", "--function-name", "Sequence", "--id", "seq-1",
                       "--input", '"Oslo"')  # fmt: skip
    assert code == 0 and out.strip() == "Started 'Sequence' with id 'seq-1'."
    cli.host.wait_for("seq-1")

    status = cli.json("get-runtime-status", "--id", "seq-1", "--show-input", "--show-output")
    assert status == cli.host.http("GET", f"{API}/seq-1?showInput=true")[2]
    assert status["output"] == ["Hello Oslo!", "Hello Oslo North!", "Hello Oslo South!"]
    code, out, _ = cli("get-runtime-status", "--id", "seq-1")
    assert "runtimeStatus: Completed" in out and "input" not in out

    history = cli.json("get-history", "--id", "seq-1")
    expected = cli.host.http("GET", f"{API}/seq-1?showHistory=true&showHistoryOutput=true")[2]
    assert history == expected["historyEvents"]
    assert [e["EventType"] for e in history].count("TaskCompleted") == 3
    code, out, _ = cli("get-history", "--id", "seq-1")
    assert out.splitlines()[0].split() == ["TIME", "EVENT", "DETAILS"] and "TaskCompleted" in out

    cli("start-new", "--function-name", "Waiter", "--id", "wait-1")
    cli.host.wait_for("wait-1", statuses=("Running",))
    ids = [s["instanceId"] for s in cli.json("get-instances")]
    assert sorted(ids) == ["seq-1", "wait-1"]
    running = cli.json("get-instances", "--runtime-status", "running")
    assert [s["instanceId"] for s in running] == ["wait-1"]
    assert cli.json("get-instances", "--created-after", "2999-01-01") == []
    code, out, _ = cli("get-instances", "--top", "1")
    assert out.splitlines()[0].split() == ["INSTANCE", "NAME", "STATUS", "CREATED", "UPDATED"]
    assert "(1 instance)" in out


def test_events_and_control_operations(cli):
    cli("start-new", "--function-name", "Approval", "--id", "approve")
    cli.host.wait_for("approve", statuses=("Running",))
    code, out, _ = cli("raise-event", "--id", "approve", "--event-name", "Approval",
                       "--event-data", '"yes"')  # fmt: skip
    assert code == 0, out
    assert cli.host.wait_for("approve").output == "approved: yes"

    cli("start-new", "--function-name", "Waiter", "--id", "waiter")
    cli.host.wait_for("waiter", statuses=("Running",))
    assert cli("suspend", "--id", "waiter", "--reason", "lunch")[0] == 0
    cli.host.wait_for("waiter", statuses=("Suspended",))
    code, _, err = cli("suspend", "--id", "waiter")
    assert code == 1 and "Cannot suspend orchestration instance in the Suspended state" in err
    assert cli("resume", "--id", "waiter")[0] == 0
    cli.host.wait_for("waiter", statuses=("Running",))
    assert cli("terminate", "--id", "waiter", "--reason", "enough")[0] == 0
    assert cli.host.wait_for("waiter").output == "enough"

    cli("start-new", "--function-name", "ActivityFails", "--id", "fails")
    cli.host.wait_for("fails")
    first = len(cli.json("get-history", "--id", "fails"))
    code, out, err = cli("rewind", "--id", "fails", "--reason", "try again")
    assert code == 0, err
    cli.host.wait_for("fails")
    failed_tasks = [e for e in cli.json("get-history", "--id", "fails")
                    if e["EventType"] == "TaskFailed"]  # fmt: skip
    assert len(failed_tasks) == 1 and first > 0  # the rewound failure ran again


def test_purge_history_and_delete_task_hub(cli):
    for number in range(3):
        cli("start-new", "--function-name", "Sequence", "--id", f"done-{number}")
    cli("start-new", "--function-name", "Waiter", "--id", "live")
    for number in range(3):
        cli.host.wait_for(f"done-{number}")
    cli.host.wait_for("live", statuses=("Running",))
    assert cli.json("purge-history", "--runtime-status", "Completed,Running") == {
        "instancesDeleted": 3
    }
    code, out, _ = cli("purge-history", "--runtime-status", "Running")
    assert code == 0 and out.strip() == (
        "Purged 0 instances. Only a finished instance can be purged: instance 'live' is "
        "Running; nothing was deleted."
    )
    code, _, err = cli("get-runtime-status", "--id", "done-0")
    assert code == 1 and "No instance with ID 'done-0' found." in err
    counter = df.EntityId("Tally", "deleted")
    cli.host.signal_entity(counter, "add", 5)
    assert cli.host.entity_state(counter) == {"total": 5, "seen": [5]}
    code, out, _ = cli("delete-task-hub")
    assert code == 0
    assert cli.json("get-instances") == []
    assert cli.host.entity_state(counter) is None  # entities go too, also from the host's memory
    cli.host.signal_entity(counter, "add", 1)
    assert cli.host.entity_state(counter) == {"total": 1, "seen": [1]}


def test_bad_input_is_refused_with_a_sentence_and_exit_status_2(cli, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli("get-runtime-status")
    assert exit_info.value.code == 2 and "--id" in capsys.readouterr().err
    code, _, err = cli("start-new", "--function-name", "Sequence", "--input", "not json")
    assert code == 2 and "--input is not JSON" in err
    code, _, err = cli("get-instances", "--created-after", "yesterday")
    assert code == 2 and "--created-after is not an ISO 8601 time" in err
    code, _, err = cli("get-instances", "--runtime-status", "Sleeping")
    assert code == 2 and "unknown --runtime-status 'Sleeping'" in err
    code, _, err = cli("start-new", "--function-name", "NoSuchThing")
    assert code == 1 and "NoSuchThing" in err
    assert cli.json("get-instances") == []  # nothing was started


def test_without_a_host_changes_go_into_storage_for_the_next_host(
    azurite, tmp_path, hub_name, capsys, monkeypatch
):
    monkeypatch.setenv("MyStorage", azurite.connection_string)
    app_dir = app_folder(tmp_path, port=1)  # no host answers there
    hub_args = ["--task-hub-name", hub_name, "--connection-string-setting", "MyStorage"]
    cli = Cli(None, app_dir, hub_args, capsys)
    for instance_id, name in (("later", "Sequence"), ("stopped", "Waiter"), ("held", "Waiter")):
        code, out, err = cli("start-new", "--function-name", name, "--id", instance_id)
        assert code == 0, err
    assert cli("terminate", "--id", "stopped", "--reason", "not needed")[0] == 0
    assert cli("raise-event", "--id", "held", "--event-name", "Never", "--event-data", "7")[0] == 0
    assert cli.json("get-runtime-status", "--id", "later")["runtimeStatus"] == "Pending"
    store = AzureStore(azurite.connection_string, hub_name)
    with DurableHarness(app_dir, store=store) as host:
        assert host.wait_for("later").runtime_status.value == "Completed"
        assert host.wait_for("stopped").output == "not needed"
        assert host.wait_for("held").output == 7
        host.signal_entity(df.EntityId("Tally", "stored"), "add", 3)
        assert host.entity_state(df.EntityId("Tally", "stored")) == {"total": 3, "seen": [3]}
    # a host this CLI cannot reach holds the lease: changes are refused, reads still work
    unreachable = AzureStore(azurite.connection_string, hub_name, owner="elsewhere:1")
    unreachable.address = "http://127.0.0.1:1"
    asyncio.run(hold_for_a_moment(unreachable, cli, hub_name))
    assert cli.json("purge-history", "--runtime-status", "Terminated") == {"instancesDeleted": 1}
    assert cli("delete-task-hub")[0] == 0
    assert cli.json("get-instances") == []
    with DurableHarness(app_dir, store=AzureStore(azurite.connection_string, hub_name)) as host:
        assert host.entity_state(df.EntityId("Tally", "stored")) is None
        assert host.http("GET", API)[2] == []


async def hold_for_a_moment(store, cli, hub_name):
    await store.open()
    try:
        code, _, err = await asyncio.to_thread(cli, "purge-history")
        assert code == 1, err
        assert err.strip() == (
            f"devhost durable: task hub '{hub_name}' is in use by another host (elsewhere:1) "
            f"until {err.split(' until ')[1].split(' UTC')[0]} UTC; stop it, or give this host "
            "another hubName. Pass --url with that host's address to change the hub through it."
        )
        code, out, _ = await asyncio.to_thread(cli, "get-runtime-status", "--id", "later")
        assert code == 0 and "runtimeStatus: Completed" in out
    finally:
        await store.close()


def test_every_command_goes_through_the_host_that_holds_the_hub_and_says_so(cli):
    code, _, err = cli("start-new", "--function-name", "Waiter", "--id", "through")
    assert code == 0
    if "--url" in cli.url_args:
        assert "Through the host" not in err
    else:  # found in the lease, though the app's LocalHttpPort names another port
        assert err.strip() == (
            f"Through the host at {cli.host.base_url}, which holds task hub '{cli.url_args[1]}'."
        )
    cli.host.wait_for("through", statuses=("Running",))
    for command in ("suspend", "resume", "terminate"):
        code, _, err = cli(command, "--id", "through")
        assert code == 0, err
    assert cli.host.wait_for("through").runtime_status.value == "Terminated"


def test_a_host_on_the_memory_store_is_found_by_its_record(tmp_path, capsys, monkeypatch):
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    app_dir = app_folder(tmp_path, port=1)
    with DurableHarness(app_dir, store=MemoryStore()) as host:
        cli = Cli(host, app_dir, [], capsys)
        code, _, err = cli("get-instances")
        assert code == 2 and "for a host on the memory store, pass --url" in err
        record = record_memory_host(app_dir, "PatternsHub", host.base_url)
        code, _, err = cli("start-new", "--function-name", "Sequence", "--id", "mem")
        assert code == 0 and f"Through the host at {host.base_url}" in err
        assert host.wait_for("mem").runtime_status.value == "Completed"
        forget_memory_host(record)
    record = record_memory_host(app_dir, "PatternsHub", "http://127.0.0.1:1")
    assert memory_host(app_dir, "PatternsHub") == "http://127.0.0.1:1"
    record.write_text(json.dumps({"address": "http://127.0.0.1:1", "pid": 2**22 + 1}))
    assert memory_host(app_dir, "PatternsHub") is None  # its process is gone


@pytest.mark.slow
def test_get_instances_pages_through_ten_thousand_instances(tmp_path, capsys):
    store = MemoryStore()
    created = datetime(2026, 1, 1, tzinfo=UTC)
    for number in range(10_000):
        moment = created + timedelta(seconds=number)
        record = InstanceRecord(f"i{number:05}", "Sequence", RuntimeStatus.Completed, moment,
                                moment, "x")  # fmt: skip
        store.records[record.instance_id] = record
    with DurableHarness(PATTERNS_APP, store=store) as host:
        cli = Cli(host, PATTERNS_APP, ["--url", host.base_url], capsys)
        everything = cli.json("get-instances")
        assert [s["instanceId"] for s in everything] == [f"i{n:05}" for n in range(10_000)]
        code, out, err = cli("get-instances", "--json", "--top", "2500")
        first = json.loads(out)
        token = err.split("--continuation-token ")[1].strip()
        rest = cli.json("get-instances", "--continuation-token", token, "--top", "7500")
        assert [s["instanceId"] for s in first + rest] == [f"i{n:05}" for n in range(10_000)]


@pytest.mark.slow
def test_the_module_runs_as_documented(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "devhost",
            "durable",
            "get-instances",
            "--url",
            "http://127.0.0.1:1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "no host answers at http://127.0.0.1:1" in done.stderr


@pytest.mark.slow
def test_start_on_the_memory_store_is_found_without_url_and_forgotten_when_it_stops(tmp_path):
    app_dir = app_folder(tmp_path, port=free_port())
    env = dict(os.environ, TMPDIR=str(tmp_path))
    env.pop("AzureWebJobsStorage", None)
    command = [sys.executable, "-m", "devhost"]
    host = subprocess.Popen(
        [*command, "start", "--store", "memory", "--app-dir", str(app_dir)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for line in host.stdout:  # until it says it has started
            if "Host started" in line:
                break
        durable = [*command, "durable", "start-new", "--function-name", "Sequence"]
        done = subprocess.run(
            [*durable, "--app-dir", str(app_dir)], env=env, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "Through the host at http://127.0.0.1:" in done.stderr
    finally:
        host.send_signal(signal.SIGINT)
        host.communicate(timeout=60)
    assert list((tmp_path / f"devhost-{os.getuid()}" / "memory-hosts").iterdir()) == []


def test_a_host_that_never_answers_a_purge_ends_the_cli_with_a_sentence(monkeypatch):
    """A wedged host: its socket takes the connection (the kernel's backlog) and the request,
    and nothing answers. The long-work bound (15 minutes, shortened here) ends the wait."""
    monkeypatch.setattr(durable_hubs, "LONG_WORK", aiohttp.ClientTimeout(total=0.5))
    with socket.create_server(("127.0.0.1", 0)) as wedged:

        async def purge() -> None:
            hub = durable_hubs.HttpHub(f"http://127.0.0.1:{wedged.getsockname()[1]}")
            try:
                await hub.purge(durable_hubs.Filters())
            finally:
                await hub.close()

        with pytest.raises(durable_hubs.HubError, match=r"did not answer DELETE .* within 0.5 s"):
            asyncio.run(purge())
