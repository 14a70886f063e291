"""Errors the engine answers clients with: each carries the HTTP status that says why."""

from __future__ import annotations


class EngineError(Exception):
    """A client request the engine refuses; `status` is the HTTP status that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class InstanceStatusError(EngineError):
    """The instance's status refuses the operation (suspending a suspended instance, resuming a
    running one). The real host lets the runtime's exception through as a 500; a caller for which
    the operation is idempotent (the gRPC protocol) takes it as done."""

    def __init__(self, message: str) -> None:
        super().__init__(500, message)
