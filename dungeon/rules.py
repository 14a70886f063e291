"""The rules of `get` and `kill`: pure functions from a game state to a changed state.

What a player types is checked here before anything is read: an action is one of two verbs,
a target and a `with` are strings of at most MAX_TEXT characters. Targets and weapons match
items and monsters without regard to case; a refusal quotes at most a short `excerpt` of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .model import GameState, Item
from .workflows import GOT_TREASURE_EVENT, KILL_MONSTER_EVENT

ACTIONS = ("get", "kill")
MAX_TEXT = 64  # the generated names are at most about 30 characters
EXCERPT_LENGTH = 40


class ActionError(Exception):
    """An action the rules refuse; `status` is the HTTP status, the message one sentence."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ActionRequest:
    """A checked request: the verb in lower case, the target, and the weapon if one was named."""

    verb: str
    target: str
    weapon: str | None = None


@dataclass
class Outcome:
    message: str
    events: list[str] = field(default_factory=list)


def excerpt(text: str, limit: int = EXCERPT_LENGTH) -> str:
    """A short, printable piece of what a player typed, safe to quote in a sentence."""
    printable = "".join(char if char.isprintable() else " " for char in text)
    return printable if len(printable) <= limit else printable[: limit - 1] + "…"


def _text(value: object, field_name: str, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ActionError(400, f"'{field_name}' must be a string: the name of {what}.")
    if len(value) > MAX_TEXT:
        raise ActionError(400, f"'{field_name}' is too long: at most {MAX_TEXT} characters.")
    return value.strip() or None


def check_request(action: object, target: object, weapon: object = None) -> ActionRequest:
    """The request's fields checked for type and length, or ActionError (400)."""
    if not isinstance(action, str) or not action.strip():
        raise ActionError(400, "The action is missing: use 'get' or 'kill'.")
    verb = action.strip().lower()
    if verb not in ACTIONS:
        raise ActionError(400, f"Unknown action '{excerpt(verb)}': use 'get' or 'kill'.")
    checked_target = _text(target, "target", "an item or a monster")
    if checked_target is None:
        raise ActionError(400, f"The target of '{verb}' is missing.")
    return ActionRequest(verb, checked_target, _text(weapon, "with", "an item you hold"))


def same(a: str, b: str) -> bool:
    return a.casefold() == b.casefold()


def perform(state: GameState, request: ActionRequest, confirmed: bool = True) -> Outcome:
    """Apply an action to `state` in place, or raise ActionError and change nothing.

    `confirmed` tells a player who is not in the room yet whether to confirm or to wait.
    """
    user = state.user
    if not user.is_alive:
        raise ActionError(409, f"{user.name} is dead and cannot act.")
    if not arranged(state):
        if confirmed:
            raise ActionError(400, f"{user.name} is entering the dungeon: try again in a moment.")
        raise ActionError(400, f"{user.name} is not in the dungeon yet: confirm first.")
    if request.verb == "get":
        return _get(state, request.target)
    return _kill(state, request.target, request.weapon)


def arranged(state: GameState) -> bool:
    """The dungeon is ready to play: the user and the monster in the room, every item placed.

    Actions wait for it, so none is saved halfway through the arrangement (an action's saved
    rows win over the tables, which the arrangement's later steps would then never reach).
    """
    user = state.user
    held = set(user.inventory_items)
    return (
        bool(user.current_room)
        and state.monster.current_room == user.current_room
        and all(item.room or item.monster or item.name in held for item in state.items.values())
    )


def _find_item(state: GameState, name: str) -> Item | None:
    return next((item for item in state.items.values() if same(item.name, name)), None)


def _get(state: GameState, target: str) -> Outcome:
    user, room, monster = state.user, state.room, state.monster
    item = _find_item(state, target)
    if item is None:
        if same(monster.name, target) and monster.current_room == user.current_room:
            raise ActionError(400, f"The {monster.name} cannot be picked up: kill it.")
        raise ActionError(400, f"There is no {excerpt(target)} here to get.")
    if item.name in user.inventory_items:
        raise ActionError(400, f"{user.name} already holds the {item.name}.")
    if item.monster and item.monster == monster.name and monster.current_room == user.current_room:
        raise ActionError(400, f"The {monster.name} still holds the {item.name}: kill it first.")
    if item.room != user.current_room or item.monster:
        raise ActionError(400, f"There is no {excerpt(target)} here to get.")
    item.room = ""
    if item.name in room.inventory_items:
        room.inventory_items.remove(item.name)
    user.inventory_items.append(item.name)
    if item.is_treasure:
        return Outcome(
            f"{user.name} picked up the {item.name}! The treasure is theirs.",
            [GOT_TREASURE_EVENT],
        )
    return Outcome(f"{user.name} picked up the {item.name}.")


def _kill(state: GameState, target: str, weapon_name: str | None) -> Outcome:
    user, room, monster = state.user, state.room, state.monster
    if not same(monster.name, target) or monster.current_room != user.current_room:
        raise ActionError(400, f"There is no {excerpt(target)} here to kill.")
    if not monster.is_alive:
        raise ActionError(400, f"The {monster.name} is already dead.")
    if not weapon_name:
        raise ActionError(400, f"Say what to kill the {monster.name} with.")
    weapon = next((name for name in user.inventory_items if same(name, weapon_name)), None)
    if weapon is None:
        raise ActionError(400, f"{user.name} does not hold the {excerpt(weapon_name)}.")
    monster.is_alive = False
    dropped = list(monster.inventory_items)
    for name in dropped:
        item = state.items.get(name)
        if item is not None:
            item.monster = ""
            item.room = room.name
        if name not in room.inventory_items:
            room.inventory_items.append(name)
    monster.inventory_items = []
    message = f"{user.name} killed the {monster.name} with the {weapon}!"
    if dropped:
        message += f" It dropped the {', '.join(dropped)}."
    return Outcome(message, [KILL_MONSTER_EVENT])


def progress_events(state: GameState) -> list[str]:
    """The game-monitor events that the state says have happened (to announce them again)."""
    events = [] if state.monster.is_alive else [KILL_MONSTER_EVENT]
    treasure = [name for name, item in state.items.items() if item.is_treasure]
    if any(name in state.user.inventory_items for name in treasure):
        events.append(GOT_TREASURE_EVENT)
    return events
