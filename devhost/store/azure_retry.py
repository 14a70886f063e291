"""Storage calls that wait out outages: what is worth retrying, and what is refused for good.

A permanent refusal (a 4xx such as InvalidInput) raises StorageRequestError at once; an outage
(unreachable, timed out, throttled, a 5xx) is retried with backoff until the caller's deadline,
if it set one. The first failure of an outage is reported once (`on_unreachable`), so the
layer above can say what to do about it; the store itself only retries.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from .base import StorageRequestError, StorageUnavailableError, current_deadline
from .table_batch import BatchRejectedError, BatchServerError

log = logging.getLogger("devhost.store")
T = TypeVar("T")

MAX_RETRY_DELAY = 5.0
TRANSIENT_STATUSES = frozenset({408, 429})
CONFLICT_STATUSES = frozenset({404, 409, 412})  # a transaction that lost a race
NOT_STORAGE_STATUSES = frozenset({501, 505})  # a server that does not speak the storage API


class Retrying:
    """Runs one store's storage calls: counts them, and waits out outages."""

    def __init__(
        self,
        endpoint: Callable[[], str],
        on_unreachable: Callable[[str, BaseException], None],
    ) -> None:
        self.endpoint = endpoint
        self.on_unreachable = on_unreachable
        self.round_trips = 0  # storage calls made, for benchmarks
        self._outage_logged = False

    async def __call__(self, operation: Callable[[], Awaitable[T]]) -> T:
        delay = 0.2
        while True:
            try:
                self.round_trips += 1
                result = await operation()
            except (ResourceExistsError, ResourceNotFoundError):
                raise
            except Exception as err:  # noqa: BLE001 - classified below
                refused = refusal(err)
                if refused is not None:
                    raise refused from err
                if not is_outage(err):
                    raise
                deadline = current_deadline()
                if deadline is not None and time.monotonic() + delay > deadline:
                    raise StorageUnavailableError(
                        f"Storage at {self.endpoint()} is unreachable ({type(err).__name__})"
                    ) from err
                if not self._outage_logged:
                    self.on_unreachable(self.endpoint(), err)
                if not self._outage_logged or delay >= MAX_RETRY_DELAY:
                    log.warning(
                        "Storage at %s is unreachable (%s); retrying every few seconds",
                        self.endpoint(),
                        describe(err),
                    )
                self._outage_logged = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY)
                continue
            if self._outage_logged:
                log.warning("Storage at %s is reachable again", self.endpoint())
                self._outage_logged = False
            return result


def is_outage(err: BaseException) -> bool:
    """Worth retrying: the service was unreachable, timed out, throttled or failed (5xx)."""
    if isinstance(
        err,
        ServiceRequestError
        | ServiceResponseError
        | OSError
        | BatchServerError
        | aiohttp.ClientError
        | asyncio.TimeoutError,
    ):
        return True
    status = getattr(err, "status_code", None) or getattr(err, "status", None) or 0
    return (status >= 500 and status not in NOT_STORAGE_STATUSES) or status in TRANSIENT_STATUSES


def refusal(err: BaseException) -> StorageRequestError | None:
    """A permanent 4xx answer as one sentence; None for anything else."""
    if isinstance(err, BatchRejectedError):
        status, detail = err.status, str(err)
    elif isinstance(err, HttpResponseError) and (
        400 <= (err.status_code or 0) < 500 or err.status_code in NOT_STORAGE_STATUSES
    ):
        status = err.status_code or 400
        detail = str(err.error_code or err.reason or err.message).split("\n")[0]
    else:
        return None
    if status in CONFLICT_STATUSES or status in TRANSIENT_STATUSES:
        return None  # the caller handles a lost race; throttling is retried
    answer = 413 if status == 413 or "EntityTooLarge" in detail else 400
    return StorageRequestError(
        answer, f"Azure Storage refused the request ({status}): {detail[:200]}"
    )


def describe(err: BaseException) -> str:
    text = str(err).split("\n")[0][:120]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
