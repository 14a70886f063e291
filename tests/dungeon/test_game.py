"""The game end to end on the harness: workflows, routes, errors, races and idempotency."""

import concurrent.futures
import json

from azure.data.tables import TableClient
from azure.storage.queue import QueueClient

from devhost.testing import DurableHarness
from dungeon import workflows
from dungeon.names import player_key
from dungeon.repository import GameRepository
from dungeon.rules import ActionRequest, perform
from tests.dungeon.conftest import REPO, Game, game_env


def test_a_whole_game_is_won(game, player):
    game.win(player)
    assert game.workflow(player, workflows.GAME_MONITOR)["status"] == "Completed"
    assert game.workflow(player, workflows.GAME_MONITOR)["output"] == "won"
    for workflow in (workflows.PARALLEL, workflows.CONFIRMATION, workflows.SEQUENTIAL):
        assert game.workflow(player, workflow)["status"] == "Completed"
    state = game.status(player)
    assert state["user"]["isAlive"] is True
    assert state["monster"]["isAlive"] is False
    assert len(state["user"]["inventoryItems"].split(",")) == 2
    game.host.advance(seconds=20)
    assert game.workflow(player, workflows.USER_MONITOR)["status"] == "Completed"
    assert f"{player} has won the game!" in game.log(player)


def test_the_game_monitor_hears_of_what_happened_before_it_started(game, player):
    game.win(player)
    monitor = workflows.instance_id(workflows.GAME_MONITOR, player)
    game.host.run(game.host.client.purge_instance_history(monitor))
    game.host.run(game.host.client.start_new(workflows.GAME_MONITOR, monitor, {"name": player}))
    assert game.host.wait_for(monitor).output == "won"


def test_game_status_shapes(game, player):
    state = game.start_and_confirm(player)
    assert set(state) == {"user", "room", "monster", "inventory"}
    assert set(state["user"]) == {"name", "isAlive", "currentRoom", "inventoryItems"}
    assert set(state["room"]) == {"name", "description", "monster", "inventoryItems"}
    assert set(state["monster"]) == {"name", "isAlive", "currentRoom", "inventoryItems"}
    assert all(set(i) == {"name", "room", "monster", "isTreasure"} for i in state["inventory"])
    assert state["user"]["currentRoom"] == state["room"]["name"]
    assert state["room"]["monster"] == state["monster"]["name"]
    weapon = next(i for i in state["inventory"] if not i["isTreasure"])
    treasure = next(i for i in state["inventory"] if i["isTreasure"])
    assert weapon["room"] == state["room"]["name"]
    assert treasure["monster"] == state["monster"]["name"]
    assert state["monster"]["inventoryItems"] == treasure["name"]


def test_the_confirmation_window_passing_kills_the_user_and_ends_the_monitor(game, player):
    assert game.new_user(player)[0] == 202
    game.host.idle()
    status = game.workflow(player, workflows.CONFIRMATION)
    assert status["status"] == "Running"
    assert status["customStatus"]["state"] == "waiting"
    game.host.advance(seconds=119)
    assert game.workflow(player, workflows.CONFIRMATION)["status"] == "Running"
    game.host.advance(seconds=1)
    assert game.workflow(player, workflows.CONFIRMATION)["output"] == "dead"
    assert game.status(player)["user"]["isAlive"] is False
    game.host.advance(seconds=20)
    monitor = game.workflow(player, workflows.USER_MONITOR)
    assert monitor["status"] == "Completed" and monitor["output"] == "done"
    code, _, body = game.confirm(player)
    assert code == 409, body
    code, _, body = game.act(player, "get", "anything")
    assert code == 409 and "dead" in body["error"]


def test_the_monitor_ends_on_its_lifetime(game, player):
    game.start_and_confirm(player)
    game.host.advance(minutes=59)
    assert game.workflow(player, workflows.USER_MONITOR)["status"] == "Running"
    game.host.advance(minutes=1, seconds=20)
    monitor = game.workflow(player, workflows.USER_MONITOR)
    assert monitor["status"] == "Completed" and monitor["output"] == "timed out"
    history = game.host.history(workflows.instance_id(workflows.USER_MONITOR, player))
    assert len(history) < 30, "the monitor's history must stay bounded"
    assert f"The monitor for {player} timed out." in game.log(player)


def test_errors_of_new_user(game, player):
    for body in (
        {},
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 33},
        {"name": "Pat<script>"},
        {"name": 42},
        ["not", "an", "object"],
    ):
        code, _, reply = game.post("NewUser", body)
        assert code == 400 and reply["error"], body
    code, _, reply = game.host.http("POST", "/api/NewUser", b"{broken")
    assert code == 400 and reply["error"]
    assert game.new_user(player)[0] == 202
    code, _, reply = game.new_user(player)
    assert code == 409 and "taken" in reply["error"]


def test_errors_of_confirm_user(game, player):
    assert game.confirm("")[0] == 400
    assert game.post("ConfirmUser", {"nom": player})[0] == 400
    assert game.confirm(player)[0] == 404
    game.start_and_confirm(player)
    code, _, reply = game.confirm(player)
    assert code == 409 and reply["error"]


def test_errors_of_check_status(game, player):
    code, _, reply = game.get(f"CheckStatus/{player}/NoSuchWorkflow")
    assert code == 400 and "Unknown workflow" in reply["error"]
    code, _, reply = game.get(f"CheckStatus/{player}/{workflows.PARALLEL}")
    assert code == 404 and reply["error"]
    game.new_user(player)
    game.host.idle()
    status = game.workflow(player, workflows.PARALLEL)
    assert status["status"] in ("Running", "Completed") and status["created"]


def test_errors_of_game_status_and_log(game, player):
    assert game.get(f"GameStatus/{player}")[0] == 404
    assert game.get(f"GameLog/{player}")[0] == 404


def test_errors_of_action(game, player):
    state = game.start_and_confirm(player)
    weapon = next(i["name"] for i in state["inventory"] if not i["isTreasure"])
    treasure = next(i["name"] for i in state["inventory"] if i["isTreasure"])
    monster = state["monster"]["name"]
    cases = [
        ({"name": player}, 400, "missing"),
        ({"name": player, "action": "dance", "target": "x"}, 400, "Unknown action"),
        ({"name": player, "action": "get"}, 400, "target"),
        ({"name": player, "action": "get", "target": "unicorn"}, 400, "no unicorn here"),
        ({"name": player, "action": "get", "target": treasure}, 400, "still holds"),
        (
            {"name": player, "action": "kill", "target": monster, "with": weapon},
            400,
            "does not hold",
        ),
        ({"name": "Nobody" + player, "action": "get", "target": weapon}, 404, "no user"),
        ({"name": "", "action": "get", "target": weapon}, 400, "empty"),
    ]
    for body, status, words in cases:
        code, _, reply = game.post("Action", body)
        assert code == status and words in reply["error"], (body, code, reply)
    assert game.act(player, "get", weapon)[0] == 200
    assert game.act(player, "kill", monster, weapon)[0] == 200
    code, _, reply = game.act(player, "kill", monster, weapon)
    assert code == 400 and "already dead" in reply["error"]


def test_eight_concurrent_new_users_for_one_name_give_one_202(game, player):
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: game.new_user(player)[0], range(8)))
    assert sorted(codes) == [202] + [409] * 7


def test_two_racing_actions_lose_no_update(game, player):
    state = game.start_and_confirm(player)
    weapon = next(i["name"] for i in state["inventory"] if not i["isTreasure"])
    monster = state["monster"]["name"]
    treasure = next(i["name"] for i in state["inventory"] if i["isTreasure"])
    assert game.act(player, "get", weapon)[0] == 200
    assert game.act(player, "kill", monster, weapon)[0] == 200
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        codes = sorted(pool.map(lambda _: game.act(player, "get", treasure)[0], range(2)))
    assert codes == [200, 400]
    held = game.status(player)["user"]["inventoryItems"].split(",")
    assert sorted(held) == sorted([weapon, treasure])


def test_racing_gets_of_different_items_both_land(game, player, azurite):
    """Two items on the floor, two gets at once: the ETag retry keeps both."""
    state = game.start_and_confirm(player)
    room = state["room"]["name"]
    repo = GameRepository(azurite.connection_string)
    spare = "spare lantern"
    game.host.run(repo.create_item(player, spare, is_treasure=False))
    game.host.run(repo.place_item_in_room(player, spare, room))
    weapon = next(i["name"] for i in state["inventory"] if not i["isTreasure"])
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        codes = list(pool.map(lambda item: game.act(player, "get", item)[0], [weapon, spare]))
    assert codes == [200, 200]
    held = game.status(player)["user"]["inventoryItems"].split(",")
    assert sorted(held) == sorted([weapon, spare])


def test_each_activity_run_twice_leaves_the_same_state(game, player):
    """Run every activity of a game a second time, by hand: nothing changes."""
    game.start_and_confirm(player)
    before = game.status(player)
    log_before = game.log(player)
    ids = [
        workflows.instance_id(w, player)
        for w in (workflows.PARALLEL, workflows.CONFIRMATION, workflows.SEQUENTIAL)
    ]
    scheduled = []
    for instance_id in ids:
        for evt in game.host.history(instance_id):
            if evt["EventType"] == 4 and evt["Name"] != "StartWorkflow":
                scheduled.append((evt["Name"], evt["Input"]))
    assert len(scheduled) >= 10
    for name, input_json in scheduled:
        game.host.run_activity(name, json.loads(input_json) if input_json else None)
    assert game.status(player) == before
    assert game.log(player) == log_before


def test_console_messages_of_a_whole_game_in_order(game, player, azurite):
    game.win(player)
    queue = QueueClient.from_connection_string(azurite.connection_string, "console")
    lines = []
    while True:
        batch = list(queue.receive_messages(max_messages=32, visibility_timeout=60))
        if not batch:
            break
        for message in batch:
            body = json.loads(message.content)
            if body["user"] == player:
                lines.append(body)
    texts = [line["text"] for line in lines]  # in the order the queue gave them
    openers = ("Welcome", "Look out", "A room appears", "Somewhere", "The monitor watches")
    assert all(text.startswith(openers) for text in texts[:5])
    milestones = [
        f"{player} has confirmed and enters the dungeon!",
        f"{player} picked up the",
        f"{player} killed the",
        f"{player} has won the game!",
    ]
    positions = [next(i for i, t in enumerate(texts) if t.startswith(m)) for m in milestones]
    assert positions == sorted(positions), texts
    assert {"time", "user", "text"} <= set(lines[0])
    # The Log keeps the same lines (ordered by time, which mixes the harness's virtual clock
    # with the wall clock of HTTP functions, so compare as a multiset here).
    assert sorted(texts) == sorted(game.log(player))


def test_stats_count_games_won_and_timed_out(game, player):
    assert game.get("Stats")[2] == {"created": 0, "confirmed": 0, "dead": 0, "winners": 0}
    game.win(player + "a")
    game.win(player + "b")
    assert game.new_user(player + "c")[0] == 202
    game.host.idle()
    game.host.advance(seconds=120)
    code, _, counts = game.get("Stats")
    assert code == 200
    assert counts == {"created": 3, "confirmed": 2, "dead": 1, "winners": 2}


def test_game_status_reads_its_four_tables_at_once(storage_proxy, player):
    """User, Room, Monster and Inventory: four reads in flight together (the proxy holds each
    one until four are in flight, or two seconds have passed)."""
    env = game_env(storage_proxy.azurite) | {"AzureWebJobsStorage": storage_proxy.connection_string}
    with DurableHarness(REPO, env=env) as host:
        game = Game(host)
        game.start_and_confirm(player)
        storage_proxy.reset(meet=4)
        state = game.status(player)
        assert state["user"]["name"] == player and state["monster"]["name"]
        assert len(storage_proxy.requests) == 4
        assert storage_proxy.max_in_flight == 4


def test_an_action_writes_only_the_rows_it_changes_and_catches_up_rows_a_crash_left(
    storage_proxy, player
):
    """The User row (the commit), then the rows that differ from the tables: taking the weapon
    changes the weapon and the room, not the monster or the treasure. An action whose host died
    after its commit left its rows unwritten: the next action writes them too."""
    env = game_env(storage_proxy.azurite) | {"AzureWebJobsStorage": storage_proxy.connection_string}
    with DurableHarness(REPO, env=env) as host:
        game = Game(host)
        state = game.start_and_confirm(player)
        weapon = next(i["name"] for i in state["inventory"] if not i["isTreasure"])
        treasure = next(i["name"] for i in state["inventory"] if i["isTreasure"])
        storage_proxy.reset()
        assert game.act(player, "get", weapon)[0] == 200
        written = sorted(
            r.path.split("(")[0].rsplit("/", 1)[1]
            for r in storage_proxy.requests
            if r.method in {"PUT", "PATCH", "MERGE"} and "Log" not in r.path
        )
        assert written == ["Inventory", "Room", "User"]

        repository = GameRepository(storage_proxy.connection_string)
        monsters = TableClient.from_connection_string(storage_proxy.connection_string, "Monster")
        monster = (player_key(player), state["monster"]["name"])

        async def kill_committed_but_not_written() -> None:
            loaded = await repository.load_game(player)
            perform(loaded.state, ActionRequest("kill", loaded.state.monster.name, weapon))
            await repository.commit_action(loaded)  # and the host dies here
            await repository.service.close()

        host.run(kill_committed_but_not_written())
        assert game.status(player)["monster"]["isAlive"] is False, "the commit is the action"
        assert monsters.get_entity(*monster)["IsAlive"], "the Monster table is behind"
        assert game.act(player, "get", treasure)[0] == 200
        assert not monsters.get_entity(*monster)["IsAlive"], "the next save wrote it too"
