"""One error path for every unary RPC of the sidecar: the engine's refusals (an `EngineError`
with its HTTP status), a hub that is not served and storage faults become gRPC status codes
with the engine's sentence."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from ..store.base import StorageRequestError, StorageUnavailableError
from ..taskhub.errors import EngineError
from .hubs import HubRefused

STATUS_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.FAILED_PRECONDITION,
    410: grpc.StatusCode.FAILED_PRECONDITION,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
}
R = TypeVar("R")
Method = Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[R]]


def rpc(method: Method[R]) -> Method[R]:
    """One error path for every unary RPC: refusals become status codes with their sentence."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> R:
        try:
            return await method(self, request, context)
        except EngineError as err:
            await context.abort(STATUS_CODES.get(err.status, grpc.StatusCode.UNKNOWN), str(err))
        except HubRefused as err:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(err))
        except (
            StorageRequestError
        ) as err:  # refused for good, e.g. a continuation token we never gave
            code = STATUS_CODES.get(err.status, grpc.StatusCode.FAILED_PRECONDITION)
            await context.abort(code, str(err))
        except StorageUnavailableError as err:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"task hub storage: {err}")
        raise AssertionError("abort returns only by raising")

    return wrapper
