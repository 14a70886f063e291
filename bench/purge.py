"""Purge benchmark: purging thousands of finished instances on Azurite, through the host.

    python -m bench.purge [--instances 10000] [--events 6] [--runs 3]

Each run fills a new hub with finished instances (a state row, `--events` history rows and a
listing row each; the fill is not timed), then times one purge by filter through the host's
DF HTTP API (`DELETE /runtime/webhooks/durabletask/instances?createdTimeFrom=...`), and
`delete-task-hub` through the host on a second fill. The lines print medians over the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from bench.dashboard import APP_DIR, records
from devhost.azurite import Azurite
from devhost.store.azure import STATE_KEY, AzureStore
from devhost.store.azure_rows import record_entity
from devhost.store.bounded import bounded_gather
from devhost.taskhub.model import InstanceRecord
from devhost.testing import DurableHarness

PURGE_PATH = "/runtime/webhooks/durabletask/instances?createdTimeFrom=2000-01-01T00:00:00Z"
FILL_AT_ONCE = 64


async def fill(store: AzureStore, rows: list[InstanceRecord], events: int) -> None:
    """Each instance's partition in one transaction, and its listing row (not timed)."""
    await store.open()
    try:

        async def one(record: InstanceRecord) -> None:
            state = record_entity(record, STATE_KEY) | {"Next": events}
            history = [
                {
                    "PartitionKey": record.instance_id,
                    "RowKey": f"h{n:08}",
                    "Event": json.dumps({"EventType": 4, "EventId": n, "Result": "1"}),
                }
                for n in range(events)
            ]
            await store._submit([("upsert", row, None) for row in [state, *history]])
            store.listing.mark(state)

        await bounded_gather((one(r) for r in rows), FILL_AT_ONCE)
        await store.listing.settled()
    finally:
        await store.close()


def timed_delete(host: DurableHarness, path: str) -> tuple[float, dict]:
    """Seconds the host takes to answer one DELETE (longer than the harness's 30 s allows)."""
    request = urllib.request.Request(host.base_url + path, method="DELETE")
    began = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600) as response:
        body = json.loads(response.read())
    return time.perf_counter() - began, body


def run_once(connection: str, rows: list[InstanceRecord], events: int) -> tuple[float, float]:
    """Seconds to purge the instances by filter, and to delete the hub holding them."""
    seconds = []
    for path in (PURGE_PATH, "/_devhost/api/hub"):
        hub = f"P{uuid.uuid4().hex[:12]}"
        asyncio.run(fill(AzureStore(connection, hub), rows, events))
        with DurableHarness(
            APP_DIR, store=AzureStore(connection, hub), virtual_clock=False
        ) as host:
            took, body = timed_delete(host, path)
            if path == PURGE_PATH:
                assert body == {"instancesDeleted": len(rows)}, body
            assert host.http("GET", "/runtime/webhooks/durabletask/instances?top=1")[2] == []
        seconds.append(took)
    return seconds[0], seconds[1]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.purge", description=__doc__)
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=6, help="history rows per instance")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows = records(args.instances)
    purges, deletes = [], []
    with tempfile.TemporaryDirectory() as folder, Azurite(Path(folder)) as azurite:
        for run in range(args.runs):
            print(f"run {run + 1}: filling {args.instances:,} instances twice ...", file=sys.stderr)
            purge, delete = run_once(azurite.connection_string, rows, args.events)
            print(f"  purge {purge:.1f} s, delete-task-hub {delete:.1f} s", file=sys.stderr)
            purges.append(purge)
            deletes.append(delete)
    count, purge, delete = args.instances, statistics.median(purges), statistics.median(deletes)
    print(
        f"purge azure, {count:,} finished instances ({args.events} history rows each): "
        f"by filter {count / purge:,.0f} instances/s ({purge:.1f} s), delete-task-hub "
        f"{count / delete:,.0f} instances/s ({delete:.2f} s) (medians of {args.runs} runs)"
    )


if __name__ == "__main__":
    main()
