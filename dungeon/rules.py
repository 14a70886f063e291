"""The rules of `get` and `kill`: pure functions from a game state to a changed state."""

from __future__ import annotations

from dataclasses import dataclass, field

from .model import GameState
from .workflows import GOT_TREASURE_EVENT, KILL_MONSTER_EVENT

ACTIONS = ("get", "kill")


class ActionError(Exception):
    """An action the rules refuse; `status` is the HTTP status, the message one sentence."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Outcome:
    message: str
    events: list[str] = field(default_factory=list)


def check_request(action: object, target: object) -> tuple[str, str]:
    if not isinstance(action, str) or not action.strip():
        raise ActionError(400, "The action is missing: use 'get' or 'kill'.")
    action = action.strip().lower()
    if action not in ACTIONS:
        raise ActionError(400, f"Unknown action '{action}': use 'get' or 'kill'.")
    if not isinstance(target, str) or not target.strip():
        raise ActionError(400, f"The target of '{action}' is missing.")
    return action, target.strip()


def perform(state: GameState, action: str, target: str, weapon: str | None) -> Outcome:
    """Apply an action to `state` in place, or raise ActionError and change nothing."""
    if not state.user.is_alive:
        raise ActionError(409, f"{state.user.name} is dead and cannot act.")
    if action == "get":
        return _get(state, target)
    return _kill(state, target, weapon)


def _get(state: GameState, target: str) -> Outcome:
    user, room = state.user, state.room
    item = state.items.get(target)
    if item is not None and target in user.inventory_items:
        raise ActionError(400, f"{user.name} already holds the {target}.")
    if item is None or not user.current_room or item.room != user.current_room or item.monster:
        raise ActionError(400, f"There is no {target} here to get.")
    item.room = ""
    if target in room.inventory_items:
        room.inventory_items.remove(target)
    user.inventory_items.append(target)
    if item.is_treasure:
        return Outcome(
            f"{user.name} picked up the {target}! The treasure is theirs.", [GOT_TREASURE_EVENT]
        )
    return Outcome(f"{user.name} picked up the {target}.")


def _kill(state: GameState, target: str, weapon: str | None) -> Outcome:
    user, room, monster = state.user, state.room, state.monster
    if monster.name != target or not user.current_room or monster.current_room != user.current_room:
        raise ActionError(400, f"There is no {target} here to kill.")
    if not monster.is_alive:
        raise ActionError(400, f"The {target} is already dead.")
    weapon = (weapon or "").strip()
    if not weapon:
        raise ActionError(400, f"Say what to kill the {target} with.")
    if weapon not in user.inventory_items:
        raise ActionError(400, f"{user.name} does not hold the {weapon}.")
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
    message = f"{user.name} killed the {target} with the {weapon}!"
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
