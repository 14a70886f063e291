import json
import logging

import azure.functions as func

from ..shared.orders import order_entity


def main(msg: func.QueueMessage, row: func.Out[str], receipt: func.Out[str]) -> str:
    order = json.loads(msg.get_body())
    logging.getLogger(__name__).info("order %s", order["orderId"])
    row.set(order_entity(order, msg.dequeue_count))
    receipt.set(f"{order['item']} for order {order['orderId']}")
    return f"shipped {order['orderId']}"
