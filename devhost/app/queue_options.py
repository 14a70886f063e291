"""`extensions.queues` of host.json: how queue triggers poll, and how queue bindings encode.

Here, beside the bindings, because both the queue trigger (`triggers/queue.py`) and a worker
process's queue output binding read it, and a worker runs no triggers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any


def parse_timespan(value: Any, default: timedelta) -> timedelta:
    """host.json TimeSpans: "hh:mm:ss[.fff]"; a bare number is milliseconds."""
    if value is None:
        return default
    if isinstance(value, int | float):
        return timedelta(milliseconds=value)
    found = re.fullmatch(r"(\d+):(\d{1,2}):(\d{1,2}(?:\.\d+)?)", str(value).strip())
    if not found:
        raise ValueError(f"host.json: {value!r} is not a TimeSpan (hh:mm:ss)")
    hours, minutes, seconds = found.groups()
    return timedelta(hours=int(hours), minutes=int(minutes), seconds=float(seconds))


@dataclass
class QueueOptions:
    """`extensions.queues` of host.json, with the host's defaults."""

    batch_size: int = 16
    max_dequeue_count: int = 5
    visibility_timeout: timedelta = timedelta(0)
    max_polling_interval: timedelta = timedelta(minutes=1)
    base64: bool = True

    @classmethod
    def from_host_json(cls, host_json: dict[str, Any]) -> QueueOptions:
        queues = (host_json.get("extensions") or {}).get("queues") or {}
        defaults = cls()
        return cls(
            batch_size=int(queues.get("batchSize", defaults.batch_size)),
            max_dequeue_count=int(queues.get("maxDequeueCount", defaults.max_dequeue_count)),
            visibility_timeout=parse_timespan(
                queues.get("visibilityTimeout"), defaults.visibility_timeout
            ),
            max_polling_interval=parse_timespan(
                queues.get("maxPollingInterval"), defaults.max_polling_interval
            ),
            base64=str(queues.get("messageEncoding", "base64")).lower() != "none",
        )
