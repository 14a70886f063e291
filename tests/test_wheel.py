"""`pip install .` (a wheel, not the editable install) gives a working devhost: the `devhost`
command lists its commands and runs an app from another folder, dashboard files included."""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.request
import venv
from pathlib import Path

import pytest

from devhost.azurite import answers, free_port

pytestmark = pytest.mark.slow  # builds a wheel and a virtual environment

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "tests" / "devhost" / "apps" / "patterns"
COMMANDS = ("start", "up", "durable", "replay")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")
CLEAN_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # only what is installed


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh virtual environment with devhost installed from its wheel; the bin folder.

    The dependencies come from this test run's environment through a path entry (no index is
    reached), while devhost itself comes only from the wheel: the editable install of the
    development environment is a finder that path entries do not load.
    """
    root = tmp_path_factory.mktemp("wheel")
    # Built from a copy, so that the build's own folders never land in the work tree.
    source = root / "source"
    shutil.copytree(REPO / "devhost", source / "devhost", ignore=IGNORED)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    run = dict(check=True, capture_output=True, text=True, timeout=300, env=CLEAN_ENV)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(root / "dist"),
            str(source),
        ],
        **run,
    )
    (wheel,) = (root / "dist").glob("devhost-*.whl")
    env_dir = root / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-deps",
            str(wheel),
        ],
        **run,
    )
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], **run
    ).stdout.strip()
    Path(site, "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return env_dir / "bin"


def test_the_devhost_command_lists_its_commands(installed):
    result = subprocess.run(
        [str(installed / "devhost"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=CLEAN_ENV,
    )
    assert result.returncode == 0, result.stderr
    for command in COMMANDS:
        assert command in result.stdout
    where = subprocess.run(
        [str(installed / "python"), "-c", "import devhost; print(devhost.__file__)"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=installed,
        env=CLEAN_ENV,
    )
    assert where.stdout.startswith(str(installed.parent)), where.stdout + where.stderr


def test_the_installed_devhost_runs_an_app_from_another_folder(installed, tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    for name in ("function_app.py", "host.json"):
        (app / name).write_text((APP / name).read_text())
    port = free_port()
    host = subprocess.Popen(
        [
            str(installed / "devhost"),
            "start",
            "--store",
            "memory",
            "--in-process",
            "--port",
            str(port),
        ],
        cwd=app,
        env=CLEAN_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not answers("127.0.0.1", port, timeout=0.2):
            assert host.poll() is None, host.stdout.read()
            assert time.monotonic() < deadline, "the installed devhost did not start"
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/_devhost/", timeout=10) as page:
            assert "<html" in page.read().decode().lower()
        with urllib.request.urlopen(f"{base}/_devhost/static/app.js", timeout=10) as script:
            assert script.status == 200
        with urllib.request.urlopen(
            f"{base}/runtime/webhooks/durabletask/instances", timeout=10
        ) as listing:
            assert json.loads(listing.read()) == []
    finally:
        host.terminate()
        host.wait(timeout=30)
