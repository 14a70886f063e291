"""The pure domain: names, universe generation, and the rules of get and kill."""

import pytest

from dungeon.model import GameState, Item, Monster, Room, User
from dungeon.names import InvalidNameError, validate_name
from dungeon.rules import ActionError, check_request, perform
from dungeon.universe import generate


@pytest.mark.parametrize("name", ["Pat", "  Pat  ", "a", "x" * 32, "Pat O.Neil-2_b"])
def test_valid_names_are_trimmed(name):
    assert validate_name(name) == name.strip()


@pytest.mark.parametrize("name", ["", "   ", "x" * 33, "Pat/1", "Pat'", "<img>", "Pät", None, 7])
def test_invalid_names_are_refused_with_a_sentence(name):
    with pytest.raises(InvalidNameError) as err:
        validate_name(name)
    assert str(err.value).endswith(".") or "characters" in str(err.value)


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
    assert perform(game, "get", "axe", None).events == []
    assert game.user.inventory_items == ["axe"] and game.room.inventory_items == []
    outcome = perform(game, "kill", "ogre", "axe")
    assert outcome.events == ["KillMonster"] and "dropped the crown" in outcome.message
    assert game.items["crown"].room == "Vault" and game.items["crown"].monster == ""
    assert perform(game, "get", "crown", None).events == ["GotTreasure"]
    assert game.user.inventory_items == ["axe", "crown"]


@pytest.mark.parametrize(
    ("action", "target", "weapon", "status", "words"),
    [
        ("get", "crown", None, 400, "no crown here"),
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
        perform(game, action, target, weapon)
    assert err.value.status == status and words in str(err.value)
    assert repr(game) == before


def test_the_dead_cannot_act_and_requests_are_checked():
    game = state()
    game.user.is_alive = False
    with pytest.raises(ActionError) as err:
        perform(game, "get", "axe", None)
    assert err.value.status == 409
    with pytest.raises(ActionError):
        check_request("dance", "x")
    with pytest.raises(ActionError):
        check_request("get", " ")
    assert check_request(" GET ", " axe ") == ("get", "axe")
