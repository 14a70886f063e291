"""Engine benchmark: throughput of the host beside the SDK's own replay floor.

    python -m bench.engine --store memory|azure [--runs N] [--workers N] [--only TEXT]

Each scenario runs several times on a fresh host; the lines print medians. The floor is the time
of the bare SDK replays the scenario needs (the SDK's handle called directly with the histories
of the minimal episodes, no host), so `share` says how much of the SDK's speed the host keeps;
warm orchestrations (devhost/engine/warm.py) replay only new events, so they can pass it.
The per-step cost of a short and a long chain shows whether a step costs more as history grows,
and the memory line is the host's resident memory grown by instances waiting on an event, each
measured in a fresh process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import multiprocessing
import os
import resource
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import azure.durable_functions as df
from azure.functions import OrchestrationContext

from devhost.clock import Clock
from devhost.engine.replay import HistoryCache, build_context
from devhost.engine.warm import DEFAULT_WARM_INSTANCES
from devhost.host import DevHost, ListenAddress
from devhost.runner import InProcessRunner
from devhost.settings import load_settings
from devhost.store.base import TaskHubStore
from devhost.taskhub.history import EventType, parse_time
from devhost.taskhub.model import RuntimeStatus

APP_DIR = Path(__file__).parent / "app"
FINISHED = {RuntimeStatus.Completed, RuntimeStatus.Failed}
DELIVERED = {
    EventType.OrchestratorStarted,
    EventType.ExecutionStarted,
    EventType.TaskCompleted,
    EventType.TaskFailed,
    EventType.TimerFired,
    EventType.EventRaised,
    EventType.SubOrchestrationInstanceCompleted,
    EventType.SubOrchestrationInstanceFailed,
}

Episode = tuple[list[dict[str, Any]], list[dict[str, Any]]]  # (events played, events new)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- the SDK floor ---------------------------------------------------------------------------------


def episodes_of(history: list[dict[str, Any]]) -> list[Episode]:
    """The episodes a history was built from: what each one was given as new."""
    episodes: list[Episode] = []
    played: list[dict[str, Any]] = []
    current: list[dict[str, Any]] | None = None
    produced: list[dict[str, Any]] = []
    for evt in history:
        if evt["EventType"] == EventType.OrchestratorStarted:
            if current is not None:
                episodes.append((list(played), current))
                played += current + produced
            current, produced = [evt], []
        elif current is not None and evt["EventType"] in DELIVERED:
            current.append(evt)
        else:
            produced.append(evt)
    if current is not None:
        episodes.append((list(played), current))
    return episodes


def merged_after_first(history: list[dict[str, Any]]) -> list[Episode]:
    """Two episodes: the start, then every result at once (the minimum for one task_all)."""
    episodes = episodes_of(history)
    first_played, first_new = episodes[0]
    second_played = first_new + [e for e in history if e["EventType"] == EventType.TaskScheduled]
    second_new = [episodes[1][1][0]] + [
        e for e in history if e["EventType"] in (EventType.TaskCompleted, EventType.TaskFailed)
    ]
    return [(first_played, first_new), (second_played, second_new)]


def sdk_floor(
    handle: Callable[[Any], str], instance_id: str, episodes: list[Episode], input_json: str | None
) -> float:
    """Seconds the SDK alone takes to replay these episodes (contexts built beforehand)."""
    contexts = []
    for played, new in episodes:
        cache = HistoryCache()
        cache.extend(played)
        contexts.append(build_context(cache, new, instance_id, None, input_json))
    started = time.perf_counter()
    for context in contexts:
        try:
            handle(OrchestrationContext(context))
        except Exception:  # noqa: BLE001, S112 - a replay that ends the orchestration is fine
            continue
    return time.perf_counter() - started


# -- hosts -----------------------------------------------------------------------------------------


STORES: list[TaskHubStore] = []
WORKERS = 0  # language worker processes of each host (--workers); 0 runs functions in-process


def make_store(kind: str) -> TaskHubStore:
    if kind == "memory":
        from devhost.store.memory import MemoryStore

        store: TaskHubStore = MemoryStore()
    else:
        from devhost.store.azure import AzureStore

        store = AzureStore(os.environ["AzureWebJobsStorage"], f"Bench{time.time_ns()}")
    STORES.append(store)
    return store


WORK_TRIPS: list[int] = []  # storage round trips of each run, up to the end of its timed work


def work_done(host: DevHost) -> None:
    """Count the run's round trips now: the reads that check its results come after."""
    WORK_TRIPS.append(getattr(host.engine.store, "round_trips", 0))


def round_trips_per_step(steps: int) -> str:
    trips = sum(WORK_TRIPS)
    WORK_TRIPS.clear()
    STORES.clear()
    return f"{trips / steps:.2f}"


@contextlib.asynccontextmanager
async def running_host(
    store_kind: str, warm_instances: int | None = None
) -> AsyncIterator[DevHost]:
    settings = load_settings(APP_DIR)
    if warm_instances is not None:
        settings.warm_instances = warm_instances
    host = DevHost(
        settings,
        make_store(store_kind),
        Clock(),
        listen=ListenAddress("127.0.0.1", 0),
        workers=WORKERS,
    )
    await host.start()
    try:
        yield host
    finally:
        await host.stop()


async def finish(host: DevHost, instance_id: str, timeout: float = 600) -> None:
    record = await host.engine.wait_for_status(instance_id, FINISHED, timeout)
    if record is None or record.runtime_status != RuntimeStatus.Completed:
        raise RuntimeError(f"{instance_id} ended as {record and record.runtime_status}")


def handle_of(host: DevHost, name: str) -> Callable[[Any], str]:
    return host.index.orchestrators[name].user_function


# -- scenarios -------------------------------------------------------------------------------------


async def sequential(store: str, steps: int = 100) -> tuple[float, float]:
    async with running_host(store) as host:
        started = time.perf_counter()
        instance_id = await host.engine.start_new("Chain", None, str(steps))
        await finish(host, instance_id)
        elapsed = time.perf_counter() - started
        work_done(host)
        history = await host.engine.get_history(instance_id)
        floor = sdk_floor(handle_of(host, "Chain"), instance_id, episodes_of(history), str(steps))
    return steps / elapsed, steps / floor


async def step_cost(store: str, steps: int) -> tuple[float, float]:
    """Seconds per step of one chain of `steps` activities, start to finish: wall and CPU.

    CPU time (this process, all its threads) is the steadier of the two on a shared machine.
    """
    async with running_host(store) as host:
        wall, cpu = time.perf_counter(), time.process_time()
        await finish(host, await host.engine.start_new("Chain", None, str(steps)))
        return (time.perf_counter() - wall) / steps, (time.process_time() - cpu) / steps


async def fan_out(store: str, count: int = 1000) -> tuple[float, float]:
    async with running_host(store) as host:
        started = time.perf_counter()
        instance_id = await host.engine.start_new("FanOut", None, str(count))
        await finish(host, instance_id)
        elapsed = time.perf_counter() - started
        work_done(host)
        history = await host.engine.get_history(instance_id)
        floor = sdk_floor(
            handle_of(host, "FanOut"), instance_id, merged_after_first(history), str(count)
        )
    return count / elapsed, count / floor


async def many_instances(store: str, instances: int = 500, steps: int = 5) -> tuple[float, float]:
    async with running_host(store) as host:
        started = time.perf_counter()
        ids = await asyncio.gather(
            *(host.engine.start_new("Chain", None, str(steps)) for _ in range(instances))
        )
        await host.engine.wait_idle()  # no timers here: idle means every instance has finished
        elapsed = time.perf_counter() - started
        work_done(host)
        await asyncio.gather(*(finish(host, i, timeout=1) for i in ids))
        sample = ids[:: max(1, instances // 100)]
        floor = 0.0
        for instance_id in sample:
            history = await host.engine.get_history(instance_id)
            floor += sdk_floor(
                handle_of(host, "Chain"), instance_id, episodes_of(history), str(steps)
            )
    total = instances * steps
    return total / elapsed, total / (floor * instances / len(sample))


async def event_round_trip(store: str, samples: int = 200) -> list[float]:
    async with running_host(store) as host:
        client = df.DurableOrchestrationClient(host.client_json())
        ids = [await host.engine.start_new("WaitEvent", None, None) for _ in range(samples)]
        for instance_id in ids:
            await host.engine.wait_for_status(instance_id, {RuntimeStatus.Running}, 30)
        await host.engine.wait_idle()
        times = []
        for instance_id in ids:
            started = time.perf_counter()
            await client.raise_event(instance_id, "Go", 1)
            await finish(host, instance_id)
            times.append(time.perf_counter() - started)
    return times


async def timer_lateness(store: str, samples: int = 100) -> list[float]:
    """How late durable timers fire: the TimerFired event's time minus the FireAt asked for."""
    async with running_host(store) as host:
        ids = await asyncio.gather(
            *(host.engine.start_new("Nap", None, None) for _ in range(samples))
        )
        await asyncio.gather(*(finish(host, i) for i in ids))
        lateness = []
        for instance_id in ids:
            for evt in await host.engine.get_history(instance_id):
                if evt["EventType"] == EventType.TimerFired:
                    late = parse_time(evt["Timestamp"]) - parse_time(evt["FireAt"])
                    lateness.append(late.total_seconds())
    return lateness


async def entity_operations(store: str, operations: int = 2000) -> tuple[float, int]:
    """Signals to one entity, sent 32 at a time: operations applied per second."""
    async with running_host(store) as host:
        gate = asyncio.Semaphore(32)

        async def signal() -> None:
            async with gate:
                await host.engine.signal_entity("Counter", "bench", "add", "1")

        started = time.perf_counter()
        await asyncio.gather(*(signal() for _ in range(operations)))
        await host.engine.wait_idle()
        elapsed = time.perf_counter() - started
        record = await host.engine.read_entity("Counter", "bench")
        applied = int(record.entity_state) if record else 0
    return operations / elapsed, applied


def resident_bytes() -> int:
    """This process's resident memory now (Linux), else its peak."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


async def waiting_memory_async(store: str, instances: int, warm_instances: int) -> tuple[int, int]:
    async with running_host(store, warm_instances) as host:
        gc.collect()
        before = resident_bytes()
        for first in range(0, instances, 500):
            await asyncio.gather(
                *(
                    host.engine.start_new("WaitEvent", None, None)
                    for _ in range(first, min(instances, first + 500))
                )
            )
            await host.engine.wait_idle()
        gc.collect()
        warm = host.runner.warm if isinstance(host.runner, InProcessRunner) else ()
        return resident_bytes() - before, len(warm)


def waiting_memory(store: str, instances: int, warm_instances: int) -> tuple[int, int]:
    """Memory grown by `instances` waiting on an event, and how many are warm (fresh process)."""
    return asyncio.run(waiting_memory_async(store, instances, warm_instances))


# -- report ----------------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def throughput_line(label: str, unit: str, runs: list[tuple[float, float]], target: str) -> str:
    host = statistics.median(r[0] for r in runs)
    floor = statistics.median(r[1] for r in runs)
    share = statistics.median(r[0] / r[1] for r in runs)
    return (
        f"{label:<34} host {host:9.1f} {unit}  SDK floor {floor:9.1f} {unit}  "
        f"share {share:6.1%}  ({len(runs)} runs; {target})"
    )


async def main_async(store: str, runs: int, only: str | None = None) -> None:
    log(f"store: {store}; {runs} runs a scenario; medians below")
    async with running_host(store) as host:
        print(host.runner.describe(), flush=True)
    targets = TARGETS[store]
    for label, scenario, unit, steps in (
        ("sequential chain of 100", sequential, "steps/s", 100),
        ("fan-out/fan-in of 1,000", fan_out, "acts/s", 1000),
        ("500 instances x 5-step chain", many_instances, "steps/s", 2500),
    ):
        if only is not None and only not in label:
            continue
        measured = []
        STORES.clear()
        WORK_TRIPS.clear()
        for run in range(runs):
            log(f"  {label}: run {run + 1}/{runs}")
            measured.append(await scenario(store))
        line = throughput_line(label, unit, measured, targets[label])
        if store == "azure":
            line += f"  storage round trips/step {round_trips_per_step(steps * runs)}"
        print(line, flush=True)
    if only is not None:
        return
    costs: dict[int, list[tuple[float, float]]] = {10: [], 1000: []}
    for run in range(runs):
        for steps in costs:  # interleaved, so that a change in the machine's load hits both
            STORES.clear()  # so that earlier runs' histories do not weigh on this one
            log(f"  chain of {steps}: run {run + 1}/{runs}")
            costs[steps].append(await step_cost(store, steps))
    wall = {n: statistics.median(c[0] for c in costs[n]) * 1000 for n in costs}
    cpu = {n: statistics.median(c[1] for c in costs[n]) * 1000 for n in costs}
    print(
        f"{'per-step cost, chain of 10 / 1,000':<34} CPU {cpu[10]:5.3f} / {cpu[1000]:5.3f} ms  "
        f"ratio {cpu[1000] / cpu[10]:4.2f}  (wall {wall[10]:5.3f} / {wall[1000]:5.3f} ms, "
        f"ratio {wall[1000] / wall[10]:4.2f}; {runs} runs; {targets['step cost']})",
        flush=True,
    )
    log("  external events: 200 round trips")
    trips = await event_round_trip(store)
    print(
        f"{'external event round trip':<34} p50 {percentile(trips, 0.5) * 1000:7.2f} ms  "
        f"p99 {percentile(trips, 0.99) * 1000:7.2f} ms  ({len(trips)} samples; "
        f"{targets['event']})",
        flush=True,
    )
    measured = []
    for run in range(runs):
        log(f"  entity operations: run {run + 1}/{runs}")
        rate, applied = await entity_operations(store)
        if applied != 2000:
            raise RuntimeError(f"the entity applied {applied} of 2000 operations")
        measured.append(rate)
    print(
        f"{'entity operations, one entity':<34} host {statistics.median(measured):9.1f} ops/s"
        f"  ({runs} runs; {targets['entity']})",
        flush=True,
    )
    log("  timers: 100 timers of 200 ms at once")
    late = await timer_lateness(store)
    print(
        f"{'timer lateness':<34} p50 {percentile(late, 0.5) * 1000:7.2f} ms  "
        f"p99 {percentile(late, 0.99) * 1000:7.2f} ms  ({len(late)} samples; "
        f"{targets['timer']})",
        flush=True,
    )
    if store == "memory":
        waiting = 10_000
        spawn = multiprocessing.get_context("spawn")
        sizes = []
        for limit in (DEFAULT_WARM_INSTANCES, waiting, 0):
            log(f"  memory: {waiting} instances waiting, up to {limit} warm (fresh process)")
            with ProcessPoolExecutor(1, mp_context=spawn) as pool:
                grown, warm = pool.submit(waiting_memory, store, waiting, limit).result()
            sizes.append(f"{grown / 2**20:.0f} MB with {warm:,} warm")
        print(
            f"{'10,000 instances waiting (RSS)':<34} " + ", ".join(sizes) + "  (one run each)",
            flush=True,
        )


TARGETS = {
    "memory": {
        "sequential chain of 100": "target >= 5x the floor",
        "fan-out/fan-in of 1,000": "target >= 1,000 acts/s",
        "500 instances x 5-step chain": "target >= the floor; >= 130% with --workers 2",
        "event": "target p50 < 5 ms",
        "timer": "no target",
        "entity": "target >= 5,000 ops/s",
        "step cost": "target ratio <= 1.2",
    },
    "azure": {
        "sequential chain of 100": "target >= 50 steps/s",
        "fan-out/fan-in of 1,000": "target >= 300 acts/s",
        "500 instances x 5-step chain": "target >= 40% of the floor",
        "event": "target p50 < 10 ms, p99 < 50 ms",
        "timer": "target p99 < 100 ms",
        "entity": "target >= 300 ops/s",
        "step cost": "no target",
    },
}


@contextlib.contextmanager
def storage_for(store: str):
    """On --store azure without AzureWebJobsStorage, a temporary Azurite for the run."""
    if store != "azure" or os.environ.get("AzureWebJobsStorage"):
        yield
        return
    import tempfile

    from devhost.azurite import Azurite

    with tempfile.TemporaryDirectory() as folder, Azurite(Path(folder)) as azurite:
        os.environ["AzureWebJobsStorage"] = azurite.connection_string
        log(f"Azurite started for this run on ports {azurite.ports}")
        try:
            yield
        finally:
            del os.environ["AzureWebJobsStorage"]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.engine", description=__doc__)
    parser.add_argument("--store", choices=("memory", "azure"), default="memory")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--workers", type=int, default=0, help="worker processes per host (default 0: in-process)"
    )
    parser.add_argument("--only", help="run only the throughput scenarios whose label has TEXT")
    args = parser.parse_args()
    global WORKERS
    WORKERS = args.workers
    with storage_for(args.store):
        asyncio.run(main_async(args.store, args.runs, args.only))


if __name__ == "__main__":
    main()
