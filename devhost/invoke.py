"""Calling user functions with the arguments the Python worker would give them."""

from __future__ import annotations

import asyncio
import functools
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter

from .app_index import FunctionInfo


class InvocationContext(func.Context):
    """The `context` argument a function may ask for."""

    def __init__(self, function_name: str, function_directory: str) -> None:
        self._invocation_id = str(uuid.uuid4())
        self._function_name = function_name
        self._function_directory = function_directory

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> Any:
        return None

    @property
    def retry_context(self) -> Any:
        return None

    @property
    def thread_local_storage(self) -> Any:
        return None


@dataclass
class Invoker:
    """Runs functions: async ones on the loop, sync ones on the executor, as the worker does."""

    executor: Executor
    app_dir: str
    client_json: Callable[[], str]

    def arguments(self, info: FunctionInfo, trigger_value: Any) -> dict[str, Any]:
        kwargs: dict[str, Any] = {info.trigger_param: trigger_value}
        if info.client_param:
            kwargs[info.client_param] = self.client_json()
        if info.accepts_context:
            kwargs["context"] = InvocationContext(info.name, self.app_dir)
        return kwargs

    async def call(self, info: FunctionInfo, trigger_value: Any) -> Any:
        kwargs = self.arguments(info, trigger_value)
        if info.is_async:
            return await info.user_function(**kwargs)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.executor, functools.partial(info.user_function, **kwargs)
        )

    def submit_activity(self, info: FunctionInfo, input_json: str | None) -> Future:
        """A sync activity run whole on the executor (decoding and encoding included)."""
        return self.executor.submit(run_sync_activity, info, self.arguments, input_json)


@dataclass
class ActivityOutcome:
    ok: bool
    result: str | None = None
    reason: str | None = None
    details: str | None = None


def _decode_input(input_json: str | None) -> Any:
    datum = meta.Datum(type="json", value=input_json if input_json is not None else "null")
    return ActivityTriggerConverter.decode(datum, trigger_metadata=None)


def _encoded(output: Any) -> ActivityOutcome:
    encoded = ActivityTriggerConverter.encode(output, expected_type=None)
    return ActivityOutcome(ok=True, result=encoded.value)


async def run_activity(
    invoker: Invoker, info: FunctionInfo, input_json: str | None
) -> ActivityOutcome:
    """Decode the input and encode the output with the worker's own activity converter."""
    try:
        return _encoded(await invoker.call(info, _decode_input(input_json)))
    except Exception as err:  # noqa: BLE001 - an activity failure is reported to its orchestrator
        return failed_activity(info.name, err)


def run_sync_activity(
    info: FunctionInfo, arguments: Callable[..., dict[str, Any]], input_json: str | None
) -> ActivityOutcome:
    """The thread-side twin of run_activity, for sync functions."""
    try:
        return _encoded(info.user_function(**arguments(info, _decode_input(input_json))))
    except Exception as err:  # noqa: BLE001 - an activity failure is reported to its orchestrator
        return failed_activity(info.name, err)


def failed_activity(name: str, err: BaseException) -> ActivityOutcome:
    return ActivityOutcome(
        ok=False,
        reason=f"Activity function '{name}' failed: {type(err).__name__}: {err}",
        details="".join(traceback.format_exception(err)),
    )
