"""Dashboard benchmark: the first page of the instance list (newest first, and by status), and
the counts, on a big hub. The very first page after the host starts is timed apart: on Azure it
reads the listing once to keep every instance's summary in memory.

    python -m bench.dashboard --store memory|azure [--instances 10000] [--runs 20]

The hub is filled with finished instances (their state and listing rows only),
then the page's two requests are timed through the host's HTTP server; the lines print medians.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from azure.core.exceptions import ServiceRequestError

from devhost.azurite import Azurite
from devhost.store.azure import STATE_KEY, AzureStore
from devhost.store.azure_rows import record_entity
from devhost.store.memory import MemoryStore
from devhost.taskhub.model import InstanceRecord, RuntimeStatus
from devhost.testing import DurableHarness

APP_DIR = Path(__file__).parent / "app"
STATUSES = [RuntimeStatus.Completed] * 8 + [RuntimeStatus.Failed, RuntimeStatus.Terminated]


def records(count: int) -> list[InstanceRecord]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        InstanceRecord(
            f"bench-{n:06}",
            "Chain",
            STATUSES[n % len(STATUSES)],
            start + timedelta(seconds=n),
            start + timedelta(seconds=n),
            "x",
            input="1",
        )  # fmt: skip
        for n in range(count)
    ]


async def fill_azure(store: AzureStore, rows: list[InstanceRecord]) -> None:
    """Finished instances straight into the hub, many at a time (the fill is not timed): each
    one's state row, and its listing row (the list reads nothing else)."""
    await store.open()
    try:
        history = store._history

        async def upsert(state: dict) -> None:
            for attempt in range(5):  # a busy machine's Azurite may drop a connection
                try:
                    await history.upsert_entity(state)
                    return
                except ServiceRequestError:
                    if attempt == 4:
                        raise
                    await asyncio.sleep(0.5 * (attempt + 1))

        for first in range(0, len(rows), 32):
            states = [record_entity(r, STATE_KEY) | {"Next": 0} for r in rows[first : first + 32]]
            await asyncio.gather(*(upsert(state) for state in states))
            for state in states:
                store.listing.mark(state)
        await store.listing.settled()
    finally:
        await store.close()


def median_ms(host: DurableHarness, path: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        status, _, body = host.http("GET", path)
        times.append((time.perf_counter() - began) * 1000)
        assert status == 200, body
    return statistics.median(times)


def measure(store, label: str, count: int, runs: int) -> None:
    with DurableHarness(APP_DIR, store=store, virtual_clock=False) as host:
        first = median_ms(host, "/_devhost/api/instances?top=50", 1)
        page = median_ms(host, "/_devhost/api/instances?top=50", runs)
        by_status = median_ms(host, "/_devhost/api/instances?top=50&sort=runtimeStatus", runs)
        status, _, body = host.http("GET", "/_devhost/api/counts")
        assert sum(body.values()) == count, body
        counts = median_ms(host, "/_devhost/api/counts", max(3, runs // 4))
    print(
        f"dashboard {label}, {count:,} instances: first page of 50 {page:.1f} ms "
        f"(by status {by_status:.1f} ms; the first after start {first:.0f} ms), "
        f"counts by status {counts:.0f} ms (medians over {runs} and {max(3, runs // 4)} runs)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard", description=__doc__)
    parser.add_argument("--store", choices=("memory", "azure"), default="memory")
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    rows = records(args.instances)
    if args.store == "memory":
        store = MemoryStore()
        store.records.update((r.instance_id, r) for r in rows)
        measure(store, "memory", args.instances, args.runs)
        return
    with tempfile.TemporaryDirectory() as folder, Azurite(Path(folder)) as azurite:
        hub = f"B{uuid.uuid4().hex[:12]}"
        print(f"filling {args.instances:,} status rows in Azurite ...", file=sys.stderr)
        asyncio.run(fill_azure(AzureStore(azurite.connection_string, hub), rows))
        measure(AzureStore(azurite.connection_string, hub), "azure", args.instances, args.runs)


if __name__ == "__main__":
    main()
