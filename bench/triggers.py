"""Queue-trigger benchmark: messages through a v1 function with table, blob and queue outputs.

    python -m bench.triggers [--messages N] [--runs N]

Starts its own Azurite, sends N order messages to the `Orders` function of the v1 test app (one
table row, one blob and one queue message written per order) and times until every order has
left its `shipped` message. Prints the median over the runs, beside the cost of the same storage
writes made directly from one thread, so the line says what the host adds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from devhost.azurite import Azurite
from devhost.testing import DurableHarness
from tests.devhost.storage_checks import Account

APP = Path(__file__).resolve().parent.parent / "tests" / "devhost" / "apps" / "v1_bindings"


def settings(account: Account) -> dict[str, str]:
    names = {
        "ORDERS_QUEUE": account.name("orders"),
        "SHIPPED_QUEUE": account.name("shipped"),
        "RECEIPTS": account.name("receipts"),
        "ORDERS_TABLE": account.table_name("orders"),
    }
    for unused in ("FRAGILE_QUEUE", "TICKS_QUEUE", "UPLOADED_QUEUE", "UPLOADS", "COPIES"):
        names[unused] = account.name(unused.split("_")[0].lower())
    return names


def shipped(account: Account, queue: str) -> int:
    return account.queues.get_queue_client(queue).get_queue_properties().approximate_message_count


def one_run(connection: str, messages: int) -> float:
    account = Account(connection)
    names = settings(account)
    env = {"AzureWebJobsStorage": connection, **names}
    with DurableHarness(APP, env=env):
        started = time.perf_counter()
        for i in range(messages):
            account.send(names["ORDERS_QUEUE"], json.dumps({"orderId": f"o{i}", "item": "torch"}))
        while shipped(account, names["SHIPPED_QUEUE"]) < messages:
            time.sleep(0.05)
        return time.perf_counter() - started


def direct_writes(connection: str, messages: int) -> float:
    """The same storage round trips (receive+delete, upsert, upload, send) from one thread."""
    account = Account(connection)
    suffix = uuid.uuid4().hex[:8]
    queue = account.queues.get_queue_client(f"direct-{suffix}")
    queue.create_queue()
    table = account.tables.create_table(f"direct{suffix}")
    container = account.blobs.create_container(f"direct-{suffix}")
    started = time.perf_counter()
    for i in range(messages):
        queue.send_message("x")
        for message in queue.receive_messages(max_messages=1):
            queue.delete_message(message)
        table.upsert_entity({"PartitionKey": "p", "RowKey": str(i)})
        container.upload_blob(f"{i}.txt", b"x", overwrite=True)
        queue.send_message("shipped")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with Azurite(Path(tempfile.mkdtemp(prefix="bench-triggers-"))) as azurite:
        hosted = [one_run(azurite.connection_string, args.messages) for _ in range(args.runs)]
        direct = [direct_writes(azurite.connection_string, args.messages) for _ in range(args.runs)]
    host_rate = args.messages / statistics.median(hosted)
    direct_rate = args.messages / statistics.median(direct)
    print(
        f"queue trigger, {args.messages} orders (table + blob + queue outputs): "
        f"{host_rate:.0f} msg/s through devhost; {direct_rate:.0f} msg/s for the same writes "
        f"made directly from one thread (median of {args.runs})"
    )


if __name__ == "__main__":
    main()
