"""Orchestrator functions: deterministic. Time, ids and settings come from the context and
the input the client put together; every narration line is an activity."""

from datetime import timedelta

import azure.durable_functions as df

from dungeon import stats, workflows

bp = df.Blueprint()
USER_COUNTER = df.EntityId(stats.COUNTER_ENTITY, stats.COUNTER_KEY)
# Every activity reads or writes storage, which may be briefly away (a restarting emulator, a
# throttled account): the runtime retries an activity only when asked, so each one is asked to,
# for about 15 seconds. Activities are idempotent, so a retry repeats nothing.
STORAGE_RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=2000, max_number_of_attempts=8)


def call(context: df.DurableOrchestrationContext, activity: str, data: object):
    """An activity, retried while storage is away."""
    return context.call_activity_with_retry(activity, STORAGE_RETRY, data)


class Story:
    """Narration lines of one orchestration, each with the time and a key that replay keeps."""

    def __init__(self, context: df.DurableOrchestrationContext, user: str) -> None:
        self.context = context
        self.user = user
        self.count = 0

    def job(self, **fields) -> dict:
        """An activity's input, with the `at` and `key` its narration line will carry."""
        self.count += 1
        at = self.context.current_utc_datetime.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return {
            "user": self.user,
            "at": at,
            "key": f"{self.context.instance_id}~{self.count:03d}",
            **fields,
        }

    def say(self, text: str):
        return call(self.context, "Narrate", self.job(text=text))


def start_workflow(context: df.DurableOrchestrationContext, workflow: str, game: dict):
    """Start a workflow as its own instance (not a child), through an activity."""
    return call(
        context,
        "StartWorkflow",
        {
            "workflow": workflow,
            "instanceId": workflows.instance_id(workflow, game["name"]),
            "input": game,
        },
    )


def _minutes(seconds: float) -> str:
    if seconds % 60 == 0:
        minutes = int(seconds // 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds:g} seconds"


@bp.orchestration_trigger(context_name="context")
def RunUserParallelWorkflow(context: df.DurableOrchestrationContext):
    """Fan-out/fan-in: the user's universe is created in parallel, then confirmation."""
    game = context.get_input()
    story = Story(context, game["name"])
    seed = game["seed"]
    _, monster, room, items = yield context.task_all(
        [
            call(context, "CreateUser", story.job()),
            call(context, "CreateMonster", story.job(seed=seed)),
            call(context, "CreateRoom", story.job(seed=seed)),
            call(context, "CreateInventory", story.job(seed=seed)),
        ]
    )
    universe = {"monster": monster, "room": room["name"], **items}
    context.signal_entity(USER_COUNTER, "created")
    return (
        yield context.call_sub_orchestrator(
            workflows.CONFIRMATION,
            {**game, "universe": universe},
            workflows.instance_id(workflows.CONFIRMATION, game["name"]),
        )
    )


@bp.orchestration_trigger(context_name="context")
def UserConfirmationWorkflow(context: df.DurableOrchestrationContext):
    """Human interaction: a durable timer races the ApprovalTask event.

    Improve: ConfirmUser records a confirmation in the Confirmation table before it raises
    ApprovalTask, so one that came before this instance existed is found first, and when the
    timer fires (or a decline arrives) the table decides: a confirmation recorded in time wins.
    """
    game = context.get_input()
    name = game["name"]
    story = Story(context, name)
    window = float(game["confirm_seconds"])
    deadline = context.current_utc_datetime + timedelta(seconds=window)
    context.set_custom_status({"state": "waiting", "deadline": deadline.isoformat()})
    yield story.say(f"{name} has {_minutes(window)} to confirm, or will die.")
    approved = yield call(context, "ConfirmationRecorded", {"user": name})
    declined = False
    if not approved:
        timer = context.create_timer(deadline)
        approval = context.wait_for_external_event(workflows.APPROVAL_EVENT)
        winner = yield context.task_any([approval, timer])
        if winner == approval:
            timer.cancel()
        declined = winner == approval and approval.result is not True
        approved = yield call(
            context,
            "SettleConfirmation",
            {"user": name, "approved": winner == approval and not declined},
        )
    if approved:
        context.set_custom_status({"state": "confirmed", "deadline": deadline.isoformat()})
        context.signal_entity(USER_COUNTER, "confirmed")
        yield story.say(f"{name} has confirmed and enters the dungeon!")
        yield start_workflow(context, workflows.SEQUENTIAL, game)
        outcome = "confirmed"
    else:
        context.set_custom_status({"state": "expired", "deadline": deadline.isoformat()})
        reason = "declined" if declined else "did not confirm in time"
        yield story.say(f"{name} {reason}.")
        yield call(context, "KillUser", story.job())
        context.signal_entity(USER_COUNTER, "dead")
        outcome = "dead"
    yield story.say(f"The confirmation workflow for {name} is complete.")
    return outcome


@bp.orchestration_trigger(context_name="context")
def RunUserSequentialWorkflow(context: df.DurableOrchestrationContext):
    """Async sequential: the dungeon is arranged in order, then the game monitor starts."""
    game = context.get_input()
    name = game["name"]
    world = game["universe"]
    story = Story(context, name)
    yield call(context, "PlaceUserInRoom", story.job(room=world["room"]))
    yield call(context, "PlaceInventoryInRoom", story.job(item=world["weapon"], room=world["room"]))
    yield call(
        context, "PlaceMonsterInRoom", story.job(monster=world["monster"], room=world["room"])
    )
    yield call(
        context,
        "PlaceInventoryOnMonster",
        story.job(item=world["treasure"], monster=world["monster"]),
    )
    yield start_workflow(context, workflows.GAME_MONITOR, {"name": name, "universe": world})
    return "arranged"


@bp.orchestration_trigger(context_name="context")
def UserMonitorWorkflow(context: df.DurableOrchestrationContext):
    """Long-running monitor, one check a generation: continue-as-new keeps history bounded."""
    state = context.get_input()
    name = state["name"]
    story = Story(context, name)
    interval = float(state["monitor_interval_seconds"])
    if "expires" not in state:
        lifetime = timedelta(minutes=float(state["monitor_lifetime_minutes"]))
        state["expires"] = (context.current_utc_datetime + lifetime).isoformat()
        yield story.say(f"The monitor watches {name} every {interval:g} seconds.")
    done = yield call(context, "MonitorUser", {"user": name})
    if done:
        # What the game monitor should have heard, again: an Action's event can be lost in a
        # crash between saving the game and raising it.
        yield call(context, "RaiseProgressEvents", {"user": name})
        yield story.say(f"Monitoring of {name} is done.")
        return "done"
    next_check = context.current_utc_datetime + timedelta(seconds=interval)
    if next_check.isoformat() > state["expires"]:
        yield story.say(f"The monitor for {name} timed out.")
        yield story.say(f"Monitoring of {name} is done.")
        return "timed out"
    yield context.create_timer(next_check)
    context.continue_as_new(state)
    return None


@bp.orchestration_trigger(context_name="context")
def GameMonitorWorkflow(context: df.DurableOrchestrationContext):
    """External event correlation: the game is won when both events have happened.

    Improve: a player may act before this instance exists (it starts after the dungeon is
    arranged), so it first asks what has already happened and waits only for the rest.
    """
    game = context.get_input()
    name = game["name"]
    story = Story(context, name)
    progress = yield call(context, "GameProgress", {"user": name})
    waits = [
        context.wait_for_external_event(event)
        for event, done in (
            (workflows.KILL_MONSTER_EVENT, progress["monsterKilled"]),
            (workflows.GOT_TREASURE_EVENT, progress["treasureTaken"]),
        )
        if not done
    ]
    if waits:
        yield context.task_all(waits)
    context.signal_entity(USER_COUNTER, "winner")
    yield story.say(f"{name} has won the game!")
    return "won"
