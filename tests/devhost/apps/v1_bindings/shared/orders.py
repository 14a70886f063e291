"""Shared by the functions through a relative import, as v1 apps share code."""

import json


def order_entity(order: dict, dequeue_count: int) -> str:
    return json.dumps(
        {
            "PartitionKey": "orders",
            "RowKey": order["orderId"],
            "item": order["item"],
            "tries": dequeue_count,
        }
    )
