"""What is deployed: requirements.txt names every package the app imports, and nothing of ours."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
APP_CODE = ["function_app.py", "activities", "orchestrators", "dungeon"]
DISTRIBUTIONS = {  # import name -> the distribution requirements.txt must name
    "azure.functions": "azure-functions",
    "azure.durable_functions": "azure-functions-durable",
    "azure.data.tables": "azure-data-tables",
    "azure.storage.queue": "azure-storage-queue",
    "azure.core": "azure-data-tables",  # azure-core comes with the storage SDKs
}


def app_imports() -> set[str]:
    names = set()
    for entry in APP_CODE:
        path = REPO / entry
        for file in [path] if path.is_file() else path.rglob("*.py"):
            for node in ast.walk(ast.parse(file.read_text())):
                if isinstance(node, ast.Import):
                    names |= {alias.name for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module)
    return names


def test_requirements_name_what_the_app_imports_and_no_devhost():
    required = (REPO / "requirements.txt").read_text()
    for name in app_imports():
        if not name.startswith("azure"):
            assert name.split(".")[0] not in {"devhost", "tests", "bench", "aiohttp"}, name
            continue
        package = next(d for prefix, d in DISTRIBUTIONS.items() if name.startswith(prefix))
        assert package in required, f"{name} is imported but {package} is not required"
