"""Loading and indexing apps, and the clear errors for broken ones."""

import subprocess
import sys
from pathlib import Path

import pytest

from devhost.app.app_index import AppLoadError, index_app
from devhost.testing import DurableHarness

APPS = Path(__file__).parent / "apps"


def test_functions_are_classified_by_trigger():
    index = index_app(APPS / "patterns")
    assert "http_start" in index.http and "echo" in index.http
    assert "Sequence" in index.orchestrators and "Hello" in index.activities
    assert index.functions["http_start"].client_param == "client"
    assert index.functions["StartFromActivity"].client_param == "client"


def test_plain_function_app_with_a_durable_blueprint_and_sibling_modules():
    with DurableHarness(APPS / "blueprint") as host:
        code, _, body = host.http("GET", "/api/hello/Ada")
        assert code == 202  # the admin auth level is not enforced locally
        host.idle()
        status = host.wait_for(body["id"])
        assert status.output == "Good day, Ada"


@pytest.mark.parametrize(
    ("app", "expected"),
    [
        ("broken_syntax", r"broken_syntax/function_app.py:4: SyntaxError"),
        ("broken_import", r"broken_import/function_app.py:2: ModuleNotFoundError: No module named"),
        ("duplicate", r"does not have a unique function name"),
    ],
)
def test_broken_apps_name_the_file_line_and_reason(app, expected):
    with pytest.raises(AppLoadError, match=expected):
        index_app(APPS / app)


@pytest.mark.slow
def test_cli_reports_a_broken_app_without_a_traceback():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "devhost",
            "start",
            "--app-dir",
            str(APPS / "broken_import"),
            "--store",
            "memory",
            "--port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "devhost: cannot start:" in result.stderr
    assert "function_app.py:2" in result.stderr
    assert "Traceback" not in result.stderr
