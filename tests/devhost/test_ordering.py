"""The instance list's order and pages (pure), and the Azure store's summaries in memory."""

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest

from devhost.store.azure_listing import listing_row
from devhost.store.azure_rows import record_entity
from devhost.store.azure_summaries import SummaryIndex
from devhost.taskhub.errors import EngineError
from devhost.taskhub.model import InstanceQuery, InstanceRecord, RuntimeStatus
from devhost.taskhub.ordering import PREVIEW_CHARS, InstanceOrder, SortedSummaries, sorted_page

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def record(instance_id: str, name: str, status: str, created: int, updated: int = 0):
    return InstanceRecord(
        instance_id,
        name,
        RuntimeStatus(status),
        T0 + timedelta(seconds=created),
        T0 + timedelta(seconds=max(created, updated)),
        "e",
        input='"big input"',
        custom_status='"x"',
    )


RECORDS = [
    record("a", "Zeta", "Completed", 0, 50),
    record("b", "alpha", "Running", 1),
    record("c", "Beta", "Failed", 2, 10),
    record("d", "alpha", "Completed", 3),
]


def every_page(order: InstanceOrder, top: int, query=None) -> list[list[str]]:
    pages, token = [], None
    while True:
        page, token = sorted_page(RECORDS, query or InstanceQuery(), order, top, token)
        pages.append([r.instance_id for r in page])
        if token is None:
            return pages


def test_each_order_pages_through_every_instance_once():
    newest = InstanceOrder.parse(None, None)
    assert every_page(newest, 3) == [["d", "c", "b"], ["a"]]
    assert every_page(InstanceOrder.parse("createdTime", "asc"), 2) == [["a", "b"], ["c", "d"]]
    # names ignore case; within a name the newest first
    assert every_page(InstanceOrder.parse("name", None), 10) == [["d", "b", "c", "a"]]
    assert every_page(InstanceOrder.parse("name", "desc"), 10) == [["a", "c", "b", "d"]]
    # what needs a look first: running, then failed, then completed
    assert every_page(InstanceOrder.parse("runtimeStatus", None), 10) == [["b", "c", "d", "a"]]
    assert every_page(InstanceOrder.parse("lastUpdatedTime", None), 1) == [
        ["a"],
        ["c"],
        ["d"],
        ["b"],
    ]
    assert every_page(newest, 2, InstanceQuery(name="alpha")) == [["d", "b"]]


def test_a_start_between_pages_does_not_shift_the_next_page():
    order = InstanceOrder.parse(None, None)
    first, token = sorted_page(RECORDS, InstanceQuery(), order, 2, None)
    newer = [*RECORDS, record("e", "Late", "Running", 9)]
    second, _ = sorted_page(newer, InstanceQuery(), order, 2, token)
    assert [r.instance_id for r in first + second] == ["d", "c", "b", "a"]


def test_a_page_holds_summaries_with_a_short_custom_status():
    long = record("l", "Long", "Running", 9)
    long.custom_status = '"' + "s" * 500 + '"'
    [summary], _ = sorted_page([long, *RECORDS], InstanceQuery(), InstanceOrder(), 1, None)
    assert summary.input is None and summary.output is None
    assert len(summary.custom_status) == PREVIEW_CHARS and summary.custom_status.endswith("…")
    assert long.custom_status.endswith('s"'), "the record itself is left alone"


@pytest.mark.parametrize(
    ("sort", "order", "message"),
    [
        ("input", None, "sort must be one of createdTime, lastUpdatedTime, name, runtimeStatus"),
        ("__class__", None, "sort must be one of"),
        (None, "up", "order must be asc or desc, not 'up'."),
    ],
)
def test_an_unknown_sort_or_order_is_refused(sort, order, message):
    with pytest.raises(EngineError, match=message.replace(".", r"\.")) as caught:
        InstanceOrder.parse(sort, order)
    assert caught.value.status == 400


@pytest.mark.parametrize("token", ["x", "e30=", "eyJzb3J0IjogMX0=", "W10="])
def test_a_token_that_is_not_one_the_list_gave_out_is_refused(token):
    with pytest.raises(EngineError, match="continuation token") as caught:
        sorted_page(RECORDS, InstanceQuery(), InstanceOrder(), 1, token)
    assert caught.value.status == 400


def every(index: SummaryIndex) -> list[InstanceRecord]:
    return index.page(InstanceQuery(), InstanceOrder(), 1000, None)[0]


def row(instance: InstanceRecord) -> dict:
    return listing_row(record_entity(instance, "state") | {"Next": 0})


def test_changes_during_the_build_win_over_what_the_scan_read():
    index = SummaryIndex()
    stale = [row(r) for r in RECORDS]

    async def scan():
        await asyncio.sleep(0)
        index.note(row(record("b", "alpha", "Completed", 1, 99)))  # b finished meanwhile
        index.drop("c")  # c was purged meanwhile
        index.note(row(record("n", "New", "Running", 5)))
        return stale

    asyncio.run(index.build(scan))
    by_id = {r.instance_id: r for r in every(index)}
    assert sorted(by_id) == ["a", "b", "d", "n"]
    assert by_id["b"].runtime_status == RuntimeStatus.Completed
    assert by_id["a"].input is None and by_id["a"].custom_status == '"x"'
    index.drop("a")
    index.note(row(record("m", "More", "Pending", 6)))
    assert sorted(r.instance_id for r in every(index)) == ["b", "d", "m", "n"]


def test_a_failed_build_leaves_the_index_to_be_built_again():
    index = SummaryIndex()

    async def broken():
        raise OSError("storage went away")

    with pytest.raises(OSError):
        asyncio.run(index.build(broken))
    assert not index.ready
    index.note(row(RECORDS[0]))  # ignored until a build
    assert not index.ready


def pages(lister, query: InstanceQuery, order: InstanceOrder, top: int) -> list[list[str]]:
    result, token = [], None
    while True:
        page, token = lister(query, order, top, token)
        result.append([r.instance_id for r in page])
        if token is None:
            return result


def test_summaries_kept_sorted_page_as_a_scan_of_them_does():
    """Starts, changes and purges in any order: every page of every order is the scan's."""
    shuffle = random.Random(24)
    names, statuses = ["alpha", "Beta", "gamma"], ["Running", "Completed", "Failed", "Pending"]
    kept = SortedSummaries(RECORDS)
    current = {r.instance_id: r for r in RECORDS}
    for _ in range(300):
        instance_id = f"i{shuffle.randrange(40)}"
        if shuffle.random() < 0.2:
            kept.remove(instance_id)
            current.pop(instance_id, None)
            continue
        changed = record(instance_id, shuffle.choice(names), shuffle.choice(statuses),
                         shuffle.randrange(20), shuffle.randrange(20))  # fmt: skip
        kept.put(changed)
        current[instance_id] = changed
    assert len(kept) == len(current)
    live = {RuntimeStatus.Running, RuntimeStatus.Failed}
    queries = [InstanceQuery(), InstanceQuery(name="alpha"), InstanceQuery(runtime_status=live)]
    for field in ("createdTime", "lastUpdatedTime", "name", "runtimeStatus"):
        for direction in ("asc", "desc"):
            order = InstanceOrder.parse(field, direction)
            for query in queries:
                for top in (1, 3, 50):
                    expected = pages(
                        lambda q, o, t, k: sorted_page(current.values(), q, o, t, k),
                        query, order, top,
                    )  # fmt: skip
                    assert pages(kept.page, query, order, top) == expected, (field, direction)
