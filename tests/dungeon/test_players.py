"""Real players' input over HTTP: names in any case, hostile actions, helpful refusals."""

import urllib.parse
import uuid

import pytest

from dungeon import workflows


def unicode_name() -> str:
    return f"Zoë {uuid.uuid4().hex[:6]}"


def test_a_name_in_any_case_is_the_same_player_and_keeps_its_spelling(game):
    name = unicode_name()
    code, _, body = game.new_user(name)
    assert code == 202 and body["name"] == name
    code, _, body = game.new_user(name.upper())
    assert code == 409 and "taken" in body["error"]
    game.host.idle()
    assert game.confirm(name.upper())[0] == 202
    game.host.idle()
    path = urllib.parse.quote(name.lower())
    state = game.status(path)
    assert state["user"]["name"] == name
    weapon = next(i["name"] for i in state["inventory"] if not i["isTreasure"])
    treasure = next(i["name"] for i in state["inventory"] if i["isTreasure"])
    monster = state["monster"]["name"]
    assert game.act(name.lower(), "get", weapon.upper())[0] == 200
    code, _, body = game.act(name.upper(), "kill", monster.title(), weapon.upper())
    assert code == 200 and body["message"].startswith(f"{name} killed the {monster} with")
    assert game.act(name, "GET", treasure.upper())[0] == 200
    game.host.idle()
    status = game.workflow(urllib.parse.quote(name.upper()), workflows.GAME_MONITOR)
    assert status["output"] == "won"
    assert f"{name} has won the game!" in game.log(path)


def test_every_url_new_user_returns_is_percent_encoded_and_works(game):
    name = unicode_name()
    code, _, body = game.new_user(name)
    assert code == 202
    for workflow, links in body["workflows"].items():
        assert links["id"] == workflows.instance_id(workflow, name)
        for key, url in links.items():
            if key == "id":
                continue
            assert " " not in url and url.isascii(), url
        path = links["statusQueryGetUri"].removeprefix(game.host.base_url)
        code, _, status = game.host.http("GET", path)
        assert code in (200, 202) and status["instanceId"] == links["id"], status


@pytest.mark.parametrize("name", [".", "..", " . ", "Pat/..", "%2E%2E"])
def test_dot_names_are_refused(game, name):
    code, _, body = game.new_user(name)
    assert code == 400 and body["error"]


HOSTILE_BODIES = [
    {"action": "kill", "target": "troll", "with": 5},
    {"action": "kill", "target": "troll", "with": ["sword"]},
    {"action": "kill", "target": "troll", "with": {"name": "sword"}},
    {"action": "kill", "target": "troll", "with": True},
    {"action": "get", "target": "x" * 20000},
    {"action": "kill", "target": "troll", "with": "y" * 20000},
    {"action": "a" * 20000, "target": "troll"},
    {"action": "get", "target": 7},
    {"action": ["get"], "target": "troll"},
]


def test_malformed_and_hostile_actions_get_a_400_sentence_and_no_story(game, player):
    game.start_and_confirm(player)
    story = game.log(player)
    for fields in HOSTILE_BODIES:
        code, _, body = game.post("Action", {"name": player, **fields})
        assert code == 400, (fields, code, body)
        assert body["error"].endswith(".") and len(body["error"]) < 120, body
    for raw in (b"[" * 100_000, b"{" * 100_000, b'{"name": "' + b"\xff" * 10 + b'"}', b"null"):
        code, _, body = game.host.http("POST", "/api/Action", raw)
        assert code == 400 and body["error"] == "The body must be a JSON object.", raw[:20]
    for target in ("unicorn", "z" * 64):
        code, _, body = game.act(player, "get", target)
        assert code == 400 and len(body["error"]) < 120
    assert game.log(player) == story, "refused actions are not narrated"


def test_actions_before_confirming_say_confirm_first(game, player):
    assert game.new_user(player)[0] == 202
    code, _, body = game.act(player, "get", "anything")
    assert code == 400 and "confirm first" in body["error"], body
    game.host.idle()
    state = game.status(player)
    weapon = next(i["name"] for i in state["inventory"] if not i["isTreasure"])
    code, _, body = game.act(player, "get", weapon)
    assert code == 400 and body["error"] == f"{player} is not in the dungeon yet: confirm first."


def test_the_treasure_the_monster_holds_is_named_as_held(game, player):
    state = game.start_and_confirm(player)
    treasure = next(i["name"] for i in state["inventory"] if i["isTreasure"])
    monster = state["monster"]["name"]
    code, _, body = game.act(player, "get", treasure)
    assert code == 400
    assert body["error"] == f"The {monster} still holds the {treasure}: kill it first."
