"""devhost's house, drawn from its imports: no import circle, no import running back up the
layers, and no room too big to read at once.

The layers, top to bottom: a module imports only from its own row or the rows below it. The
utilities stand beside the layers: any module may import them, and they import only one another
and `taskhub/`. The table is docs/inside.md's; a test here reads it there, so the two agree.
Imports are read with `ast`, relative and absolute, those under TYPE_CHECKING and inside
functions included: a circle through a type hint is a circle still.
"""

import ast
import re
from pathlib import Path

import devhost

DEVHOST = Path(devhost.__file__).parent
INSIDE = DEVHOST.parent / "docs" / "inside.md"

LAYERS = [
    {"commands", "testing", "__main__"},
    {"host"},
    {"http", "dashboard", "triggers", "grpc"},
    {"workers", "runner"},
    {"engine"},
    {"store"},
    {"app"},
    {"taskhub"},
]
UTILITIES = {"settings", "clock", "azurite", "status", "function_timeout", "host_names"}
MAX_LINES = 400
WHY_LONG = "Longer than 400 lines because"  # how a long module's docstring says why


def module_name(path: Path) -> str:
    parts = path.relative_to(DEVHOST.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(DEVHOST.rglob("*.py"))}


def imported(module: str, path: Path) -> set[str]:
    """The devhost modules `module` imports, wherever in it the import statement is."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            # `from x import y` imports the module x.y where y is one, else x.
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
            names = [n for n in names if n in MODULES] or [base]
        else:
            continue
        for name in names:
            while name and name not in MODULES:  # `import devhost.a.b` names a module or above
                name = name.rpartition(".")[0]
            if name.startswith("devhost") and name != module:
                found.add(name)
    return found


GRAPH = {module: imported(module, path) for module, path in MODULES.items()}


def room(module: str) -> str:
    """The layer table's name for a module: its folder, or its own name at devhost's top."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "devhost"


def row(name: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if name in names)


def cycles() -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in GRAPH[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in GRAPH:
        if module not in index:
            visit(module)
    return found


def test_the_import_graph_is_drawn_from_relative_and_absolute_imports():
    assert "devhost.engine.engine" in GRAPH["devhost.host"]
    assert "devhost.taskhub.model" in GRAPH["devhost.engine.episodes"]  # from ..taskhub.model
    assert "devhost.engine.warm" in GRAPH["devhost.runner"]  # from .engine.warm import ...


def test_absolute_imports_and_those_under_type_checking_count_too(tmp_path):
    source = tmp_path / "probe.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "import devhost.store.base\n"
        "from devhost.engine import engine\n"
        "if TYPE_CHECKING:\n"
        "    from ..runner import FunctionRunner\n"
    )
    assert imported("devhost.engine.probe", source) == {
        "devhost.store.base",
        "devhost.engine.engine",
        "devhost.runner",
    }


def test_no_modules_import_each_other_in_a_circle():
    assert cycles() == []


def test_every_room_of_devhost_has_its_place_in_the_layer_table():
    rooms = {room(module) for module in MODULES} - {"devhost"}
    placed = set().union(*LAYERS, UTILITIES)
    assert rooms - placed == set(), "a new folder or top-level module needs a row"
    assert placed - rooms == set(), "the table names a room that no longer exists"
    assert GRAPH["devhost"] == set(), "the package itself imports nothing"


def test_imports_run_only_down_the_layers():
    upward = []
    for module, targets in GRAPH.items():
        for target in targets:
            source, dest = room(module), room(target)
            if dest in UTILITIES:
                continue
            # A utility imports only utilities (above) and the shared data.
            allowed = dest == "taskhub" if source in UTILITIES else row(source) <= row(dest)
            if not allowed:
                upward.append(f"{module} -> {target}")
    assert upward == []


def test_the_layer_table_is_the_one_in_docs_inside():
    rows = []
    for line in INSIDE.read_text().splitlines():
        cells = line.split("|")
        if len(cells) > 2 and re.fullmatch(r"\s*(\d+|utilities)\s*", cells[1]):
            rows.append(
                {
                    n.removesuffix("/").removesuffix(".py")
                    for n in re.findall(r"`([^`]+)`", cells[2])
                }
            )
    assert rows[:-1] == LAYERS, "docs/inside.md's layers, top to bottom"
    assert rows[-1] == UTILITIES, "docs/inside.md's last row: the utilities"


def test_no_class_is_longer_than_400_lines():
    long = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_LINES:
                    long.append(f"{module}.{node.name}: {lines} lines")
    assert long == []


def test_a_module_longer_than_400_lines_says_why_at_its_top():
    unexplained = []
    for module, path in MODULES.items():
        text = path.read_text()
        lines = len(text.splitlines())
        docstring = ast.get_docstring(ast.parse(text)) or ""
        if lines > MAX_LINES and WHY_LONG not in " ".join(docstring.split()):
            unexplained.append(f"{module}: {lines} lines")
    assert unexplained == []
