"""The testing guide's example (docs/testing.md) runs as shown: copied into an empty folder
outside this repo and run by plain pytest, through the installed plugin; and the plugin finds
apps where it says."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each test runs pytest in a process of its own

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "testing.md"
BLOCK = re.compile(r"```python\n# (?P<name>[\w.]+\.py)\n(?P<code>.*?)```", re.S)


def readme_files() -> dict[str, str]:
    files = {m["name"]: m["code"] for m in BLOCK.finditer(GUIDE.read_text())}
    assert set(files) == {"function_app.py", "test_app.py"}
    return files


def plain_pytest(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """`pytest` in `folder`, as a user runs it: no settings of this repo's own test run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "PYTHONPATH"))}
    return subprocess.run(
        [str(Path(sys.executable).with_name("pytest")), "-q", "-p", "no:cacheprovider", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.parametrize("store", ["memory", "azure"])
def test_the_readme_example_passes_with_plain_pytest_outside_the_repo(tmp_path, store):
    for name, code in readme_files().items():
        (tmp_path / name).write_text(code)
    result = plain_pytest(tmp_path, f"--durable-store={store}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout


def test_the_app_folder_comes_from_the_ini_option_or_the_command_line(tmp_path):
    files = readme_files()
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "function_app.py").write_text(files["function_app.py"])
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_app.py").write_text(files["test_app.py"])
    # Neither rootdir (tests/ without an ini file, tmp_path with one) holds function_app.py.
    missing = plain_pytest(tmp_path, "tests", "-x")
    assert missing.returncode == 1
    assert "has no function_app.py: name the app's folder with --durable-app" in missing.stdout
    given = plain_pytest(tmp_path, "tests", "--durable-app", "app")
    assert given.returncode == 0, given.stdout + given.stderr
    (tmp_path / "pytest.ini").write_text("[pytest]\ndurable_app = app\n")
    from_ini = plain_pytest(tmp_path, "tests")
    assert from_ini.returncode == 0, from_ini.stdout + from_ini.stderr
