"""Reading the `Instances` listing: the list API's pages, counts by status, and the scans that
recovery compares with the state rows (see `azure_listing` for how the listing is written)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from azure.data.tables.aio import TableClient

from ..taskhub.model import InstanceQuery, InstanceRecord
from ..taskhub.ordering import InstanceOrder
from .azure_listing import LISTING_PARTITION, InstanceListing
from .azure_retry import Retrying
from .azure_rows import record_from, utc
from .azure_summaries import COLUMNS as SORTABLE_COLUMNS
from .base import BAD_TOKEN, StorageRequestError

SUMMARY = ["PartitionKey", "RowKey", "RuntimeStatus", "ExecutionId", "LastUpdatedTime"]


@dataclass(frozen=True)
class Summary:
    """What recovery compares of an instance's state row and its listing row."""

    status: str
    execution_id: str
    last_updated: str


class ListingQueries:
    """Queries of one hub's listing; a `read_only` reader checks live rows against state rows."""

    def __init__(
        self,
        table: TableClient,
        retry: Retrying,
        listing: InstanceListing,
        inflate: Callable[[dict[str, Any]], Awaitable[None]],
        get_instance: Callable[[str], Awaitable[InstanceRecord | None]],
        read_only: bool,
    ) -> None:
        self.table = table
        self._retry = retry
        self._listing = listing
        self._inflate = inflate
        self._get_instance = get_instance
        self._read_only = read_only
        self._summaries_built = asyncio.Lock()

    async def query(
        self, query: InstanceQuery, top: int | None, continuation: str | None
    ) -> tuple[list[InstanceRecord], str | None]:
        where, parameters = where_clause(query)
        token = decode_token(continuation) if continuation else None
        await self._listing.settled()

        async def read() -> tuple[list[InstanceRecord], Any]:
            pages = self.table.query_entities(
                where, parameters=parameters, results_per_page=top or 1000
            ).by_page(continuation_token=token)
            entities = []
            async for page in pages:
                async for entity in page:
                    entities.append(entity)
                break
            return entities, pages.continuation_token

        entities, next_token = await self._retry(read)
        records = []
        for entity in entities:
            await self._inflate(entity)
            records.append(record_from(entity, instance_id=entity["RowKey"]))
        if self._read_only:
            records = await self._as_stored(records, query)
        encoded = (
            base64.urlsafe_b64encode(json.dumps(next_token).encode()).decode()
            if next_token
            else None
        )
        return records, encoded

    async def _as_stored(
        self, records: list[InstanceRecord], query: InstanceQuery
    ) -> list[InstanceRecord]:
        """A reader beside a running host: the listing trails the host by a moment, so each
        live row is read again from its state row, and kept only if it still matches."""

        async def current(record: InstanceRecord) -> InstanceRecord | None:
            if record.runtime_status.is_terminal:
                return record
            stored = await self._get_instance(record.instance_id)
            return stored if stored is not None and query.matches(stored) else None

        checked = await asyncio.gather(*(current(r) for r in records))
        return [r for r in checked if r is not None]

    async def sorted_page(
        self, query: InstanceQuery, order: InstanceOrder, top: int, token: str | None
    ) -> tuple[list[InstanceRecord], str | None]:
        """A page of the list in `order`, from the summaries the host keeps in memory
        (`azure_summaries`): built from one scan of the listing on first use."""
        async with self._summaries_built:
            if not self._listing.summaries.ready:
                await self._listing.summaries.build(self._scan_for_summaries)
        return self._listing.summaries.page(query, order, top, token)

    async def _scan_for_summaries(self) -> list[dict[str, Any]]:
        await self._listing.settled()

        async def read() -> list[dict[str, Any]]:
            rows = self.table.query_entities(
                "PartitionKey eq @pk",
                parameters={"pk": LISTING_PARTITION},
                select=SORTABLE_COLUMNS,
                results_per_page=1000,
            )
            return [row async for row in rows]

        return await self._retry(read)

    async def count_by_status(self, query: InstanceQuery) -> dict[str, int]:
        """Reads only the status column: 10,000 instances are ten small pages."""
        where, parameters = where_clause(query)
        await self._listing.settled()

        async def read() -> Counter[str]:
            counts: Counter[str] = Counter()
            rows = self.table.query_entities(
                where, parameters=parameters, select=["RuntimeStatus"], results_per_page=1000
            )
            async for row in rows:
                counts[row["RuntimeStatus"]] += 1
            return counts

        return dict(await self._retry(read))


async def summaries(
    table: TableClient, retry: Retrying, where: str, key: str, id_column: str
) -> dict[str, Summary]:
    """Status, execution and last update of every instance a scan finds, by id."""

    async def read() -> dict[str, Summary]:
        found = {}
        rows = table.query_entities(
            where, parameters={"k": key}, select=SUMMARY, results_per_page=1000
        )
        async for row in rows:
            found[row[id_column]] = Summary(
                row["RuntimeStatus"],
                row["ExecutionId"],
                utc(row["LastUpdatedTime"]).isoformat(),
            )
        return found

    return await retry(read)


def where_clause(query: InstanceQuery) -> tuple[str, dict[str, Any]]:
    """The Instances table filter of a query, with its parameters."""
    clauses, parameters = ["PartitionKey eq @pk"], {"pk": LISTING_PARTITION}
    if query.runtime_status:
        names = sorted(str(s) for s in query.runtime_status)
        terms = []
        for index, name in enumerate(names):
            parameters[f"s{index}"] = name
            terms.append(f"RuntimeStatus eq @s{index}")
        clauses.append("( " + " or ".join(terms) + " )")  # the SDK splits parameters on spaces
    if query.created_from:
        parameters["from"] = query.created_from
        clauses.append("CreatedTime ge @from")
    if query.created_to:
        parameters["to"] = query.created_to
        clauses.append("CreatedTime le @to")
    if query.instance_id_prefix:
        parameters["lo"] = query.instance_id_prefix
        parameters["hi"] = query.instance_id_prefix + "\uffff"
        clauses.append("RowKey ge @lo and RowKey lt @hi")
    if query.name:
        parameters["name"] = query.name
        clauses.append("Name eq @name")
    if query.orchestrations_only:  # entity ids, and only they, start with "@"
        parameters["at"], parameters["past"] = "@", "A"
        clauses.append("( RowKey lt @at or RowKey ge @past )")
    return " and ".join(clauses), parameters


def decode_token(continuation: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(continuation))
    except (ValueError, TypeError):
        raise StorageRequestError(400, BAD_TOKEN) from None
