"""gRPC benchmark: durabletask apps on devhost's sidecar beside the SDK's in-memory test backend.

    python -m bench.grpc --store memory|azure [--runs N] [--only TEXT]

The same durabletask worker and client (threads of this process) run four scenarios against
each backend, a fresh backend per run, the backends taking turns: a chain of 100 activities, a
fan-out of 1,000, 500 instances of 5 steps, and an external event's round trip (raise, then wait
for the instance to finish). Each backend is a process of its own, as an app meets it:
`devhost sidecar`, and the SDK's `create_test_backend` in a bare Python process. Lines print
medians; `ratio` is devhost's figure over the in-memory backend's (above 1: devhost is faster).
Run it by hand; it is not part of the suite.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from durabletask import client, task, worker

from bench.engine import storage_for
from devhost.azurite import answers, free_port

TIMEOUT = 600


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- the app -----------------------------------------------------------------------------------


def step(_: task.ActivityContext, value: int) -> int:
    return value + 1


def chain(ctx: task.OrchestrationContext, steps: int):
    value = 0
    for _ in range(steps):
        value = yield ctx.call_activity(step, input=value)
    return value


def fan_out(ctx: task.OrchestrationContext, count: int):
    results = yield task.when_all([ctx.call_activity(step, input=i) for i in range(count)])
    return len(results)


def waits(ctx: task.OrchestrationContext, _: Any):
    return (yield ctx.wait_for_external_event("go"))


# -- backends ----------------------------------------------------------------------------------


IN_MEMORY_BACKEND = (
    "import sys, threading\n"
    "from durabletask.testing import create_test_backend\n"
    "create_test_backend(port=int(sys.argv[1]))\n"
    "threading.Event().wait()\n"
)


@contextlib.contextmanager
def serving(command: list[str], port: int) -> Iterator[str]:
    """A backend process, until the block ends; its address once it listens."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not answers("127.0.0.1", port, timeout=0.2):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the backend did not listen: {' '.join(command)}")
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(30)


def devhost_backend(store: str) -> contextlib.AbstractContextManager[str]:
    port = free_port()
    command = [sys.executable, "-m", "devhost", "sidecar", "--port", str(port)]
    command += ["--store", store, "--default-hub", f"Bench{time.time_ns()}"]
    return serving(command, port)


def in_memory_backend(_store: str) -> contextlib.AbstractContextManager[str]:
    port = free_port()
    return serving([sys.executable, "-c", IN_MEMORY_BACKEND, str(port)], port)


BACKENDS = {"devhost": devhost_backend, "in-memory": in_memory_backend}


@contextlib.contextmanager
def connected(address: str) -> Iterator[client.TaskHubGrpcClient]:
    w = worker.TaskHubGrpcWorker(host_address=address)
    for fn in (chain, fan_out, waits):
        w.add_orchestrator(fn)
    w.add_activity(step)
    w.start()
    c = client.TaskHubGrpcClient(host_address=address)
    try:
        run_one(c, chain, 1)  # the worker has connected: its start is not timed
        yield c
    finally:
        c.close()
        w.stop()


# -- scenarios: each returns its figure (higher is better, except the round trip) --------------


def run_one(c: client.TaskHubGrpcClient, orchestrator: Any, value: Any) -> None:
    instance_id = c.schedule_new_orchestration(orchestrator, input=value)
    state = c.wait_for_orchestration_completion(instance_id, timeout=TIMEOUT)
    assert state is not None and state.runtime_status == client.OrchestrationStatus.COMPLETED


def chain_of_100(c: client.TaskHubGrpcClient) -> float:
    started = time.perf_counter()
    run_one(c, chain, 100)
    return 100 / (time.perf_counter() - started)


def fan_out_of_1000(c: client.TaskHubGrpcClient) -> float:
    started = time.perf_counter()
    run_one(c, fan_out, 1000)
    return 1000 / (time.perf_counter() - started)


def instances_500_x_5(c: client.TaskHubGrpcClient) -> float:
    started = time.perf_counter()
    ids = [c.schedule_new_orchestration(chain, input=5) for _ in range(500)]
    for instance_id in ids:
        state = c.wait_for_orchestration_completion(instance_id, timeout=TIMEOUT)
        assert state is not None and state.runtime_status == client.OrchestrationStatus.COMPLETED
    return 500 / (time.perf_counter() - started)


def event_round_trip(c: client.TaskHubGrpcClient, samples: int = 30) -> float:
    """Median milliseconds from raising the event to seeing the instance complete."""
    times = []
    for _ in range(samples):
        instance_id = c.schedule_new_orchestration(waits)
        c.wait_for_orchestration_start(instance_id, timeout=TIMEOUT)
        started = time.perf_counter()
        c.raise_orchestration_event(instance_id, "go", data=1)
        c.wait_for_orchestration_completion(instance_id, timeout=TIMEOUT)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


SCENARIOS: list[tuple[str, str, Callable[[client.TaskHubGrpcClient], float], bool]] = [
    ("chain of 100", "steps/s", chain_of_100, True),
    ("fan-out of 1,000", "activities/s", fan_out_of_1000, True),
    ("500 instances x 5 steps", "instances/s", instances_500_x_5, True),
    ("external event round trip", "ms", event_round_trip, False),
]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.grpc", description=__doc__)
    parser.add_argument("--store", choices=("memory", "azure"), default="memory")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", help="run only the scenarios whose label has TEXT")
    args = parser.parse_args()
    with storage_for(args.store):
        log(f"devhost store: {args.store}; {args.runs} runs a scenario; medians below")
        for label, unit, scenario, higher_is_better in SCENARIOS:
            if args.only and args.only not in label:
                continue
            values: dict[str, list[float]] = {name: [] for name in BACKENDS}
            for _ in range(args.runs):
                for name, backend in BACKENDS.items():
                    with backend(args.store) as address, connected(address) as c:
                        values[name].append(scenario(c))
            figures = {name: statistics.median(v) for name, v in values.items()}
            ratio = figures["devhost"] / figures["in-memory"]
            if not higher_is_better:
                ratio = 1 / ratio
            print(
                f"{label:<28} devhost {figures['devhost']:8.1f} {unit:<12} "
                f"in-memory {figures['in-memory']:8.1f} {unit:<12} ratio {ratio:5.2f} "
                f"({args.runs} runs)",
                flush=True,
            )


if __name__ == "__main__":
    main()
