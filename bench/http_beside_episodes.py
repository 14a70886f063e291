"""HTTP latency beside busy workers: does a player's request wait behind orchestrator episodes?

    python -m bench.http_beside_episodes [--workers N] [--requests N]

Runs a host with N worker processes (default 2) on the memory store and the workers test app,
and times sequential GETs of an HTTP function twice: with the workers idle, then while every
worker that runs orchestrations has a CPU-bound episode on its episode thread (the app's `Spin`
orchestrator, released at the end): with 2 workers or more those are the background workers,
beside the HTTP ones; a lone worker runs both. Prints p50, p99 and the maximum of each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import aiohttp

from devhost.clock import Clock
from devhost.host import DevHost, ListenAddress
from devhost.settings import load_settings
from devhost.store.memory import MemoryStore
from devhost.taskhub.model import RuntimeStatus
from devhost.workers.pool import WorkerPool

APP = Path(__file__).resolve().parent.parent / "tests" / "devhost" / "apps" / "workers"


async def latencies(session: aiohttp.ClientSession, url: str, requests: int) -> str:
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        async with session.get(url) as response:
            await response.read()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    p50, p99 = times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))]
    return f"p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  max {times[-1]:7.2f} ms  ({requests} requests)"


async def main_async(workers: int, requests: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-http-"))
    host = DevHost(
        load_settings(APP),
        MemoryStore(),
        Clock(),
        listen=ListenAddress("127.0.0.1", 0),
        workers=workers,
    )
    await host.start()
    try:
        url = f"{host.base_url}/api/pid"
        async with aiohttp.ClientSession() as session:
            print(f"{'workers idle':<36} {await latencies(session, url, requests)}", flush=True)
            assert isinstance(host.runner, WorkerPool)
            spinning = sum(w.lane != "http" for w in host.runner.workers)
            ids = [
                await host.engine.start_new("Spin", None, json.dumps(str(folder)))
                for _ in range(spinning)
            ]
            while len(list(folder.glob("spinning-*"))) < spinning:
                await asyncio.sleep(0.01)
            label = f"{spinning} CPU-bound episodes running"
            print(f"{label:<36} {await latencies(session, url, requests)}", flush=True)
        (folder / "release").touch()
        for instance_id in ids:
            await host.engine.wait_for_status(instance_id, {RuntimeStatus.Completed}, 60)
    finally:
        await host.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.http_beside_episodes")
    # In-process, a spinning episode holds the host's loop: no request would answer until it ends.
    parser.add_argument("--workers", type=int, choices=range(1, 11), default=2, metavar="1..10")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(main_async(args.workers, args.requests))


if __name__ == "__main__":
    main()
