"""Activities beyond `maxConcurrentActivityFunctions` (host.json) wait here, in the host, for a
slot: the newest orchestration's first, unless one has been passed over for too long."""

from __future__ import annotations

import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from .calls import Call

MAX_PASSED_OVER = 5.0  # seconds a waiting activity may be passed over by newer ones


class ActivitySlots:
    """At most `limit()` activities running at once (read each time: the setting may change
    while the host runs); the others wait in `WaitingActivities`.

    `start` runs a waiting activity and says whether it took a slot (with no live worker it
    fails the activity at once, and the next one is tried).
    """

    def __init__(self, limit: Callable[[], int], start: Callable[[Call], bool]) -> None:
        self.limit = limit
        self.waiting = WaitingActivities()
        self.running = 0
        self._start = start

    def add(self, call: Call, created: float) -> None:
        """An activity of an orchestration created at `created` (a timestamp)."""
        self.waiting.add(call, created)
        self._start_waiting()

    def finished(self) -> None:
        """A running activity has its outcome: its slot goes to the next one waiting."""
        self.running -= 1
        self._start_waiting()

    def _start_waiting(self) -> None:
        """Start waiting activities while fewer than the limit run."""
        while self.waiting and self.running < self.limit():
            if self._start(self.waiting.take()):
                self.running += 1


@dataclass(order=True)
class _Waiting:
    newest_first: float  # minus the calling orchestration's creation time
    number: int
    call: Call = field(compare=False)
    since: float = field(compare=False)
    taken: bool = field(default=False, compare=False)


class WaitingActivities:
    """Activities waiting for a slot: those of the most recently created orchestration first,
    unless one has waited MAX_PASSED_OVER seconds, which goes first then.

    Newest first finishes flows one at a time rather than all together: a player who just moved
    on gets their next step before everyone's first steps are done, so many players started at
    once are not all kept waiting until the end (nor do their next requests all come at once).
    The limit keeps an old orchestration's activities from waiting for ever behind new ones.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._by_age: list[_Waiting] = []  # a heap
        self._in_order: deque[_Waiting] = deque()
        self._numbers = itertools.count()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, call: Call, created: float) -> None:
        waiting = _Waiting(-created, next(self._numbers), call, self._clock())
        heapq.heappush(self._by_age, waiting)
        self._in_order.append(waiting)
        self._count += 1

    def take(self) -> Call:
        while self._in_order[0].taken:
            self._in_order.popleft()
        if self._clock() - self._in_order[0].since >= MAX_PASSED_OVER:
            chosen = self._in_order.popleft()
        else:
            while self._by_age[0].taken:
                heapq.heappop(self._by_age)
            chosen = heapq.heappop(self._by_age)
        chosen.taken = True
        self._count -= 1
        if not self._count:  # what is left in either is taken
            self._by_age.clear()
            self._in_order.clear()
        return chosen.call
