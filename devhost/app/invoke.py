"""Calling user functions with the arguments the Python worker would give them."""

from __future__ import annotations

import asyncio
import functools
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter

from . import function_logs
from .app_index import FunctionInfo
from .binding_expressions import json_properties
from .binding_spec import HTTP_OUTPUT, RETURN
from .bindings import BindingIO, OutValue


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
    """Runs functions: async ones on the loop, sync ones on the executor, as the worker does.

    Storage input bindings are read and output bindings written on the executor, beside the
    function; `data` is the trigger's binding data, for expressions such as `{name}`.
    """

    executor: Executor
    app_dir: str
    client_json: Callable[[], str]
    io: BindingIO | None = None

    def __post_init__(self) -> None:
        function_logs.install()

    def arguments(
        self, info: FunctionInfo, trigger_value: Any, data: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {info.trigger_param: trigger_value}
        if info.client_param:
            kwargs[info.client_param] = self.client_json()
        if info.accepts_context:
            kwargs["context"] = InvocationContext(info.name, info.directory or self.app_dir)
        for binding in info.extras:
            if binding.is_output:
                if binding.name != RETURN:
                    kwargs[binding.name] = OutValue()
            else:
                kwargs[binding.name] = self._io.read(
                    info.name, binding, info.annotations.get(binding.name), data or {}
                )
        return kwargs

    def outputs(
        self, info: FunctionInfo, kwargs: dict[str, Any], result: Any, data: dict | None = None
    ) -> Any:
        """Write the output bindings; what the trigger answers with (an HTTP response)."""
        answer = result
        for binding in info.extras:
            if not binding.is_output:
                continue
            returned = binding.name == RETURN
            value = result if returned else kwargs[binding.name].get()
            if binding.type == HTTP_OUTPUT:
                answer = value
                continue
            annotation = info.annotations.get("return" if returned else binding.name)
            self._io.write(info.name, binding, value, annotation, data or {})
        return answer

    @property
    def _io(self) -> BindingIO:
        if self.io is None:
            raise RuntimeError("storage bindings need a storage account; none is configured")
        return self.io

    def call_sync(
        self, info: FunctionInfo, trigger_value: Any, data: dict[str, Any] | None = None
    ) -> Any:
        """A sync function with its bindings, whole, on the calling thread."""
        kwargs = self.arguments(info, trigger_value, data)
        with function_logs.running(info.name):
            result = info.user_function(**kwargs)
        return self.outputs(info, kwargs, result, data)

    async def call(
        self, info: FunctionInfo, trigger_value: Any, data: dict[str, Any] | None = None
    ) -> Any:
        loop = asyncio.get_running_loop()
        if not info.is_async:
            return await loop.run_in_executor(
                self.executor, self.call_sync, info, trigger_value, data
            )
        if not info.io_bindings:  # nothing to read or write: stay on the loop
            kwargs = self.arguments(info, trigger_value)
        else:
            kwargs = await loop.run_in_executor(
                self.executor, self.arguments, info, trigger_value, data
            )
        with function_logs.running(info.name):
            result = await info.user_function(**kwargs)
        if not info.io_bindings:
            return self.outputs(info, kwargs, result)
        return await loop.run_in_executor(
            self.executor, functools.partial(self.outputs, info, kwargs, result, data)
        )


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


def _activity_data(info: FunctionInfo, value: Any) -> dict[str, Any] | None:
    """An object input's properties are binding data ({id}), for activities with bindings."""
    return json_properties(value) if info.extras else None


async def run_activity(
    invoker: Invoker, info: FunctionInfo, input_json: str | None
) -> ActivityOutcome:
    """Decode the input and encode the output with the worker's own activity converter."""
    try:
        value = _decode_input(input_json)
        return _encoded(await invoker.call(info, value, _activity_data(info, value)))
    except Exception as err:  # noqa: BLE001 - an activity failure is reported to its orchestrator
        return failed_activity(info.name, err)


def run_sync_activity(
    invoker: Invoker, info: FunctionInfo, input_json: str | None
) -> ActivityOutcome:
    """The thread-side twin of run_activity, for sync functions."""
    try:
        value = _decode_input(input_json)
        return _encoded(invoker.call_sync(info, value, _activity_data(info, value)))
    except Exception as err:  # noqa: BLE001 - an activity failure is reported to its orchestrator
        return failed_activity(info.name, err)


def failed_activity(name: str, err: BaseException) -> ActivityOutcome:
    return ActivityOutcome(
        ok=False,
        reason=f"Activity function '{name}' failed: {type(err).__name__}: {err}",
        details="".join(traceback.format_exception(err)),
    )
