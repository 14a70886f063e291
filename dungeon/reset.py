"""A fresh start: every game forgotten, every name free again, the installs left alone.

    python -m dungeon.reset [--app-dir DIR]        (what `make reset` runs)

It empties the game's tables (their rows; the tables stay), clears the `console` queue, and
deletes the task hub: the tables and queues named after `extensions.durableTask.hubName` in
host.json. Storage is the account of AzureWebJobsStorage (the environment, or the app's
local.settings.json). Stop the game first: a host running on the hub would lose it under its
feet. When the account is the local emulator and no Azurite answers, the emulator's data
folder `.azurite/` (where `make run` keeps it) is removed instead, which forgets the same.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sys
from datetime import UTC, datetime
from itertools import groupby
from pathlib import Path

from azure.core.exceptions import ResourceNotFoundError, ServiceRequestError
from azure.data.tables import TableServiceClient
from azure.storage.queue import QueueServiceClient

from .narration import QUEUE
from .repository import TABLES

EMULATOR_TABLE_PORT = 10002
BATCH = 100  # the most operations one table transaction may hold


def app_connection(app_dir: Path) -> str:
    value = os.environ.get("AzureWebJobsStorage")
    settings = app_dir / "local.settings.json"
    if not value and settings.exists():
        value = json.loads(settings.read_text()).get("Values", {}).get("AzureWebJobsStorage")
    if not value:
        raise SystemExit("AzureWebJobsStorage is not set (nor in local.settings.json).")
    return value


def hub_name(app_dir: Path) -> str:
    host = json.loads((app_dir / "host.json").read_text())
    hub = host.get("extensions", {}).get("durableTask", {}).get("hubName")
    if not hub or "%" in hub:
        raise SystemExit("host.json names no task hub (extensions.durableTask.hubName).")
    return hub


def is_emulator(connection: str) -> bool:
    return connection.replace(" ", "").lower().startswith("usedevelopmentstorage=true")


def emulator_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", EMULATOR_TABLE_PORT), timeout=0.5):
            return True
    except OSError:
        return False


def empty_table(service: TableServiceClient, name: str) -> int:
    """Delete every row of a table (it may not exist yet); the number deleted."""
    table = service.get_table_client(name)
    try:
        rows = list(table.list_entities(select=["PartitionKey", "RowKey"]))
    except ResourceNotFoundError:
        return 0
    rows.sort(key=lambda row: row["PartitionKey"])
    for _, partition in groupby(rows, key=lambda row: row["PartitionKey"]):
        keys = list(partition)
        for start in range(0, len(keys), BATCH):
            table.submit_transaction([("delete", row) for row in keys[start : start + BATCH]])
    return len(rows)


def hub_holder(connection: str, hub: str) -> str | None:
    """Who holds the task hub's lease now (a running local host), if anyone."""
    table = TableServiceClient.from_connection_string(connection).get_table_client(f"{hub}Leases")
    try:
        lease = table.get_entity("lease", hub)
    except ResourceNotFoundError:
        return None
    expires = lease.get("ExpiresAt")
    return lease.get("Owner", "a host") if expires and expires > datetime.now(UTC) else None


def reset(connection: str, hub: str) -> list[str]:
    """Empty the game's tables and queue, delete the hub; one line of report per thing done."""
    tables = TableServiceClient.from_connection_string(connection)
    queues = QueueServiceClient.from_connection_string(connection)
    report = []
    for name in TABLES:
        report.append(f"Emptied table {name} ({empty_table(tables, name)} rows)")
    try:
        queues.get_queue_client(QUEUE).clear_messages()
        report.append(f"Cleared queue {QUEUE}")
    except ResourceNotFoundError:
        pass
    prefix = hub.lower()
    for table in list(tables.list_tables()):
        if table.name.lower().startswith(prefix):
            tables.delete_table(table.name)
            report.append(f"Deleted task hub table {table.name}")
    for queue in list(queues.list_queues(name_starts_with=prefix)):
        queues.delete_queue(queue.name)
        report.append(f"Deleted task hub queue {queue.name}")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dungeon.reset",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--app-dir", default=".", help="the folder of host.json (default: .)")
    args = parser.parse_args(argv)
    app_dir = Path(args.app_dir).resolve()
    connection = app_connection(app_dir)
    hub = hub_name(app_dir)
    if is_emulator(connection) and not emulator_answers():
        data = app_dir / ".azurite"
        shutil.rmtree(data, ignore_errors=True)
        print(f"Azurite is not running: removed its data folder {data}. A fresh start.")
        return 0
    try:
        holder = hub_holder(connection, hub)
        if holder is not None:
            raise SystemExit(
                f"A host ({holder}) is running on task hub '{hub}': stop it (Ctrl-C in `make run`)"
                " first. Nothing was reset."
            )
        for line in reset(connection, hub):
            print(line, flush=True)
    except ServiceRequestError as err:
        raise SystemExit(f"Storage is unreachable ({type(err).__name__}): nothing reset.") from None
    print(f"A fresh start: no games, an empty '{QUEUE}' queue, no task hub '{hub}'.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
