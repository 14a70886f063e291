"""The confirmation window: open from NewUser's 202 until the workflow's timer fires.

Played on both task-hub stores, with requests sent while the workflows are still at work.
"""

import random
import uuid

import pytest

from dungeon import workflows
from dungeon.repository import GameRepository
from dungeon.rules import ActionRequest, perform

WINDOW = 120


def test_a_confirmation_sent_right_after_new_user_is_taken(game_on_each_store, player):
    game = game_on_each_store
    assert game.new_user(player)[0] == 202
    code, _, body = game.confirm(player)  # no waiting: the universe is still being made
    assert code == 202, body
    assert (
        game.host.wait_for(workflows.instance_id(workflows.CONFIRMATION, player)).output
        == "confirmed"
    )
    game.host.idle()
    assert game.status(player)["user"]["currentRoom"]
    code, _, body = game.confirm(player)
    assert code == 409 and "already confirmed" in body["error"]


def test_a_workflow_about_to_start_is_pending(game_on_each_store, player):
    game = game_on_each_store
    assert game.new_user(player)[0] == 202
    for workflow in workflows.ALL:  # each either runs already or is Pending: never a 404
        assert game.workflow(player, workflow)["status"] in ("Pending", "Running", "Completed")
    game.host.idle()
    for workflow in (workflows.SEQUENTIAL, workflows.GAME_MONITOR):
        status = game.workflow(player, workflow)
        assert status["status"] == "Pending" and status["created"], status
    game.host.advance(seconds=WINDOW)
    code, _, body = game.get(f"CheckStatus/{player}/{workflows.SEQUENTIAL}")
    assert code == 404 and "dead" in body["error"]
    code, _, body = game.get(f"CheckStatus/Nobody{player}/{workflows.SEQUENTIAL}")
    assert code == 404 and "no such user" in body["error"]


def test_a_confirmation_recorded_but_never_raised_wins_when_the_timer_fires(
    game_on_each_store, player, azurite
):
    """As if ConfirmUser crashed between recording the confirmation and raising the event."""
    game = game_on_each_store
    assert game.new_user(player)[0] == 202
    game.host.idle()
    repository = GameRepository(azurite.connection_string)
    assert game.host.run(repository.record_confirmation(player)) is None
    game.host.advance(seconds=WINDOW)
    confirmation = game.workflow(player, workflows.CONFIRMATION)
    assert confirmation["output"] == "confirmed"
    assert game.status(player)["user"]["isAlive"] is True


def test_a_closed_window_refuses_a_confirmation(game, player, azurite):
    assert game.new_user(player)[0] == 202
    game.host.idle()
    repository = GameRepository(azurite.connection_string)
    assert game.host.run(repository.close_confirmation(player)) is False
    code, _, body = game.confirm(player)
    assert code == 409 and "window" in body["error"] and "closed" in body["error"]
    game.host.advance(seconds=WINDOW)
    assert game.workflow(player, workflows.CONFIRMATION)["output"] == "dead"
    code, _, body = game.confirm(player)
    assert code == 409 and "dead" in body["error"]


def play(game, player: str, rng: random.Random, moves: list[str]) -> None:
    """One player's requests at random moments; checks every answer against the rules."""
    assert game.new_user(player)[0] == 202
    elapsed = 0.0
    accepted = []
    universe = None
    for _ in range(rng.randint(2, 9)):
        move = rng.choice(["confirm", "confirm", "act", "act", "idle", "advance", "advance"])
        moves.append(move)
        if move == "confirm":
            code, _, body = game.confirm(player)
            assert code in (202, 409), body
            moves.append(str(code))
            if code == 202:
                accepted.append(elapsed)
            elif elapsed < WINDOW:  # the window cannot have closed yet
                assert accepted and "already confirmed" in body["error"], (elapsed, body)
        elif move == "act":
            if universe is None:
                code, _, universe = game.get(f"GameStatus/{player}")
                universe = universe if code == 200 else None
            items = universe["inventory"] if universe else []
            monster = [universe["monster"]["name"]] if universe else []
            target = rng.choice([i["name"] for i in items] + monster + ["anything"])
            weapon = next((i["name"] for i in items if not i["isTreasure"]), None)
            code, _, body = game.act(player, rng.choice(["get", "kill"]), target.upper(), weapon)
            assert code in (200, 400, 409), body
            assert "error" not in body or body["error"].endswith((".", "!", "soon", "first")), body
        elif move == "idle":
            game.host.idle()
        else:
            seconds = rng.choice([1, 5, 30, 90, 119, 121, 150])
            moves.append(f"{seconds}s")
            game.host.advance(seconds=seconds)
            elapsed += seconds
    game.host.idle()
    confirmation = workflows.instance_id(workflows.CONFIRMATION, player)
    if accepted:
        assert game.host.wait_for(confirmation).output == "confirmed"
        finish(game, player)
        assert (
            game.host.wait_for(workflows.instance_id(workflows.GAME_MONITOR, player)).output
            == "won"
        )
        assert game.status(player)["user"]["isAlive"] is True
    else:
        game.host.advance(seconds=2 * WINDOW)
        assert game.host.wait_for(confirmation).output == "dead"
        assert game.status(player)["user"]["isAlive"] is False
        assert game.confirm(player)[0] == 409


def finish(game, player: str) -> None:
    """Whatever the player already did, the rest of the game can still be played and won."""
    game.host.wait_for(workflows.instance_id(workflows.SEQUENTIAL, player))  # arranged
    state = game.status(player)
    weapon = next(i["name"] for i in state["inventory"] if not i["isTreasure"])
    treasure = next(i["name"] for i in state["inventory"] if i["isTreasure"])
    held = state["user"]["inventoryItems"].split(",")
    if weapon not in held:
        assert game.act(player, "get", weapon)[0] == 200
    if state["monster"]["isAlive"]:
        assert game.act(player, "kill", state["monster"]["name"], weapon)[0] == 200
    if treasure not in held:
        assert game.act(player, "get", treasure)[0] == 200
    game.host.idle()


@pytest.mark.parametrize("seed", range(6))
def test_no_timing_of_a_players_requests_leaves_a_game_unwinnable(game_on_each_store, seed):
    """Many games, each with its own random timing: each ends won or dead, as the rules say."""
    rng = random.Random(seed)
    for game_number in range(4):
        player = f"Prop{seed}x{game_number}{uuid.uuid4().hex[:8]}"
        moves: list[str] = []
        try:
            play(game_on_each_store, player, rng, moves)
        except Exception as err:
            raise AssertionError(f"{player} after {moves}: {err}") from err


def test_events_lost_in_a_crash_reach_the_game_monitor_through_the_user_monitor(
    game_on_each_store, player, azurite
):
    """As if the host died after each Action saved the game and before it raised the event."""
    game = game_on_each_store
    game.start_and_confirm(player)
    game.host.wait_for(workflows.instance_id(workflows.SEQUENTIAL, player))
    repository = GameRepository(azurite.connection_string)

    async def play_without_events() -> None:
        loaded = await repository.load_game(player)
        state = loaded.state
        weapon = next(i.name for i in state.items.values() if not i.is_treasure)
        treasure = next(i.name for i in state.items.values() if i.is_treasure)
        for request in (
            ActionRequest("get", weapon),
            ActionRequest("kill", state.monster.name, weapon),
            ActionRequest("get", treasure),
        ):
            perform(state, request)
        await repository.commit_action(loaded)
        await repository.write_rows(loaded)

    game.host.run(play_without_events())
    monitor = workflows.instance_id(workflows.GAME_MONITOR, player)
    game.host.idle()
    assert game.workflow(player, workflows.GAME_MONITOR)["status"] == "Running"
    game.host.advance(seconds=20)  # the user monitor's next check sees the game is over
    assert game.host.wait_for(monitor).output == "won"
