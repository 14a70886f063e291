"""A fresh start and another port: `make reset`, `make run PORT=...`, a reused Azurite announced."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

from azure.data.tables import TableServiceClient
from azure.storage.queue import QueueClient

from devhost.azurite import free_port
from devhost.store.azure import AzureStore
from devhost.testing import DurableHarness
from dungeon.repository import TABLES
from tests.dungeon.conftest import REPO, Game, game_env


def app_dir_with(tmp_path, hub: str, settings: dict) -> str:
    """The game's app folder, with its own host.json hub and local.settings.json."""
    for name in ("function_app.py", "dungeon", "activities", "orchestrators"):
        (tmp_path / name).symlink_to(REPO / name)
    host = json.loads((REPO / "host.json").read_text())
    host["extensions"]["durableTask"]["hubName"] = hub
    (tmp_path / "host.json").write_text(json.dumps(host))
    (tmp_path / "local.settings.json").write_text(json.dumps(settings))
    return str(tmp_path)


def test_reset_forgets_every_game_and_frees_the_names(azurite, hub_name, player, tmp_path):
    env = game_env(azurite)
    with DurableHarness(REPO, env=env, store=AzureStore(azurite.connection_string, hub_name)) as h:
        Game(h).win(player)
    tables = TableServiceClient.from_connection_string(azurite.connection_string)
    hub_tables = [t.name for t in tables.list_tables() if t.name.startswith(hub_name)]
    assert hub_tables, "the game left its task hub"
    app_dir = app_dir_with(tmp_path, hub_name, {"Values": {}})
    result = subprocess.run(
        [sys.executable, "-m", "dungeon.reset", "--app-dir", app_dir],
        env=dict(os.environ, AzureWebJobsStorage=azurite.connection_string),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "A fresh start" in result.stdout
    for name in TABLES:
        assert list(tables.get_table_client(name).list_entities()) == [], name
    assert not [t.name for t in tables.list_tables() if t.name.startswith(hub_name)]
    queue = QueueClient.from_connection_string(azurite.connection_string, "console")
    assert queue.peek_messages() == []
    with DurableHarness(REPO, env=env, store=AzureStore(azurite.connection_string, hub_name)) as h:
        game = Game(h)
        assert game.new_user(player)[0] == 202, "the name is free again"
        h.idle()


def test_reset_refuses_while_a_host_runs_on_the_hub(azurite, hub_name, player, tmp_path):
    env = game_env(azurite)
    app_dir = app_dir_with(tmp_path, hub_name, {"Values": {}})
    with DurableHarness(REPO, env=env, store=AzureStore(azurite.connection_string, hub_name)) as h:
        assert Game(h).new_user(player)[0] == 202
        h.idle()
        result = subprocess.run(
            [sys.executable, "-m", "dungeon.reset", "--app-dir", app_dir],
            env=dict(os.environ, AzureWebJobsStorage=azurite.connection_string),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode != 0
        assert f"is running on task hub '{hub_name}'" in result.stderr
        assert "Nothing was reset" in result.stderr
        assert Game(h).workflow(player, "UserConfirmationWorkflow")["status"] == "Running"


def test_make_run_takes_a_port_and_otherwise_leaves_it_to_the_settings():
    def dry_run(*args: str) -> str:
        result = subprocess.run(
            ["make", "-n", "run", *args], cwd=REPO, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        return next(line for line in result.stdout.splitlines() if "devhost up" in line)

    assert "--port 8080" in dry_run("PORT=8080")
    assert "--port" not in dry_run()
    assert (
        "dungeon.reset"
        in subprocess.run(
            ["make", "-n", "reset"], cwd=REPO, capture_output=True, text=True, timeout=60
        ).stdout
    )


def test_up_announces_storage_already_running_and_listens_on_local_http_port(
    azurite, hub_name, tmp_path
):
    port = free_port()
    settings = {
        "Values": {"AzureWebJobsStorage": azurite.connection_string},
        "Host": {"LocalHttpPort": port},
    }
    app_dir = app_dir_with(tmp_path, hub_name, settings)
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AzureWebJobs", "DUN"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "devhost", "up", "--app-dir", app_dir, "--store", "azure"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        first = process.stdout.readline()
        assert first.startswith("Using the storage already running at http://127.0.0.1:"), first
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/Stats", timeout=5) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)  # waiting for a child process to listen: no event to wait on
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)
