"""The SDK's action shapes (`models/actions/`): which ones take a task id, and how to walk them."""

from __future__ import annotations

from collections.abc import Iterator
from enum import IntEnum
from typing import Any


class ActionType(IntEnum):
    CallActivity = 0
    CallActivityWithRetry = 1
    CallSubOrchestrator = 2
    CallSubOrchestratorWithRetry = 3
    ContinueAsNew = 4
    CreateTimer = 5
    WaitForExternalEvent = 6
    CallEntity = 7
    CallHttp = 8
    SignalEntity = 9
    WhenAny = 11
    WhenAll = 12
    # Not the 1.x SDK's: a Durable Task SDK's send_event to another orchestration.
    SendEvent = 100
    # Not the 1.x SDK's either: a Durable Task SDK's critical section (lock_entities) begins
    # with a lock request and ends with an unlock to each entity it locked.
    LockEntities = 101
    UnlockEntity = 102


# Actions for which the SDK takes the next number of its sequence, as the host must too.
NUMBERED = frozenset(
    {
        ActionType.CallActivity,
        ActionType.CallActivityWithRetry,
        ActionType.CallSubOrchestrator,
        ActionType.CallSubOrchestratorWithRetry,
        ActionType.ContinueAsNew,
        ActionType.CreateTimer,
        ActionType.CallEntity,
        ActionType.CallHttp,
        ActionType.SignalEntity,
        ActionType.SendEvent,
        ActionType.LockEntities,
        ActionType.UnlockEntity,
    }
)
ENTITY_MESSAGES = frozenset(
    {
        ActionType.CallEntity,
        ActionType.SignalEntity,
        ActionType.LockEntities,
        ActionType.UnlockEntity,
    }
)
COMPOUND = frozenset({ActionType.WhenAny, ActionType.WhenAll})

Path = tuple[int, ...]


def leaves(actions: list[dict[str, Any]], start: int = 0) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Leaf actions from top-level index `start` on, depth first: the order the SDK numbers them."""
    for index in range(start, len(actions)):
        yield from _walk(actions[index], (index,))


def _walk(action: dict[str, Any], path: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    if action.get("actionType") in COMPOUND:
        for child_index, child in enumerate(action.get("compoundActions") or []):
            yield from _walk(child, (*path, child_index))
    else:
        yield path, action


def at_path(actions: list[dict[str, Any]], path: Path) -> dict[str, Any] | None:
    """The action at a path, or None if this replay's actions are shorter than that."""
    node: Any = actions
    for depth, index in enumerate(path):
        items = node if depth == 0 else node.get("compoundActions") or []
        if index >= len(items):
            return None
        node = items[index]
    return node
