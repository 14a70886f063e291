"""Finding v1 functions as the worker does, and stopping on a bad function.json with its line."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from devhost.app.app_index import AppLoadError, index_app
from devhost.testing import DurableHarness

from .storage_checks import eventually

APPS = Path(__file__).parent / "apps"
HELLO = "def main(name: str) -> str:\n    return f'Hello {name}!'\n"


def make_app(root: Path, functions: dict[str, tuple[str, str | None]]) -> Path:
    """An app folder: {folder: (function.json text, __init__.py text or None)}."""
    (root / "host.json").write_text('{"version": "2.0"}')
    for folder, (config, script) in functions.items():
        (root / folder).mkdir()
        (root / folder / "function.json").write_text(config)
        if script is not None:
            (root / folder / "__init__.py").write_text(script)
    return root


def activity_json(**extra) -> str:
    binding = {"name": "name", "type": "activityTrigger", "direction": "in"}
    return json.dumps({"scriptFile": "__init__.py", "bindings": [binding], **extra}, indent=2)


def test_v1_functions_are_named_after_their_folders_and_classified():
    index = index_app(APPS / "v1_bindings")
    assert index.model == "v1"
    assert set(index.queues) == {"Orders", "Fragile"}
    assert set(index.timers) == {"Tick"} and set(index.blobs) == {"Uploaded"}
    assert set(index.http) == {"ReadOrder"}
    assert ("Disabled", "disabled") in index.skipped
    assert index.functions["Uploaded"].user_function.__name__ == "on_upload"  # entryPoint


def test_the_older_orchestration_client_binding_is_the_durable_client():
    index = index_app(APPS / "samples" / "fan_in_fan_out")
    assert index.functions["HttpStart"].client_param == "starter"


def test_invalid_json_names_the_file_and_line(tmp_path):
    broken = '{\n  "scriptFile": "__init__.py",\n  "bindings": [\n    {"name": "x",}\n  ]\n}'
    make_app(tmp_path, {"Broken": (broken, HELLO)})
    with pytest.raises(AppLoadError, match=r"Broken/function.json:4: not valid JSON"):
        index_app(tmp_path)


def test_a_script_file_that_is_not_there_names_the_line(tmp_path):
    make_app(tmp_path, {"Hello": (activity_json(scriptFile="hello.py"), HELLO)})
    with pytest.raises(AppLoadError, match=r"Hello/function.json:2: scriptFile 'hello.py' does"):
        index_app(tmp_path)


def test_no_script_file_and_no_init_py_is_an_error(tmp_path):
    config = json.dumps({"bindings": json.loads(activity_json())["bindings"]})
    make_app(tmp_path, {"Hello": (config, None)})
    with pytest.raises(AppLoadError, match=r"Hello/function.json:1: no 'scriptFile'"):
        index_app(tmp_path)


def test_without_script_file_the_worker_default_init_py_is_used(tmp_path):
    config = json.dumps({"bindings": json.loads(activity_json())["bindings"]})
    make_app(tmp_path, {"Hello": (config, HELLO)})
    assert "Hello" in index_app(tmp_path).activities


def test_an_unknown_trigger_names_its_line(tmp_path):
    config = activity_json().replace("activityTrigger", "activtyTrigger")
    make_app(tmp_path, {"Hello": (config, HELLO)})
    with pytest.raises(AppLoadError, match=r"Hello/function.json:6: unknown trigger type"):
        index_app(tmp_path)


def test_a_trigger_of_another_extension_is_listed_not_started(tmp_path):
    config = activity_json().replace("activityTrigger", "eventHubTrigger")
    make_app(tmp_path, {"Hello": (config, HELLO)})
    assert index_app(tmp_path).skipped == [("Hello", "eventHubTrigger")]


def test_parameters_and_bindings_must_match_as_the_worker_checks(tmp_path):
    make_app(tmp_path, {"Hello": (activity_json(), "def main(who: str) -> str:\n    return who\n")})
    with pytest.raises(AppLoadError, match=r"Hello/__init__.py:1: .*declared in Python but not"):
        index_app(tmp_path)


def with_output(script: str) -> tuple[str, str]:
    bindings = [
        {"name": "name", "type": "activityTrigger", "direction": "in"},
        {"name": "copy", "type": "blob", "direction": "out", "path": "c/{name}"},
    ]
    return json.dumps({"bindings": bindings}), script


def test_an_output_binding_needs_an_out_annotation_as_the_worker_checks(tmp_path):
    make_app(tmp_path, {"Hello": with_output("def main(name: str, copy: str) -> str:\n    pass\n")})
    with pytest.raises(AppLoadError, match=r"binding copy is declared to have the \"out\""):
        index_app(tmp_path)


def test_string_annotations_are_evaluated_as_the_worker_does(tmp_path):
    script = (
        "from __future__ import annotations\n"
        "import azure.functions as func\n\n"
        "def main(name: str, copy: func.Out[str]) -> str:\n    pass\n"
    )
    make_app(tmp_path, {"Hello": with_output(script)})
    assert index_app(tmp_path).activities["Hello"].annotations["name"] is str


def test_a_missing_entry_point_is_named(tmp_path):
    make_app(tmp_path, {"Hello": (activity_json(entryPoint="run"), HELLO)})
    with pytest.raises(AppLoadError, match=r"function run\(\) is not present"):
        index_app(tmp_path)


def test_an_import_error_in_a_function_names_its_line(tmp_path):
    make_app(tmp_path, {"Hello": (activity_json(), "import not_a_module\n" + HELLO)})
    with pytest.raises(AppLoadError, match=r"Hello/__init__.py:1: ModuleNotFoundError"):
        index_app(tmp_path)


def test_a_bad_timer_schedule_stops_the_start(tmp_path):
    binding = {"name": "t", "type": "timerTrigger", "direction": "in", "schedule": "*/5 * * * *"}
    config = json.dumps({"bindings": [binding]})
    make_app(tmp_path, {"Tick": (config, "def main(t):\n    pass\n")})
    with (
        pytest.raises(AppLoadError, match=r"Tick: .*expected six fields"),
        DurableHarness(tmp_path),
    ):
        pass


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "devhost", "start", "--store", "memory", "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_cli_stops_on_a_bad_function_json_with_file_line_and_reason(tmp_path):
    make_app(tmp_path, {"Hello": (activity_json().replace("activityTrigger", "fooTrigger"), HELLO)})
    result = run_cli("--app-dir", str(tmp_path))
    assert result.returncode == 2
    assert "devhost: cannot start:" in result.stderr
    assert "Hello/function.json:6: unknown trigger type 'fooTrigger'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_cli_functions_option_runs_only_the_named_functions():
    env = {k: v for k, v in os.environ.items() if k != "AzureWebJobsStorage"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devhost",
            "start",
            "--store",
            "memory",
            "--port",
            "0",
            "--app-dir",
            str(APPS / "samples" / "function_chaining"),
            "--functions",
            "E1_HelloSequence",
            "e1_sayhello",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        lines: list[str] = []
        eventually(lambda: lines.append(process.stdout.readline()) or "Host started" in lines[-1])
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    listing = "".join(lines)
    assert "E1_HelloSequence: orchestrationTrigger" in listing
    assert "E1_SayHello: activityTrigger" in listing
    assert "HttpStart" not in listing


@pytest.mark.slow
def test_cli_functions_option_refuses_an_unknown_name():
    result = run_cli(
        "--app-dir", str(APPS / "samples" / "function_chaining"), "--functions", "Nope"
    )
    assert result.returncode == 2
    assert "--functions: no function named Nope" in result.stderr
