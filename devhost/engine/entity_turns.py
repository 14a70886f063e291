"""Which of an entity's waiting requests it takes now: the rules of locks and deferred signals.

An entity takes its requests in arrival order, except that
- a signal scheduled for later (`due`) waits in the inbox until its moment;
- while an orchestration's critical section holds the entity (`lock`), only that orchestration's
  requests are taken (its calls, signals and the unlock); everyone else's wait, in order;
- a lock request takes a free entity for its orchestration, and waits while another holds it;
- an unlock from anyone but the holder is dropped (a repeat, or a section that already ended).
A turn ends where the lock is let go, so requests that waited for it keep their place. Pure: no
I/O, no clock of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ..taskhub.history import parse_time
from ..taskhub.model import Message
from .entities import EntityRequest


@dataclass
class Turn:
    """What an entity does now with its waiting requests."""

    steps: list[EntityRequest] = field(default_factory=list)  # operations, locks, unlocks
    consumed: list[str] = field(default_factory=list)  # message ids out of the inbox
    lock: str | None = None  # who holds the entity after the steps
    next_due: datetime | None = None  # the earliest deferred signal still waiting


def take_turn(inbox: list[Message], lock: str | None, seen: set[str], now: datetime) -> Turn:
    """The requests of `inbox` the entity applies now; `seen` holds the ids already applied
    (a repeat is consumed without a step)."""
    turn = Turn(lock=lock)
    for message in inbox:
        request = EntityRequest.from_message(message)
        if request.id in seen:
            turn.consumed.append(message.message_id)
            continue
        if request.due is not None:
            due = parse_time(request.due)
            if due > now:
                turn.next_due = due if turn.next_due is None else min(turn.next_due, due)
                continue
        if request.unlock:
            turn.consumed.append(message.message_id)
            if turn.lock is not None and turn.lock == request.parent:
                seen.add(request.id)
                turn.steps.append(request)
                turn.lock = None
                break  # what waited for the lock goes next, in its place
            continue
        if turn.lock is not None and request.parent != turn.lock:
            continue  # waits until the critical section ends
        if request.lock_set is not None:
            if turn.lock is not None:
                continue
            turn.lock = request.parent
        seen.add(request.id)
        turn.steps.append(request)
        turn.consumed.append(message.message_id)
    return turn
