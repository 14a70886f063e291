"""The log's notices of work that waits for a worker: once per worker wanted, and bounded.

A start of a name no connected worker registers says so in the log, once for that name (a
fan-out of 1,000 activities is one line). Names are chosen by clients, so what was told is kept
for the most recent `limit` names only; and a name some worker takes again is forgotten, so
that its work is told of again if that worker goes.
"""

from __future__ import annotations

from collections import OrderedDict

DEFAULT_LIMIT = 1024  # names remembered as told


class WaitNotices:
    """Which waits the log has told of."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self._told: OrderedDict[str, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._told)

    def first(self, wanted: str) -> bool:
        """Whether the wait for `wanted` is new to the log (it is remembered as told)."""
        if wanted in self._told:
            return False
        self._told[wanted] = None
        while len(self._told) > self.limit:
            self._told.popitem(last=False)
        return True

    def served(self, wanted: str) -> None:
        """A connected worker takes such work now: a later wait is news again."""
        self._told.pop(wanted, None)
