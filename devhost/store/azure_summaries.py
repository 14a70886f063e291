"""The instance list's summaries in memory, so that a sorted page costs no storage round trip.

Azure tables return rows in key order only, and the listing is keyed by instance id; a list
newest first (or by name, status or last update) would read the whole listing for each page.
The host is the hub's only writer (it holds the lease), and every row it writes to the listing
passes through `InstanceListing.mark` first: so one scan of the listing, the first time a
sorted page is asked for, and the marks after it, keep every instance's summary here.

While that scan runs, marks and purges go aside and win over what the scan read, as they are
newer. A store that only reads (beside a running host) never builds it: the host writes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..taskhub.model import InstanceQuery, InstanceRecord
from ..taskhub.ordering import InstanceOrder, SortedSummaries, summary
from .azure_rows import record_from

# The listing columns a summary needs; `CustomStatus` is its first chunk, enough for a preview.
COLUMNS = ["RowKey", "Name", "RuntimeStatus", "CreatedTime", "LastUpdatedTime", "ExecutionId",
           "CustomStatus"]  # fmt: skip


def summary_from_row(row: dict[str, Any]) -> InstanceRecord:
    """The summary of a listing row (a whole row or the COLUMNS of one)."""
    present = {k: v for k, v in row.items() if v is not None}
    return summary(record_from(present, instance_id=row["RowKey"]))


class SummaryIndex:
    """Every instance's summary by id, once built; until then it holds nothing."""

    def __init__(self) -> None:
        self._records: SortedSummaries | None = None
        self._aside: dict[str, InstanceRecord | None] | None = None  # changes during the build

    @property
    def ready(self) -> bool:
        return self._records is not None

    def page(
        self, query: InstanceQuery, order: InstanceOrder, top: int, token: str | None
    ) -> tuple[list[InstanceRecord], str | None]:
        """A page of the list (`ordering.sorted_page`), from memory."""
        assert self._records is not None, "build the index first"
        return self._records.page(query, order, top, token)

    def note(self, row: dict[str, Any]) -> None:
        """A listing row is to be written (its instance started, changed or was recovered)."""
        if self._records is not None or self._aside is not None:  # nothing to keep before a build
            self._change(row["RowKey"], summary_from_row(row))

    def clear(self) -> None:
        """Forget every summary (the hub is being deleted): the next sorted page builds again."""
        self._records = None

    def drop(self, instance_id: str) -> None:
        """The instance is being purged."""
        self._change(instance_id, None)

    def _change(self, instance_id: str, record: InstanceRecord | None) -> None:
        if self._aside is not None:
            self._aside[instance_id] = record
        if self._records is not None and record is None:
            self._records.remove(instance_id)
        elif self._records is not None and record is not None:
            self._records.put(record)

    async def build(self, scan: Callable[[], Awaitable[list[dict[str, Any]]]]) -> None:
        """Fill the index from `scan` (the listing's COLUMNS, read once everything marked
        before this call is written); a failed scan leaves it empty, to be tried again."""
        self._aside = {}
        try:
            rows = await scan()
        except BaseException:
            self._aside = None
            raise
        records = {row["RowKey"]: summary_from_row(row) for row in rows}
        for instance_id, record in self._aside.items():
            if record is None:
                records.pop(instance_id, None)
            else:
                records[instance_id] = record
        self._records, self._aside = SortedSummaries(records.values()), None
