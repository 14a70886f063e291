"""A static check of orchestrators against the Durable Functions code constraints.

An orchestrator is replayed from its history at every episode, so its code must decide the same
way each time: no clock, random numbers, new uuids, settings, I/O, threads or asyncio of its own,
and no iteration over a set (its order follows string hashes, seeded per process). Microsoft's
analyzers check this for C#; this reads the source (`ast`) of each orchestrator function and of
the app's own functions it calls directly (activities may do all of it, and are not read), and
says where, with the replay-safe replacement.

Names are resolved through the module's imports (`from datetime import datetime as dt` makes
`dt.now()` a clock read), so a local variable named `random` is not a module. A line that ends
with the comment `# devhost: allow-nondeterminism` is not reported.
"""

from __future__ import annotations

import ast
import functools
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .app_index import FunctionIndex

ALLOW_COMMENT = "devhost: allow-nondeterminism"

CLOCK = "use context.current_utc_datetime, the replay-safe time"
ACTIVITY_IO = "do it in an activity"
RANDOM = "draw it in an activity, or derive it from context.new_uuid()"
# Qualified names (a module, or a module's attribute) and what using them does in an orchestrator.
RULES: dict[str, tuple[str, str]] = {
    "datetime.datetime.now": ("reads the clock", CLOCK),
    "datetime.datetime.utcnow": ("reads the clock", CLOCK),
    "datetime.datetime.today": ("reads the clock", CLOCK),
    "datetime.date.today": ("reads the clock", CLOCK),
    "time.time": ("reads the clock", CLOCK),
    "time.time_ns": ("reads the clock", CLOCK),
    "time.monotonic": ("reads the clock", CLOCK),
    "time.monotonic_ns": ("reads the clock", CLOCK),
    "time.perf_counter": ("reads the clock", CLOCK),
    "time.sleep": ("sleeps, blocking the orchestrator", "yield context.create_timer(...)"),
    "random": ("draws a random number", RANDOM),
    "secrets": ("draws a random number", RANDOM),
    "uuid.uuid1": ("makes a new uuid", "use context.new_uuid()"),
    "uuid.uuid4": ("makes a new uuid", "use context.new_uuid()"),
    "os.environ": ("reads a setting", "read it in an activity, or pass it in the input"),
    "os.getenv": ("reads a setting", "read it in an activity, or pass it in the input"),
    "open": ("opens a file", ACTIVITY_IO),
    "io.open": ("opens a file", ACTIVITY_IO),
    "requests": ("makes a network request", f"{ACTIVITY_IO}, or use context.call_http"),
    "urllib": ("makes a network request", f"{ACTIVITY_IO}, or use context.call_http"),
    "http.client": ("makes a network request", f"{ACTIVITY_IO}, or use context.call_http"),
    "aiohttp": ("makes a network request", f"{ACTIVITY_IO}, or use context.call_http"),
    "httpx": ("makes a network request", f"{ACTIVITY_IO}, or use context.call_http"),
    "socket": ("opens a socket", ACTIVITY_IO),
    "azure.storage": ("uses a storage client", ACTIVITY_IO),
    "azure.data.tables": ("uses a storage client", ACTIVITY_IO),
    "azure.cosmos": ("uses a storage client", ACTIVITY_IO),
    "azure.servicebus": ("uses a messaging client", ACTIVITY_IO),
    "threading": ("starts threads", "fan out with context.task_all over activities"),
    "_thread": ("starts threads", "fan out with context.task_all over activities"),
    "concurrent.futures": ("starts threads", "fan out with context.task_all over activities"),
    "multiprocessing": ("starts processes", "fan out with context.task_all over activities"),
    "asyncio": (
        "uses asyncio in a generator orchestrator",
        "yield the context's tasks: context.create_timer, context.task_all",
    ),
}
SET_ORDER = (
    "iterates over a set, whose order changes from one process to another (string hashes are "
    "seeded per process)",
    "iterate over sorted(...) or a list",
)
# Calls that iterate over their argument in its order.
ORDERED_CONSUMERS = frozenset({"list", "tuple", "enumerate", "zip", "iter", "next", "reversed"})
# Calls whose result does not depend on the order of what they consume.
ORDER_FREE = frozenset({"sorted", "set", "frozenset", "sum", "min", "max", "any", "all", "len"})
SET_METHODS = frozenset({"union", "intersection", "difference", "symmetric_difference", "copy"})
SET_OPERATORS = (ast.BitOr, ast.BitAnd, ast.Sub, ast.BitXor)


@dataclass(frozen=True)
class Finding:
    """One line of an orchestrator (or of a function it calls) that breaks a constraint."""

    path: Path
    line: int
    orchestrator: str
    function: str  # the function the line is in
    problem: str  # "reads the clock (datetime.datetime.now)"
    remedy: str

    def __str__(self) -> str:
        inside = "" if self.function == self.orchestrator else f" (in {self.function}, it calls)"
        return (
            f"{_shown(self.path)}:{self.line}: orchestrator '{self.orchestrator}'{inside} "
            f"{self.problem}: {self.remedy}"
        )


def _shown(path: Path) -> str:
    """A path relative to the current folder when it is inside it, as compilers print them."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def check_orchestrators(index: FunctionIndex, app_dir: str | Path) -> list[Finding]:
    """What each orchestrator of the app (and the app's functions it calls) should not do."""
    root = Path(app_dir).resolve()
    activities = {id(inspect.unwrap(f.user_function)) for f in index.activities.values()}
    findings: dict[tuple[Path, int, str], Finding] = {}
    for name, info in sorted(index.orchestrators.items()):
        function = _user_function(info.user_function)
        for target, node, source in _functions_to_read(function, root, activities):
            for line, problem, remedy in _problems(node, source):
                if source.allowed(line):
                    continue
                finding = Finding(source.path, line, name, target.__name__, problem, remedy)
                findings.setdefault((source.path, line, problem), finding)
    return sorted(findings.values(), key=lambda f: (str(f.path), f.line))


def _user_function(handle: Callable[..., Any]) -> Callable[..., Any]:
    """The generator function behind the SDK's orchestrator handle."""
    return inspect.unwrap(getattr(handle, "orchestrator_function", handle))


@dataclass
class _Source:
    """A module's parsed source, its lines and what its imports name."""

    path: Path
    tree: ast.Module
    lines: list[str]
    imports: dict[str, str]  # local name -> qualified name
    sets: dict[str, ast.expr]  # module-level names assigned a set expression

    def allowed(self, line: int) -> bool:
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        return ALLOW_COMMENT in text


@functools.lru_cache(maxsize=256)
def _read_source(path: Path, mtime: float) -> _Source | None:
    try:
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text, str(path))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None
    imports = _imports(tree.body)
    sets = {
        target.id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }
    return _Source(path, tree, text.splitlines(), imports, sets)


def _source_of(function: Callable[..., Any]) -> _Source | None:
    try:
        path = Path(inspect.getsourcefile(function) or "").resolve()
        return _read_source(path, path.stat().st_mtime)
    except (OSError, TypeError):
        return None


def _imports(body: list[ast.stmt]) -> dict[str, str]:
    """Local names the import statements among `body` (and nested in its blocks) bind."""
    names: dict[str, str] = {}
    for statement in body:
        for node in ast.walk(statement):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        names[alias.asname] = alias.name
                    else:
                        top = alias.name.split(".")[0]
                        names[top] = top
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _function_node(function: Callable[..., Any], source: _Source) -> ast.AST | None:
    """The `def` of a function in its module's tree, found by name and first line."""
    code = getattr(function, "__code__", None)
    if code is None:
        return None
    for node in ast.walk(source.tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == code.co_name:
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            if first == code.co_firstlineno:
                return node
    return None


def _functions_to_read(
    orchestrator: Callable[..., Any], root: Path, activities: set[int]
) -> Iterator[tuple[Callable[..., Any], ast.AST, _Source]]:
    """The orchestrator's `def`, then those of the app's own functions it calls by name."""
    source = _source_of(orchestrator)
    node = _function_node(orchestrator, source) if source else None
    if source is None or node is None:
        return
    yield orchestrator, node, source
    seen = {id(orchestrator)}
    for call in ast.walk(node):
        if not isinstance(call, ast.Call):
            continue
        helper = _resolve(call.func, orchestrator)
        if helper is None or id(helper) in seen or id(helper) in activities:
            continue
        seen.add(id(helper))
        if not _is_app_code(helper, root) or hasattr(helper, "orchestrator_function"):
            continue
        helper_source = _source_of(helper)
        helper_node = _function_node(helper, helper_source) if helper_source else None
        if helper_source is not None and helper_node is not None:
            yield helper, helper_node, helper_source


def _resolve(expr: ast.expr, function: Callable[..., Any]) -> Callable[..., Any] | None:
    """The plain function a call's target names, looked up in the caller's globals."""
    parts = _dotted(expr)
    if parts is None:
        return None
    value: Any = getattr(function, "__globals__", {}).get(parts[0])
    for part in parts[1:]:
        value = getattr(value, part, None)
    try:
        value = inspect.unwrap(value) if callable(value) else None
    except ValueError:  # a wrapper chain that loops
        return None
    return value if inspect.isfunction(value) else None


def _is_app_code(function: Callable[..., Any], root: Path) -> bool:
    """Whether a function is the app's own: in its folder, not in an environment installed
    there (`.venv`, `site-packages`)."""
    try:
        path = Path(inspect.getsourcefile(function) or "").resolve()
    except TypeError:
        return False
    if not path.is_relative_to(root):
        return False
    return not any(
        part.startswith(".") or part in ("site-packages", "node_modules")
        for part in path.relative_to(root).parts
    )


def _dotted(expr: ast.expr) -> list[str] | None:
    """`a.b.c` as ["a", "b", "c"]; None for anything else (a call's result, a subscript)."""
    parts: list[str] = []
    while isinstance(expr, ast.Attribute):
        parts.append(expr.attr)
        expr = expr.value
    if not isinstance(expr, ast.Name):
        return None
    parts.append(expr.id)
    return parts[::-1]


def _problems(function: ast.AST, source: _Source) -> Iterator[tuple[int, str, str]]:
    """Each line of `function` that breaks a rule: (line, problem, remedy)."""
    local_imports = _imports(getattr(function, "body", []))
    assigned = _assigned_names(function) - local_imports.keys()
    imports = {k: v for k, v in source.imports.items() if k not in assigned} | local_imports
    inner_values: set[int] = {
        id(node.value) for node in ast.walk(function) if isinstance(node, ast.Attribute)
    }
    for node in ast.walk(function):
        if (
            isinstance(node, ast.Name | ast.Attribute)
            and isinstance(node.ctx, ast.Load)
            and id(node) not in inner_values
        ):
            qualified = _qualified(node, imports, assigned)
            rule = _rule_for(qualified) if qualified else None
            if rule is not None:
                yield node.lineno, f"{rule[0]} ({qualified})", rule[1]
    local_sets = _set_assignments(function)
    for iterated, line in _iterations(function):
        if _is_set(iterated, local_sets, source.sets, assigned, set()):
            yield line, SET_ORDER[0], SET_ORDER[1]


def _qualified(node: ast.expr, imports: dict[str, str], assigned: set[str]) -> str | None:
    parts = _dotted(node)
    if parts is None:
        return None
    head = parts[0]
    if head in imports:
        return ".".join([imports[head], *parts[1:]])
    if head == "open" and len(parts) == 1 and head not in assigned:
        return "open"  # the builtin
    return None


def _rule_for(qualified: str) -> tuple[str, str] | None:
    parts = qualified.split(".")
    for length in range(len(parts), 0, -1):
        rule = RULES.get(".".join(parts[:length]))
        if rule is not None:
            return rule
    return None


def _assigned_names(function: ast.AST) -> set[str]:
    """Names the function binds itself (parameters and assignments): not the module's."""
    names = {
        node.id
        for node in ast.walk(function)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)
    }
    args = getattr(function, "args", None)
    if args is not None:
        names |= {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
    return names


def _set_assignments(function: ast.AST) -> dict[str, ast.expr]:
    return {
        target.id: node.value
        for node in ast.walk(function)
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def _iterations(function: ast.AST) -> Iterator[tuple[ast.expr, int]]:
    """What the function iterates over in order: loops, comprehensions, list(...) and the like."""
    order_free: set[int] = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Call) and _called_name(node) in ORDER_FREE:
            order_free.update(id(arg) for arg in node.args)
    for node in ast.walk(function):
        if isinstance(node, ast.For | ast.AsyncFor):
            yield node.iter, node.iter.lineno
        elif isinstance(node, ast.ListComp | ast.GeneratorExp | ast.DictComp):
            if id(node) not in order_free:
                for generator in node.generators:
                    yield generator.iter, generator.iter.lineno
        elif isinstance(node, ast.Call):
            name = _called_name(node)
            if name in ORDERED_CONSUMERS or name == "join":
                for arg in node.args:
                    yield arg, arg.lineno
        elif isinstance(node, ast.Starred):
            yield node.value, node.value.lineno


def _called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def _is_set(
    expr: ast.expr,
    local_sets: dict[str, ast.expr],
    module_sets: dict[str, ast.expr],
    assigned: set[str],
    seen: set[str],
) -> bool:
    """Whether an expression is a set, as far as the function and its module say."""
    if isinstance(expr, ast.Set | ast.SetComp):
        return True
    if isinstance(expr, ast.Call):
        name = _called_name(expr)
        if isinstance(expr.func, ast.Name) and name in ("set", "frozenset"):
            return True
        if isinstance(expr.func, ast.Attribute) and name in SET_METHODS:
            return _is_set(expr.func.value, local_sets, module_sets, assigned, seen)
        return False
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, SET_OPERATORS):
        return any(
            _is_set(side, local_sets, module_sets, assigned, seen)
            for side in (expr.left, expr.right)
        )
    if isinstance(expr, ast.Name) and expr.id not in seen:
        seen.add(expr.id)
        if expr.id in local_sets:
            return _is_set(local_sets[expr.id], local_sets, module_sets, assigned, seen)
        if expr.id in module_sets and expr.id not in assigned:
            return _is_set(module_sets[expr.id], {}, module_sets, set(), seen)
    return False
