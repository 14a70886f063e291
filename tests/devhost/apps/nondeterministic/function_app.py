"""Orchestrators that break the Durable Functions code constraints, and one that keeps them.

Each of the first three decides what to schedule from something outside its history, so a
replay of it asks for other work than it recorded: on Azure every episode is such a replay.
"""

import random
from datetime import datetime, timedelta

import azure.durable_functions as df

app = df.DFApp()
ROUNDS = 20  # coin flips: a replay draws them all again, and ends up elsewhere
POLL_WINDOW = timedelta(milliseconds=50)
DIRECTIONS = {"North", "South", "East", "West"}  # a set: its order is the process's hash seed's


@app.orchestration_trigger(context_name="context")
def CoinFlips(context: df.DurableOrchestrationContext):
    """A `random` branch."""
    sides = []
    for _ in range(ROUNDS):
        side = "Heads" if random.random() < 0.5 else "Tails"
        sides.append((yield context.call_activity(side)))
    return sides


@app.orchestration_trigger(context_name="context")
def PollUntilDeadline(context: df.DurableOrchestrationContext):
    """A `datetime.now()` branch: each replay computes its own deadline, so the number of polls
    depends on when the code runs (on Azure, the loop never ends)."""
    deadline = datetime.now() + POLL_WINDOW
    polls = 0
    while datetime.now() < deadline:
        yield context.call_activity("Poll", polls)
        polls += 1
    return polls


@app.orchestration_trigger(context_name="context")
def WalkDirections(context: df.DurableOrchestrationContext):
    """Iteration over a set of activity names, then a wait for the event `Continue`."""
    walked = []
    for direction in DIRECTIONS:
        walked.append((yield context.call_activity(direction)))
    yield context.wait_for_external_event("Continue")
    return walked


@app.orchestration_trigger(context_name="context")
def Deterministic(context: df.DurableOrchestrationContext):
    """The same three calls, in the same order, whatever the replay: the clean one."""
    started = context.current_utc_datetime
    first = yield context.call_activity("Heads")
    rest = yield context.task_all([context.call_activity(d) for d in sorted(DIRECTIONS)])
    yield context.create_timer(started + timedelta(seconds=1))
    return [first, *rest, str(context.new_uuid())]


@app.activity_trigger(input_name="value")
def Heads(value: str) -> str:
    return "heads"


@app.activity_trigger(input_name="value")
def Tails(value: str) -> str:
    return "tails"


@app.activity_trigger(input_name="value")
def Poll(value: int) -> int:
    return value


@app.activity_trigger(input_name="value")
def North(value: str) -> str:
    return "north"


@app.activity_trigger(input_name="value")
def South(value: str) -> str:
    return "south"


@app.activity_trigger(input_name="value")
def East(value: str) -> str:
    return "east"


@app.activity_trigger(input_name="value")
def West(value: str) -> str:
    return "west"
