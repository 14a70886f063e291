"""The README's testing example runs as shown: copied into an empty folder, run by plain pytest."""

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"```python\n# (?P<name>[\w.]+\.py)\n(?P<code>.*?)```", re.S)


def test_the_readme_example_passes_with_plain_pytest_outside_the_repo(tmp_path):
    files = {m["name"]: m["code"] for m in BLOCK.finditer(README.read_text())}
    assert set(files) == {"function_app.py", "test_app.py"}
    for name, code in files.items():
        (tmp_path / name).write_text(code)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "PYTHONPATH"))}
    pytest = Path(sys.executable).with_name("pytest")
    result = subprocess.run(
        [str(pytest), "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout
