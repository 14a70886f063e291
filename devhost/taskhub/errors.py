"""Errors the engine answers clients with: each carries the HTTP status that says why."""

from __future__ import annotations


class EngineError(Exception):
    """A client request the engine refuses; `status` is the HTTP status that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
