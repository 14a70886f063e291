"""Loads a Functions app once and classifies its functions by trigger, as the Python worker does."""

from __future__ import annotations

import importlib.util
import inspect
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HTTP_TRIGGER = "httpTrigger"
ORCHESTRATION_TRIGGER = "orchestrationTrigger"
ACTIVITY_TRIGGER = "activityTrigger"
ENTITY_TRIGGER = "entityTrigger"
DURABLE_CLIENT = "durableClient"
SUPPORTED_TRIGGERS = (HTTP_TRIGGER, ORCHESTRATION_TRIGGER, ACTIVITY_TRIGGER, ENTITY_TRIGGER)
# The decorators' optional names ("Name of ... Function"), which replace the method's name.
NAME_PROPERTIES = {
    ORCHESTRATION_TRIGGER: "orchestration",
    ACTIVITY_TRIGGER: "activity",
    ENTITY_TRIGGER: "entityName",
}


class AppLoadError(Exception):
    """The app cannot start: the message names the file, the line and the reason."""


@dataclass
class FunctionInfo:
    """One indexed function: its name, trigger, bindings and the callable the worker would call."""

    name: str
    trigger_type: str
    trigger_param: str
    user_function: Callable[..., Any]
    binding: dict[str, Any]
    client_param: str | None = None
    accepts_context: bool = False
    is_async: bool = False

    @property
    def route(self) -> str:
        return str(self.binding.get("route") or self.name)

    @property
    def methods(self) -> list[str] | None:
        methods = self.binding.get("methods")
        return [str(m).upper() for m in methods] if methods else None


@dataclass
class FunctionIndex:
    """The functions of an app, grouped by trigger type; names are unique across the app."""

    functions: dict[str, FunctionInfo] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    http: dict[str, FunctionInfo] = field(init=False)
    orchestrators: dict[str, FunctionInfo] = field(init=False)
    activities: dict[str, FunctionInfo] = field(init=False)
    entities: dict[str, FunctionInfo] = field(init=False)

    def of_type(self, trigger_type: str) -> dict[str, FunctionInfo]:
        return {n: f for n, f in self.functions.items() if f.trigger_type == trigger_type}

    def __post_init__(self) -> None:
        self.reclassify()

    def reclassify(self) -> None:
        """Group the functions by trigger once; the engine looks them up on every episode."""
        self.http = self.of_type(HTTP_TRIGGER)
        self.orchestrators = self.of_type(ORCHESTRATION_TRIGGER)
        self.activities = self.of_type(ACTIVITY_TRIGGER)
        # Entities by lower-cased name: the SDK lower-cases entity names in their ids.
        self.entities = {n.lower(): f for n, f in self.of_type(ENTITY_TRIGGER).items()}


def _describe_exception(err: BaseException, app_dir: Path) -> str:
    """File, line and reason of an import failure, pointing into the app rather than into us."""
    if isinstance(err, SyntaxError):
        return f"{err.filename}:{err.lineno}: {type(err).__name__}: {err.msg}"
    frames = traceback.extract_tb(err.__traceback__)
    in_app = [f for f in frames if Path(f.filename).resolve().is_relative_to(app_dir)]
    where = (in_app or frames or [None])[-1]
    location = f"{where.filename}:{where.lineno}: " if where else ""
    return f"{location}{type(err).__name__}: {err}"


def load_app(app_dir: str | Path, module_name: str = "function_app") -> Any:
    """Import the app module of a folder; modules beside it import as they do on the real host."""
    root = Path(app_dir).resolve()
    path = root / f"{module_name}.py"
    if not path.is_file():
        raise AppLoadError(f"{path}: no such file; is --app-dir the folder of your function app?")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    existing = sys.modules.get(module_name)
    if existing is not None and Path(getattr(existing, "__file__", "") or "").resolve() == path:
        return existing
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # noqa: BLE001 - any import failure stops start-up with its reason
        sys.modules.pop(module_name, None)
        raise AppLoadError(_describe_exception(err, root)) from None
    return module


def find_app_object(module: Any) -> Any:
    """The module-level object that registers functions (FunctionApp, DFApp)."""
    candidates = [
        value
        for value in vars(module).values()
        if hasattr(value, "get_functions") and not inspect.isclass(value)
    ]
    if not candidates:
        raise AppLoadError(
            f"{module.__file__}: no function app found; create one with "
            "`app = df.DFApp()` or `app = func.FunctionApp()`"
        )
    return candidates[0]


def build_index(app: Any, app_file: str = "function_app.py") -> FunctionIndex:
    """Index the app's functions once: `get_functions()` may be called only once per app."""
    try:
        functions = app.get_functions()
    except ValueError as err:
        raise AppLoadError(f"{app_file}: {err}") from None
    index = FunctionIndex()
    for function in functions:
        info = _function_info(function)
        if info is None:
            trigger = function.get_trigger()
            kind = trigger.get_binding_name() if trigger else "none"
            index.skipped.append((function.get_function_name(), kind))
            continue
        if info.name in index.functions:
            raise AppLoadError(f"{app_file}: two functions are named {info.name!r}")
        index.functions[info.name] = info
    index.reclassify()
    return index


def _function_info(function: Any) -> FunctionInfo | None:
    bindings = function.get_bindings_dict()["bindings"]
    trigger = next((b for b in bindings if b["type"] in SUPPORTED_TRIGGERS), None)
    if trigger is None:
        return None
    client = next((b for b in bindings if b["type"] == DURABLE_CLIENT), None)
    user_function = function.get_user_function()
    params = inspect.signature(user_function).parameters
    binding_names = {b["name"] for b in bindings}
    return FunctionInfo(
        name=trigger.get(NAME_PROPERTIES.get(trigger["type"], "")) or function.get_function_name(),
        trigger_type=trigger["type"],
        trigger_param=trigger["name"],
        user_function=user_function,
        binding=trigger,
        client_param=client["name"] if client else None,
        accepts_context="context" in params and "context" not in binding_names,
        is_async=inspect.iscoroutinefunction(user_function),
    )


_indexes: dict[str, tuple[Any, FunctionIndex]] = {}


def index_app(app_dir: str | Path) -> FunctionIndex:
    """The index of an app folder, built once per loaded module (the SDK allows one indexing)."""
    module = load_app(app_dir)
    cached = _indexes.get(module.__file__)
    if cached is not None and cached[0] is module:
        return cached[1]
    index = build_index(find_app_object(module), str(Path(module.__file__).name))
    _indexes[module.__file__] = (module, index)
    return index
