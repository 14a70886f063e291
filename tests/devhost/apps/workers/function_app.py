"""An app for the worker-process tests: functions that crash their process, print, log, hold
on until a test lets them go, and tell which process ran them. Each takes a folder (its input)
where it leaves what a test looks at."""

import fcntl
import logging
import os
import time
from pathlib import Path

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
HOLD_SECONDS = 60  # how long a held function waits for its release before it gives up


def wait_for(path: Path) -> None:
    """Until a test creates `path` (a test's deadline ends it sooner)."""
    deadline = time.monotonic() + HOLD_SECONDS
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)


@app.orchestration_trigger(context_name="context")
def Steps(context: df.DurableOrchestrationContext):
    """Five activities in a row; each episode logs the process it ran in."""
    folder = context.get_input()
    logging.info("episode of %s in pid %d", context.instance_id, os.getpid())
    results = []
    for step in range(5):
        results.append((yield context.call_activity("Record", [folder, step])))
    return results


@app.activity_trigger(input_name="job")
def Record(job: list) -> int:
    """Appends one line to the folder's `effects` file: its effect, counted by the test."""
    folder, step = job
    with open(Path(folder) / "effects", "a") as effects:
        effects.write(f"{step}\n")
    return step


@app.orchestration_trigger(context_name="context")
def HeldThenRecorded(context: df.DurableOrchestrationContext):
    folder = context.get_input()
    held = yield context.call_activity("Hold", folder)
    recorded = yield context.call_activity("Record", [folder, "after"])
    return [held, recorded]


@app.activity_trigger(input_name="folder")
def Hold(folder: str) -> str:
    """Says which process holds it (`holding-<pid>`), then waits for `release`, then records."""
    (Path(folder) / f"holding-{os.getpid()}").touch()
    wait_for(Path(folder) / "release")
    with open(Path(folder) / "effects", "a") as effects:
        effects.write("held\n")
    return "released"


@app.orchestration_trigger(context_name="context")
def CallOne(context: df.DurableOrchestrationContext):
    name, value = context.get_input()
    return (yield context.call_activity(name, value))


@app.activity_trigger(input_name="folder")
def ExitOnce(folder: str) -> str:
    """Ends its process the first time (as a crash would), and succeeds when run again."""
    marker = Path(folder) / "exited"
    if not marker.exists():
        marker.touch()
        os._exit(3)
    return "survived"


@app.activity_trigger(input_name="folder")
def Poison(folder: str) -> str:
    """Ends its process every time."""
    with open(Path(folder) / "poison-runs", "a") as runs:
        runs.write("run\n")
    os._exit(7)


@app.activity_trigger(input_name="words")
def Chatty(words: str) -> str:
    """Prints (which must not reach the host's channel) and logs (which must reach its log)."""
    print(f"printed {words}")
    print("\x00\x00\x00\x10 not a frame")
    logging.getLogger("chatty").warning("logged %s", words)
    return words.upper()


@app.activity_trigger(input_name="nothing")
def WhichProcess(nothing: None) -> int:
    return os.getpid()


@app.orchestration_trigger(context_name="context")
def Spin(context: df.DurableOrchestrationContext):
    """An episode that keeps its worker's CPU busy until the test creates `release`."""
    folder = Path(context.get_input())
    (folder / f"spinning-{context.instance_id}").touch()
    clock = time.monotonic  # a test's fixture, not an example: devhost: allow-nondeterminism
    deadline = clock() + HOLD_SECONDS
    while not (folder / "release").exists() and clock() < deadline:
        for _ in range(200):  # pure CPU between looks, as a replay is
            sum(range(10_000))
    return "spun"


@app.route(route="pid", methods=["GET"])
def pid(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(str(os.getpid()))


@app.route(route="hold", methods=["GET"])
def hold(req: func.HttpRequest) -> func.HttpResponse:
    """Says which process holds it (`http-<pid>` in the folder of `?folder=`), then waits for
    `release`."""
    folder = Path(req.params["folder"])
    (folder / f"http-{os.getpid()}").touch()
    wait_for(folder / "release")
    return func.HttpResponse("released")


@app.orchestration_trigger(context_name="context")
def FanOut(context: df.DurableOrchestrationContext):
    """N activities at once, each `Overlapping`."""
    folder, count = context.get_input()
    tasks = [context.call_activity("Overlapping", [folder, i]) for i in range(count)]
    return (yield context.task_all(tasks))


@app.activity_trigger(input_name="job")
def Overlapping(job: list) -> int:
    """Counts the activities running with it (in `running-at-once`), holding on a moment so that
    any that may run beside it do."""
    folder, number = job
    running = Path(folder) / "running"
    with open(Path(folder) / "lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        now = int(running.read_text() or 0) + 1 if running.exists() else 1
        running.write_text(str(now))
        with open(Path(folder) / "running-at-once", "a") as record:
            record.write(f"{now}\n")
        fcntl.flock(lock, fcntl.LOCK_UN)
    time.sleep(0.05)  # held, as a slow call would be: the others' chance to overlap
    with open(Path(folder) / "lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        running.write_text(str(int(running.read_text()) - 1))
        fcntl.flock(lock, fcntl.LOCK_UN)
    return number
