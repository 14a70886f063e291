"""Activity functions: thin and idempotent, each a call into dungeon/.

An activity may run more than once: creating a row that exists is success, placing something
where it already is changes nothing, and narration lines carry the time and key their
orchestrator gave them, so a repeated line is the same Log row.
"""

import contextlib

import azure.durable_functions as df

from dungeon import universe, workflows
from dungeon.narration import Narrator
from dungeon.repository import CONFIRMED, GameRepository
from dungeon.rules import progress_events
from dungeon.settings import storage_connection

bp = df.Blueprint()


def with_article(noun: str) -> str:
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _repository() -> GameRepository:
    return GameRepository.shared(storage_connection())


async def _say(job: dict, text: str, key: str | None = None) -> None:
    await Narrator.shared(storage_connection()).say(
        job["user"], text, job.get("at"), key or job.get("key")
    )


@bp.activity_trigger(input_name="job")
async def CreateUser(job: dict) -> str:
    await _repository().create_user(job["user"])
    await _say(job, f"Welcome to the Durable Dungeon, {job['user']}!", f"{job['key']}:user")
    return job["user"]


@bp.activity_trigger(input_name="job")
async def CreateMonster(job: dict) -> str:
    name = universe.generate_monster(job["seed"], job["user"])
    await _repository().create_monster(job["user"], name)
    await _say(job, f"Look out! The {name} is now stalking {job['user']}!", f"{job['key']}:monster")
    return name


@bp.activity_trigger(input_name="job")
async def CreateRoom(job: dict) -> dict:
    name, description = universe.generate_room(job["seed"], job["user"])
    await _repository().create_room(job["user"], name, description)
    await _say(job, f"A room appears: the {name}. {description}", f"{job['key']}:room")
    return {"name": name, "description": description}


@bp.activity_trigger(input_name="job")
async def CreateInventory(job: dict) -> dict:
    weapon, treasure = universe.generate_items(job["seed"], job["user"])
    repository = _repository()
    await repository.create_item(job["user"], weapon, is_treasure=False)
    await repository.create_item(job["user"], treasure, is_treasure=True)
    await _say(
        job,
        f"Somewhere in the dark lie {with_article(weapon)} and {with_article(treasure)}.",
        f"{job['key']}:items",
    )
    return {"weapon": weapon, "treasure": treasure}


@bp.activity_trigger(input_name="job")
async def PlaceUserInRoom(job: dict) -> None:
    await _repository().place_user(job["user"], job["room"])
    await _say(job, f"{job['user']} steps into the {job['room']}.")


@bp.activity_trigger(input_name="job")
async def PlaceInventoryInRoom(job: dict) -> None:
    await _repository().place_item_in_room(job["user"], job["item"], job["room"])
    await _say(
        job, f"{with_article(job['item']).capitalize()} lies on the floor of the {job['room']}."
    )


@bp.activity_trigger(input_name="job")
async def PlaceMonsterInRoom(job: dict) -> None:
    await _repository().place_monster_in_room(job["user"], job["monster"], job["room"])
    await _say(job, f"The {job['monster']} lurks in the {job['room']}!")


@bp.activity_trigger(input_name="job")
async def PlaceInventoryOnMonster(job: dict) -> None:
    await _repository().place_item_on_monster(job["user"], job["item"], job["monster"])
    await _say(job, f"The {job['monster']} clutches {with_article(job['item'])}.")


@bp.activity_trigger(input_name="job")
async def ConfirmationRecorded(job: dict) -> bool:
    """True if ConfirmUser recorded a confirmation before the workflow began to wait."""
    return await _repository().confirmation_state(job["user"]) == CONFIRMED


@bp.activity_trigger(input_name="job")
async def SettleConfirmation(job: dict) -> bool:
    """Decide the window once: True if the player confirmed (now or before), else closed."""
    if job["approved"]:
        await _repository().record_confirmation(job["user"])
        return True
    return await _repository().close_confirmation(job["user"])


@bp.activity_trigger(input_name="job")
async def KillUser(job: dict) -> None:
    await _repository().kill_user(job["user"])
    await _say(job, f"{job['user']} has died.")


@bp.activity_trigger(input_name="job")
async def MonitorUser(job: dict) -> bool:
    """True when there is nothing more to watch: the user is dead or holds the treasure."""
    loaded = await _repository().load_game(job["user"])
    if loaded is None:
        return True
    return (not loaded.state.user.is_alive) or loaded.state.treasure_taken


@bp.activity_trigger(input_name="job")
async def GameProgress(job: dict) -> dict:
    """What the game monitor would have heard of before it started."""
    return await _progress(job["user"])


async def _progress(user: str) -> dict:
    loaded = await _repository().load_game(user)
    return {
        "monsterKilled": bool(loaded) and not loaded.state.monster.is_alive,
        "treasureTaken": bool(loaded) and loaded.state.treasure_taken,
    }


@bp.activity_trigger(input_name="job")
@bp.durable_client_input(client_name="client")
async def RaiseProgressEvents(job: dict, client: df.DurableOrchestrationClient) -> list[str]:
    """Raise to the game monitor the events of what has happened, again.

    Action raises each event once, after saving the game: a crash in between would lose it.
    The user monitor calls this when it sees the game is over, so no event stays lost; the
    game monitor takes each event once, and a finished or absent one is no error.
    """
    loaded = await _repository().load_game(job["user"])
    events = progress_events(loaded.state) if loaded else []
    instance_id = workflows.instance_id(workflows.GAME_MONITOR, job["user"])
    for event in events:
        with contextlib.suppress(Exception):
            await client.raise_event(instance_id, event, True)
    return events


@bp.activity_trigger(input_name="job")
async def Narrate(job: dict) -> None:
    await _say(job, job["text"])


@bp.activity_trigger(input_name="job")
@bp.durable_client_input(client_name="client")
async def StartWorkflow(job: dict, client: df.DurableOrchestrationClient) -> str:
    """Start a workflow as its own instance (not a child); starting it twice is no error."""
    status = await client.get_status(job["instanceId"])
    if status and status.runtime_status is not None:
        return job["instanceId"]
    return await client.start_new(job["workflow"], job["instanceId"], job["input"])
