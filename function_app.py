"""The Durable Dungeon: HTTP client functions, and the blueprints of activities and workflows."""

import asyncio
import contextlib
import functools
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import azure.durable_functions as df
import azure.functions as func
from azure.core.exceptions import ServiceRequestError, ServiceResponseError

from activities import bp as activities
from dungeon import openapi, stats, workflows
from dungeon.names import InvalidNameError, validate_name
from dungeon.narration import Narrator
from dungeon.repository import (
    CONFIRMED,
    ConflictError,
    GameRepository,
    LoadedGame,
    UniverseNotReadyError,
)
from dungeon.rules import ActionError, arranged, check_request, perform, progress_events
from dungeon.settings import GameSettings, storage_connection
from orchestrators import bp as orchestrators

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(activities)
app.register_functions(orchestrators)

ACTION_ATTEMPTS = 5


def reply(body: object, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")


def error(status: int, message: str) -> func.HttpResponse:
    return reply({"error": message}, status)


def storage_may_be_away(handler: Callable[..., Awaitable[func.HttpResponse]]):
    """A request that finds the game's storage away answers 503 with Retry-After, as the
    runtime's own API does, rather than failing with a 500."""

    @functools.wraps(handler)
    async def wrapper(*args: Any, **kwargs: Any) -> func.HttpResponse:
        try:
            return await handler(*args, **kwargs)
        except (ServiceRequestError, ServiceResponseError):
            response = error(503, "The game's storage is not answering; try again in a moment.")
            response.headers["Retry-After"] = "5"
            return response

    return wrapper


def json_body(req: func.HttpRequest) -> dict:
    try:
        body = req.get_json()
    except (ValueError, RecursionError):  # RecursionError: JSON nested too deeply to read
        raise ActionError(400, "The body must be a JSON object.") from None
    if not isinstance(body, dict):
        raise ActionError(400, "The body must be a JSON object.")
    return body


def name_from_body(req: func.HttpRequest) -> str:
    """The validated `name` of a JSON body; ActionError or InvalidNameError say what is wrong."""
    return validate_name(json_body(req).get("name"))


def repository() -> GameRepository:
    return GameRepository.shared(storage_connection())


def response_links(
    client: df.DurableOrchestrationClient, req: func.HttpRequest, instance_id: str
) -> dict[str, str]:
    """The SDK's management URLs, with the instance id percent-encoded (names have spaces)."""
    links = client.get_client_response_links(req, quote(instance_id, safe=""))
    return {**links, "id": instance_id}


@app.route(route="NewUser", methods=["POST"])
@app.durable_client_input(client_name="client")
@storage_may_be_away
async def new_user(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    """Claims the name, then starts the universe's creation and the user's monitor."""
    try:
        name = name_from_body(req)
    except (ActionError, InvalidNameError) as err:
        return error(400, str(err))
    settings = GameSettings.from_environment()
    game = {**settings.to_input(), "name": name, "seed": settings.seed or uuid.uuid4().hex}
    if not await repository().claim_user(name):
        return error(409, f"The name '{name}' is taken.")
    started = {}
    try:
        for workflow in (workflows.PARALLEL, workflows.USER_MONITOR):
            instance_id = workflows.instance_id(workflow, name)
            await client.start_new(workflow, instance_id, game)
            started[workflow] = response_links(client, req, instance_id)
    except Exception:
        for workflow in started:
            await client.terminate(workflows.instance_id(workflow, name), "NewUser failed")
        await repository().release_user(name)
        raise
    return reply({"name": name, "workflows": started}, 202)


@app.route(route="ConfirmUser", methods=["POST"])
@app.durable_client_input(client_name="client")
@storage_may_be_away
async def confirm_user(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    """Records the confirmation (durably, once), then tells the workflow if it is listening.

    The window opens with NewUser's 202 and closes when the confirmation workflow's timer
    fires; until then a confirmation is kept in the Confirmation table, where the workflow
    looks for it when it starts and again when its timer fires.
    """
    try:
        name = name_from_body(req)
    except (ActionError, InvalidNameError) as err:
        return error(400, str(err))
    user = await repository().get_user(name)
    if user is None:
        return error(404, f"There is no user named '{name}'.")
    if not user.is_alive:
        return error(409, f"{user.name} is dead.")
    earlier = await repository().record_confirmation(user.name)
    if earlier == CONFIRMED:
        return error(409, f"{user.name} has already confirmed.")
    if earlier is not None:
        return error(409, f"The confirmation window of {user.name} has closed.")
    # The confirmation is stored: from here nothing can lose it. The event only makes it quick,
    # so it is raised to a running workflow alone; one not yet running (on Azure an event for an
    # instance that does not exist is refused) or finished meanwhile reads the row instead.
    with contextlib.suppress(Exception):
        await tell_confirmation_workflow(client, name)
    return reply({"name": user.name, "message": f"{user.name} is confirmed."}, 202)


async def tell_confirmation_workflow(client: df.DurableOrchestrationClient, name: str) -> None:
    instance_id = workflows.instance_id(workflows.CONFIRMATION, name)
    status = await client.get_status(instance_id)
    if status and status.runtime_status == df.OrchestrationRuntimeStatus.Running:
        await client.raise_event(instance_id, workflows.APPROVAL_EVENT, True)


@app.route(route="CheckStatus/{username}/{workflow}", methods=["GET"])
@app.durable_client_input(client_name="client")
@storage_may_be_away
async def check_status(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    username, workflow = req.route_params["username"], req.route_params["workflow"]
    if workflow not in workflows.ALL:
        return error(400, f"Unknown workflow '{workflow}': use one of {', '.join(workflows.ALL)}.")
    try:
        name = validate_name(username)
    except InvalidNameError as err:
        return error(400, str(err))
    instance_id = workflows.instance_id(workflow, name)
    status = await client.get_status(instance_id)
    if not status or status.runtime_status is None:
        return await not_started(workflow, name, instance_id)
    runtime = status.runtime_status.value
    return reply(
        {
            "created": status.created_time.isoformat(),
            "status": "Running" if runtime == "ContinuedAsNew" else runtime,
            "workflow": workflow,
            "instanceId": status.instance_id,
            "lastUpdated": status.last_updated_time.isoformat()
            if status.last_updated_time
            else None,
            "customStatus": status.custom_status,
            "output": status.output,
        }
    )


async def not_started(workflow: str, name: str, instance_id: str) -> func.HttpResponse:
    """A workflow of a living player's game that has not started yet is Pending: it will."""
    user = await repository().get_user(name)
    if user is None:
        return error(404, f"There is no {workflow} for {name}: there is no such user.")
    if not user.is_alive:
        return error(404, f"There is no {workflow} for {user.name}, and {user.name} is dead.")
    return reply(
        {
            "created": datetime.now(UTC).isoformat(),
            "status": "Pending",
            "workflow": workflow,
            "instanceId": instance_id,
            "lastUpdated": None,
            "customStatus": None,
            "output": None,
        }
    )


@app.route(route="GameStatus/{username}", methods=["GET"])
@storage_may_be_away
async def game_status(req: func.HttpRequest) -> func.HttpResponse:
    try:
        name = validate_name(req.route_params["username"])
    except InvalidNameError as err:
        return error(400, str(err))
    try:
        loaded = await repository().load_game(name)
    except UniverseNotReadyError:
        return error(404, f"The universe of {name} is still being created.")
    if loaded is None:
        return error(404, f"There is no user named '{name}'.")
    return reply(loaded.state.to_json())


@app.route(route="GameLog/{username}", methods=["GET"])
@storage_may_be_away
async def game_log(req: func.HttpRequest) -> func.HttpResponse:
    try:
        name = validate_name(req.route_params["username"])
    except InvalidNameError as err:
        return error(400, str(err))
    if await repository().get_user(name) is None:
        return error(404, f"There is no user named '{name}'.")
    return reply(await repository().read_log(name))


@app.entity_trigger(context_name="context", entity_name=stats.COUNTER_ENTITY)
def user_counter(context: df.DurableEntityContext) -> None:
    """The aggregator: counts users created, confirmed, dead and winners."""
    if context.operation_name == "get":
        context.set_result(context.get_state(stats.empty))
        return
    context.set_state(stats.count(context.get_state(stats.empty), context.operation_name))


@app.route(route="Stats", methods=["GET"])
@app.durable_client_input(client_name="client")
@storage_may_be_away
async def get_stats(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    response = await client.read_entity_state(df.EntityId(stats.COUNTER_ENTITY, stats.COUNTER_KEY))
    counts = response.entity_state if response.entity_exists else None
    return reply({**stats.empty(), **(counts or {})})


@app.route(route="openapi.json", methods=["GET"])
def openapi_document(req: func.HttpRequest) -> func.HttpResponse:
    return reply(openapi.document())


@app.route(route="Action", methods=["POST"])
@app.durable_client_input(client_name="client")
@storage_may_be_away
async def action(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    """Apply `get` or `kill`; two racing actions are serialized by the User row's ETag.

    Only what happened is narrated: a refused action answers its player alone, so nobody can
    fill another player's story with their own text.
    """
    try:
        body = json_body(req)
        name = validate_name(body.get("name"))
        request = check_request(body.get("action"), body.get("target"), body.get("with"))
    except (ActionError, InvalidNameError) as err:
        return error(getattr(err, "status", 400), str(err))
    for _ in range(ACTION_ATTEMPTS):
        try:
            loaded = await repository().load_game(name)
        except UniverseNotReadyError:
            if await repository().confirmation_state(name) == CONFIRMED:
                return error(400, f"The dungeon of {name} is still being made: try again soon.")
            return error(400, f"{name} is not in the dungeon yet: confirm first.")
        if loaded is None:
            return error(404, f"There is no user named '{name}'.")
        try:
            confirmed = (
                arranged(loaded.state) or await repository().confirmation_state(name) == CONFIRMED
            )
            outcome = perform(loaded.state, request, confirmed)
        except ActionError as err:
            # A repeated action finds it done: its events may have been lost in a crash.
            await announce(client, name, progress_events(loaded.state))
            return error(err.status, str(err))
        try:
            await repository().commit_action(loaded)
            break
        except ConflictError:
            continue
    else:
        return error(409, f"{name} is doing too much at once; try again.")
    await asyncio.gather(
        write_rows_after_commit(loaded),
        Narrator.shared(storage_connection()).say(loaded.state.user.name, outcome.message),
    )
    await announce(client, name, outcome.events)  # after the line: the win is narrated after it
    return reply({"message": outcome.message})


async def write_rows_after_commit(loaded: LoadedGame) -> None:
    """The committed action's rows in their tables. The action has happened whether they land
    or not (reads take the rows from its commit), so storage going away now is no error for
    the player: the next save writes every row the tables lack."""
    try:
        await repository().write_rows(loaded)
    except (ServiceRequestError, ServiceResponseError) as err:
        logging.warning(
            "The rows of %s's action wait for the next save: %s", loaded.state.user.name, err
        )


async def announce(client: df.DurableOrchestrationClient, name: str, events: list[str]) -> None:
    """Tell the game monitor; a finished or missing one is no error for the player, and the
    monitor takes each event once however often it is told."""
    for event in events:
        with contextlib.suppress(Exception):
            await client.raise_event(
                workflows.instance_id(workflows.GAME_MONITOR, name), event, True
            )
