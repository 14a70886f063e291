"""Loads a Functions app once and classifies its functions by trigger, as the Python worker does."""

from __future__ import annotations

import importlib.util
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .binding_spec import (
    ACTIVITY_TRIGGER,
    BLOB_TRIGGER,
    DURABLE_CLIENT,
    ENTITY_TRIGGER,
    HTTP_OUTPUT,
    HTTP_TRIGGER,
    ORCHESTRATION_TRIGGER,
    QUEUE_TRIGGER,
    SUPPORTED_TRIGGERS,
    TIMER_TRIGGER,
    Binding,
    type_hints,
)
from .load_errors import AppLoadError, describe_exception
from .v1_index import is_v1_app, load_v1_functions

__all__ = ["AppLoadError", "FunctionIndex", "FunctionInfo", "index_app"]

# The decorators' optional names ("Name of ... Function"), which replace the method's name.
NAME_PROPERTIES = {
    ORCHESTRATION_TRIGGER: "orchestration",
    ACTIVITY_TRIGGER: "activity",
    ENTITY_TRIGGER: "entityName",
}


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
    bindings: list[Binding] = field(default_factory=list)
    annotations: dict[str, Any] = field(default_factory=dict)
    directory: str = ""
    # Bindings beyond the trigger and the durable client (storage, http out, others): computed
    # once, as every invocation walks them.
    extras: list[Binding] = field(init=False)
    # The extras that read or write storage (or are logged): all but an HTTP response.
    io_bindings: list[Binding] = field(init=False)
    trigger: Binding = field(init=False)  # `binding`, read case-insensitively

    def __post_init__(self) -> None:
        self.trigger = Binding.from_dict(self.binding)
        self.extras = [
            b for b in self.bindings if b.name != self.trigger_param and b.type != DURABLE_CLIENT
        ]
        self.io_bindings = [b for b in self.extras if b.type != HTTP_OUTPUT]

    @property
    def route(self) -> str:
        return str(self.trigger.get("route") or self.name)

    @property
    def methods(self) -> list[str] | None:
        methods = self.trigger.get("methods")
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
    timers: dict[str, FunctionInfo] = field(init=False)
    queues: dict[str, FunctionInfo] = field(init=False)
    blobs: dict[str, FunctionInfo] = field(init=False)
    model: str = "v2"

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
        self.timers = self.of_type(TIMER_TRIGGER)
        self.queues = self.of_type(QUEUE_TRIGGER)
        self.blobs = self.of_type(BLOB_TRIGGER)

    def select(self, names: list[str]) -> FunctionIndex:
        """Only the named functions, as `func start --functions`; an unknown name is an error."""
        known = {n.lower(): n for n in self.functions} | {n.lower(): n for n, _ in self.skipped}
        missing = [n for n in names if n.lower() not in known]
        if missing:
            raise AppLoadError(
                f"--functions: no function named {', '.join(missing)}; "
                f"the app has {', '.join(sorted(known.values()))}"
            )
        wanted = {known[n.lower()] for n in names}
        chosen = FunctionIndex(
            functions={n: f for n, f in self.functions.items() if n in wanted},
            skipped=[s for s in self.skipped if s[0] in wanted],
            model=self.model,
        )
        return chosen


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
        raise AppLoadError(describe_exception(err, root)) from None
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
    raw = function.get_bindings_dict()["bindings"]
    trigger = next((b for b in raw if b["type"] in SUPPORTED_TRIGGERS), None)
    if trigger is None:
        return None
    return describe_function(
        trigger.get(NAME_PROPERTIES.get(trigger["type"], "")) or function.get_function_name(),
        function.get_user_function(),
        raw,
        trigger,
    )


def describe_function(
    name: str,
    user_function: Callable[..., Any],
    raw_bindings: list[dict[str, Any]],
    trigger: dict[str, Any],
    directory: str = "",
) -> FunctionInfo:
    """A FunctionInfo from the bindings either programming model declares."""
    bindings = [Binding.from_dict(b) for b in raw_bindings]
    client = next((b for b in bindings if b.type == DURABLE_CLIENT), None)
    params = inspect.signature(user_function).parameters
    binding_names = {b.name for b in bindings}
    return FunctionInfo(
        name=name,
        trigger_type=Binding.from_dict(trigger).type,
        trigger_param=str(trigger["name"]),
        user_function=user_function,
        binding=trigger,
        client_param=client.name if client else None,
        accepts_context="context" in params and "context" not in binding_names,
        is_async=inspect.iscoroutinefunction(user_function),
        bindings=bindings,
        annotations=type_hints(user_function),
        directory=directory,
    )


_indexes: dict[str, tuple[Any, FunctionIndex]] = {}


def index_v1_app(app_dir: str | Path) -> FunctionIndex:
    """The functions of a v1 app folder, loaded as the worker loads them."""
    index = FunctionIndex(model="v1")
    for spec in load_v1_functions(app_dir):
        if spec.trigger is None:
            index.skipped.append((spec.name, spec.trigger_type))
            continue
        index.functions[spec.name] = describe_function(
            spec.name, spec.user_function, spec.bindings, spec.trigger, str(spec.directory)
        )
    index.reclassify()
    return index


def index_app(app_dir: str | Path) -> FunctionIndex:
    """The index of an app folder, built once per loaded module (the SDK allows one indexing).

    A folder with `function_app.py` is a v2 app; one with function folders (`*/function.json`)
    and no `function_app.py` is a v1 app, as the Python worker decides.
    """
    if not (Path(app_dir) / "function_app.py").is_file() and is_v1_app(app_dir):
        return index_v1_app(app_dir)
    module = load_app(app_dir)
    cached = _indexes.get(module.__file__)
    if cached is not None and cached[0] is module:
        return cached[1]
    index = build_index(find_app_object(module), str(Path(module.__file__).name))
    _indexes[module.__file__] = (module, index)
    return index
