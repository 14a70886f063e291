"""User code's log records under `Function.<Name>.User`, the category the Functions host uses.

A function that runs in the host's process (timer, queue and blob functions always do; HTTP
functions and activities when no worker processes run) logs through the root logger or one of
its own. While its code runs (not its bindings' reads and writes), `current_function` names
it, and the record factory installed here files each record it logs under its function's
category, as a worker's records are filed when they reach the host. devhost's own loggers keep
their names.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

current_function: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "devhost_current_function", default=None
)
_installed = False


def category(function_name: str) -> str:
    return f"Function.{function_name}.User"


def install() -> None:
    """Wrap the logging record factory once, for this process."""
    global _installed
    if _installed:
        return
    _installed = True
    make_record = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        function = current_function.get()
        if function is not None and not record.name.startswith("devhost"):
            record.name = category(function)
        return record

    logging.setLogRecordFactory(factory)


@contextmanager
def running(function_name: str) -> Iterator[None]:
    """Within this block (this thread, or this task), records are the function's."""
    token = current_function.set(function_name)
    try:
        yield
    finally:
        current_function.reset(token)
