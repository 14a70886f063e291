"""The v1 programming model: a folder per function with `function.json` and a script.

Found and loaded as the Functions host and the Python worker do: every `*/function.json` one
level below the app folder is a function named after its folder; `scriptFile` (default
`__init__.py`) is imported as `__app__.<folder>[.<module>]`, so relative imports between
folders work, and `entryPoint` (default `main`) is the function. Every function.json is checked
before any script is imported, and a bad one stops the start with its file, line and reason.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import inspect
import json
import os
import re
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import azure.functions as func

from .binding_spec import FOREIGN_TRIGGERS, RETURN, SUPPORTED_TRIGGERS, Binding, type_hints
from .load_errors import AppLoadError, describe_exception

APP_NAMESPACE = "__app__"
DEFAULT_SCRIPT = "__init__.py"
DEFAULT_ENTRY_POINT = "main"


@dataclass
class V1Function:
    """One function folder: where it is, what it binds, and (once loaded) what to call."""

    name: str
    directory: Path
    config_file: Path
    script: Path
    entry_point: str
    bindings: list[dict[str, Any]]
    trigger: dict[str, Any] | None  # None: a trigger devhost does not run
    trigger_type: str
    disabled: bool
    user_function: Callable[..., Any] | None = None


def is_v1_app(app_dir: str | Path) -> bool:
    return any(Path(app_dir).glob("*/function.json"))


def load_v1_functions(app_dir: str | Path) -> list[V1Function]:
    """Read every function.json, then import the enabled functions' scripts."""
    root = Path(app_dir).resolve()
    found = [read_function_json(path) for path in sorted(root.glob("*/function.json"))]
    _install_namespace(root)
    functions = []
    for spec in found:
        if spec.disabled:
            spec.trigger, spec.trigger_type = None, "disabled"
        elif spec.trigger is not None:
            spec.user_function = _load_entry_point(spec, root)
            _check_parameters(spec)
        functions.append(spec)
    return functions


def read_function_json(path: Path) -> V1Function:
    """One function.json, checked as the host checks it."""
    text = path.read_text(encoding="utf-8-sig")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise AppLoadError(f"{path}:{err.lineno}: not valid JSON: {err.msg}") from None
    if not isinstance(config, dict):
        raise AppLoadError(f"{path}:1: expected a JSON object")
    raw = config.get("bindings")
    if not isinstance(raw, list) or not all(isinstance(b, dict) for b in raw):
        raise AppLoadError(f"{path}:{_line_of(text, 'bindings')}: 'bindings' must be a list")
    bindings = [Binding.from_dict(b) for b in raw]
    for binding, original in zip(bindings, raw, strict=True):
        where = f"{path}:{_line_of(text, 'type', original.get('type'))}"
        if not binding.type or not binding.name:
            raise AppLoadError(f"{where}: every binding needs a 'type' and a 'name'")
        if binding.direction not in ("in", "out"):
            raise AppLoadError(f'{where}: "{binding.direction}" bindings are not supported')
        if binding.name == RETURN and not binding.is_output:
            raise AppLoadError(f'{where}: "$return" binding must have direction set to "out"')
        if binding.is_trigger and binding.type not in (*SUPPORTED_TRIGGERS, *FOREIGN_TRIGGERS):
            raise AppLoadError(f"{where}: unknown trigger type {binding.type!r}")
    triggers = [i for i, b in enumerate(bindings) if b.is_trigger]
    if len(triggers) != 1:
        count = "no trigger binding" if not triggers else "more than one trigger binding"
        raise AppLoadError(f"{path}:{_line_of(text, 'bindings')}: {count}; a function needs one")
    trigger = raw[triggers[0]]
    kind = bindings[triggers[0]].type
    name = path.parent.name
    return V1Function(
        name=name,
        directory=path.parent,
        config_file=path,
        script=_script_path(path, text, config),
        entry_point=str(config.get("entryPoint") or DEFAULT_ENTRY_POINT),
        bindings=raw,
        trigger=trigger if kind in SUPPORTED_TRIGGERS else None,
        trigger_type=kind,
        disabled=_is_disabled(name, config),
    )


def _script_path(path: Path, text: str, config: dict[str, Any]) -> Path:
    named = config.get("scriptFile")
    script = (path.parent / str(named or DEFAULT_SCRIPT)).resolve()
    if named is None and not script.is_file():
        raise AppLoadError(f"{path}:1: no 'scriptFile', and no {DEFAULT_SCRIPT} beside it")
    where = f"{path}:{_line_of(text, 'scriptFile')}"
    if not script.is_file():
        raise AppLoadError(f"{where}: scriptFile {named!r} does not exist")
    if script.suffix != ".py":
        raise AppLoadError(f"{where}: scriptFile {named!r} is not a Python file")
    if not script.is_relative_to(path.parent.parent.resolve()):
        raise AppLoadError(f"{where}: scriptFile {named!r} is outside the app folder")
    return script


def _is_disabled(name: str, config: dict[str, Any]) -> bool:
    """`"disabled": true`, or the app setting `AzureWebJobs.<name>.Disabled`, as the host reads."""
    setting = os.environ.get(f"AzureWebJobs.{name}.Disabled", "")
    value = config.get("disabled", False)
    return setting.lower() in ("true", "1") or value is True or str(value).lower() == "true"


def _line_of(text: str, key: str, value: Any = None) -> int:
    """The line of `"key": value` (or of the key alone) in a JSON text; 1 when not found."""
    pattern = rf'"{re.escape(key)}"\s*:'
    if isinstance(value, str):
        pattern += rf'\s*"{re.escape(value)}"'
    found = re.search(pattern, text, re.IGNORECASE)
    return text.count("\n", 0, found.start()) + 1 if found else 1


def _install_namespace(root: Path) -> None:
    """The `__app__` package over the app folder; a different app's modules are dropped first."""
    existing = sys.modules.get(APP_NAMESPACE)
    if existing is not None and list(existing.__path__) == [str(root)]:
        return
    for module_name in [m for m in sys.modules if m.split(".")[0] == APP_NAMESPACE]:
        del sys.modules[module_name]
    spec = importlib.machinery.ModuleSpec(APP_NAMESPACE, None, is_package=True)
    spec.submodule_search_locations = [str(root)]
    sys.modules[APP_NAMESPACE] = importlib.util.module_from_spec(spec)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))


def _load_entry_point(spec: V1Function, root: Path) -> Callable[..., Any]:
    relative = spec.script.relative_to(root)
    parts = [APP_NAMESPACE, *relative.parts[:-1]]
    if relative.stem.lower() != "__init__":
        parts.append(relative.stem)
    try:
        module = importlib.import_module(".".join(parts))
    except Exception as err:  # noqa: BLE001 - any import failure stops start-up with its reason
        raise AppLoadError(describe_exception(err, root)) from None
    function = getattr(module, spec.entry_point, None)
    if function is None or not callable(function):
        raise AppLoadError(
            f"{spec.script}:1: cannot load function {spec.name}: function "
            f"{spec.entry_point}() is not present in {relative}"
        )
    return function


def _check_parameters(spec: V1Function) -> None:
    """Parameters and bindings must name each other, as the worker insists."""
    assert spec.user_function is not None
    params = set(inspect.signature(spec.user_function).parameters)
    bound = {str(b.get("name")) for b in spec.bindings} - {RETURN}
    if "context" not in bound:
        params.discard("context")
    code = getattr(inspect.unwrap(spec.user_function), "__code__", None)
    where = f"{spec.script}:{code.co_firstlineno if code else 1}"
    if params - bound:
        raise AppLoadError(
            f"{where}: cannot load the {spec.name} function: the following parameters are "
            f"declared in Python but not in function.json: {sorted(params - bound)}"
        )
    if bound - params:
        raise AppLoadError(
            f"{where}: cannot load the {spec.name} function: the following parameters are "
            f"declared in function.json but not in Python: {sorted(bound - params)}"
        )
    annotations = type_hints(spec.user_function)
    for raw in spec.bindings:
        binding = Binding.from_dict(raw)
        if binding.name not in annotations:
            continue
        is_out = typing.get_origin(annotations[binding.name]) is func.Out
        if binding.is_output and not is_out:
            raise AppLoadError(
                f"{where}: cannot load the {spec.name} function: binding {binding.name} is "
                'declared to have the "out" direction, but its annotation in Python is not '
                "a subclass of azure.functions.Out"
            )
        if is_out and not binding.is_output:
            raise AppLoadError(
                f"{where}: cannot load the {spec.name} function: binding {binding.name} is "
                'declared to have the "in" direction in function.json, but its annotation '
                "is azure.functions.Out in Python"
            )
