"""The pure domain: names, universe generation, and the rules of get and kill."""

import pytest

from dungeon.model import GameState, Item, Monster, Room, User
from dungeon.names import InvalidNameError, player_key, validate_name
from dungeon.rules import ActionError, ActionRequest, check_request, excerpt, perform
from dungeon.universe import generate


@pytest.mark.parametrize(
    "name", ["Pat", "  Pat  ", "a", "x" * 32, "Pat O.Neil-2_b", "Zoë", "Łukasz", "李小龍", "..."]
)
def test_valid_names_are_trimmed(name):
    assert validate_name(name) == name.strip()


def test_a_name_typed_with_a_combining_mark_is_the_same_name():
    assert validate_name("Zoe\u0308") == "Zoë"


@pytest.mark.parametrize(
    "name",
    ["", "   ", "x" * 33, "Pat/1", "Pat'", "<img>", ".", "..", " .. ", "a%2F", "\u0308a", None, 7],
)
def test_invalid_names_are_refused_with_a_sentence(name):
    with pytest.raises(InvalidNameError) as err:
        validate_name(name)
    assert str(err.value).endswith(".") or "characters" in str(err.value)


def test_names_differing_only_in_case_have_one_key():
    assert player_key(validate_name("ZOË")) == player_key(validate_name("zoë"))
    assert player_key("Pat") != player_key("Pam")


def test_generation_is_reproducible_from_a_seed_and_varies_by_user():
    assert generate("seed", "Pat") == generate("seed", "Pat")
    assert generate("seed", "Pat") != generate("seed", "Sam")
    universe = generate("seed", "Pat")
    assert len(universe.monster.split()) == 3
    assert universe.description.startswith("A room with")


def state() -> GameState:
    return GameState(
        user=User("Pat", current_room="Vault"),
        room=Room("Vault", "dark", monster="ogre", inventory_items=["axe"]),
        monster=Monster("ogre", current_room="Vault", inventory_items=["crown"]),
        items={
            "axe": Item("axe", room="Vault"),
            "crown": Item("crown", monster="ogre", is_treasure=True),
        },
    )


def test_a_game_by_the_rules():
    game = state()
    assert perform(game, ActionRequest("get", "AXE")).events == []
    assert game.user.inventory_items == ["axe"] and game.room.inventory_items == []
    outcome = perform(game, ActionRequest("kill", "Ogre", "Axe"))
    assert outcome.events == ["KillMonster"] and "dropped the crown" in outcome.message
    assert outcome.message == "Pat killed the ogre with the axe! It dropped the crown."
    assert game.items["crown"].room == "Vault" and game.items["crown"].monster == ""
    assert perform(game, ActionRequest("get", "crown")).events == ["GotTreasure"]
    assert game.user.inventory_items == ["axe", "crown"]


@pytest.mark.parametrize(
    ("action", "target", "weapon", "status", "words"),
    [
        ("get", "crown", None, 400, "The ogre still holds the crown: kill it first."),
        ("get", "ogre", None, 400, "cannot be picked up"),
        ("get", "sword", None, 400, "no sword here"),
        ("kill", "ogre", "axe", 400, "does not hold"),
        ("kill", "ogre", None, 400, "Say what"),
        ("kill", "dragon", "axe", 400, "no dragon here"),
    ],
)
def test_refused_actions_change_nothing(action, target, weapon, status, words):
    game = state()
    before = repr(game)
    with pytest.raises(ActionError) as err:
        perform(game, ActionRequest(action, target, weapon))
    assert err.value.status == status and words in str(err.value)
    assert repr(game) == before


def test_the_dead_cannot_act_and_requests_are_checked():
    game = state()
    game.user.is_alive = False
    with pytest.raises(ActionError) as err:
        perform(game, ActionRequest("get", "axe"))
    assert err.value.status == 409
    with pytest.raises(ActionError):
        check_request("dance", "x")
    with pytest.raises(ActionError):
        check_request("get", " ")
    assert check_request(" GET ", " axe ") == ActionRequest("get", "axe")
    assert check_request("kill", "ogre", " axe ") == ActionRequest("kill", "ogre", "axe")


def test_a_player_not_yet_in_the_room_is_told_what_to_do():
    game = state()
    game.user.current_room = ""
    with pytest.raises(ActionError, match="confirm first"):
        perform(game, ActionRequest("get", "axe"), confirmed=False)
    with pytest.raises(ActionError, match="try again in a moment"):
        perform(game, ActionRequest("get", "axe"), confirmed=True)
    game = state()
    game.monster.current_room = ""  # confirmed, in the room, but the monster is still coming
    with pytest.raises(ActionError, match="try again in a moment"):
        perform(game, ActionRequest("get", "axe"), confirmed=True)


@pytest.mark.parametrize(
    ("target", "weapon", "words"),
    [
        (5, None, "'target' must be a string"),
        ("ogre", 5, "'with' must be a string"),
        ("ogre", ["axe"], "'with' must be a string"),
        ("ogre", {"a": 1}, "'with' must be a string"),
        ("ogre", True, "'with' must be a string"),
        ("x" * 20000, None, "'target' is too long"),
        ("ogre", "x" * 65, "'with' is too long"),
    ],
)
def test_malformed_fields_are_refused_with_a_short_sentence(target, weapon, words):
    with pytest.raises(ActionError) as err:
        check_request("kill", target, weapon)
    assert err.value.status == 400 and words in str(err.value)
    assert len(str(err.value)) < 120


def test_an_excerpt_is_short_and_printable():
    assert excerpt("axe") == "axe"
    assert excerpt("a\nb\x00c") == "a b c"
    long = excerpt("y" * 1000)
    assert len(long) == 40 and long.endswith("…")
