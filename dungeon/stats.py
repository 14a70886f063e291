"""The game's statistics, counted by the UserCounter entity: pure counting rules."""

from __future__ import annotations

COUNTER_ENTITY = "UserCounter"
COUNTER_KEY = "global"
EVENTS = {"created": "created", "confirmed": "confirmed", "dead": "dead", "winner": "winners"}


def empty() -> dict[str, int]:
    return {"created": 0, "confirmed": 0, "dead": 0, "winners": 0}


def count(state: dict[str, int] | None, event: str) -> dict[str, int]:
    """The counts after one more user event (created, confirmed, dead or winner)."""
    if event not in EVENTS:
        raise ValueError(f"Unknown user event '{event}': use one of {', '.join(EVENTS)}.")
    counts = {**empty(), **(state or {})}
    counts[EVENTS[event]] += 1
    return counts
