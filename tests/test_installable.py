"""devhost is installed as a package of its own, with its pytest plugin; the app is not."""

import ast
import subprocess
import sys
import tomllib
from importlib.metadata import distribution
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DISTRIBUTIONS = {  # import name -> the distribution pyproject.toml must name
    "aiohttp": "aiohttp",
    "azure.functions": "azure-functions",
    "azure.durable_functions": "azure-functions-durable",
    "azure.data.tables": "azure-data-tables",
    "azure.core": "azure-data-tables",  # azure-core comes with the storage SDKs
    "azure.storage.blob": "azure-storage-blob",
    "azure.storage.queue": "azure-storage-queue",
}


def third_party_imports() -> set[str]:
    names = set()
    for file in (REPO / "devhost").rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
    return {n for n in names if n.startswith(("azure", "aiohttp"))}


def test_pyproject_names_every_distribution_devhost_imports():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    required = " ".join(project["dependencies"])
    for name in third_party_imports():
        package = next(d for prefix, d in DISTRIBUTIONS.items() if name.startswith(prefix))
        assert package in required, f"devhost imports {name} but pyproject lacks {package}"


def test_the_installed_distribution_registers_the_pytest_plugin():
    plugins = {
        e.name: e.value for e in distribution("devhost").entry_points if e.group == "pytest11"
    }
    assert plugins == {"devhost": "devhost.testing.plugin"}


def test_devhost_imports_from_anywhere_and_the_app_does_not(tmp_path):
    probe = "import devhost\ntry:\n    import dungeon\nexcept ImportError:\n    print('ok')"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "ok", result.stderr
