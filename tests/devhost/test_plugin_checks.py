"""The pytest plugin as a user meets it, in pytest processes of their own: a test whose
orchestrator turns out non-deterministic fails with the instance's error, and a v1-model app
(function folders) is tested as a v2 one is."""

import shutil
import textwrap
from pathlib import Path

import pytest

from tests.test_readme_example import plain_pytest

pytestmark = pytest.mark.slow  # each test runs pytest in a process of its own
SAMPLES = Path(__file__).parent / "apps" / "samples"

APP = """
import random

import azure.durable_functions as df

app = df.DFApp()


@app.orchestration_trigger(context_name="context")
def Lottery(context: df.DurableOrchestrationContext):
    for _ in range(20):
        yield context.call_activity("Win" if random.random() < 0.5 else "Lose")
    return "drawn"


@app.orchestration_trigger(context_name="context")
def Fair(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("Win"))


@app.activity_trigger(input_name="value")
def Win(value: None) -> str:
    return "won"


@app.activity_trigger(input_name="value")
def Lose(value: None) -> str:
    return "lost"
"""

TESTS = """
def test_the_lottery_ends(durable_host):
    instance_id = durable_host.start("Lottery")
    assert durable_host.wait_for(instance_id).runtime_status.value in ("Completed", "Failed")


def test_the_lottery_is_started(durable_host):
    durable_host.start("Lottery")
    durable_host.idle()


def test_a_fair_game(durable_host):
    assert durable_host.wait_for(durable_host.start("Fair")).output == "won"
"""


def test_a_test_whose_orchestrator_diverges_fails_and_quotes_the_error(tmp_path):
    (tmp_path / "function_app.py").write_text(APP)
    (tmp_path / "test_lottery.py").write_text(textwrap.dedent(TESTS))
    result = plain_pytest(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "2 failed, 1 passed" in result.stdout, result.stdout
    assert "FAILED test_lottery.py::test_the_lottery_ends" in result.stdout
    assert "FAILED test_lottery.py::test_the_lottery_is_started" in result.stdout
    assert "orchestrator code is not deterministic:" in result.stdout
    assert "(Lottery): Orchestrator function 'Lottery' failed: Non-Deterministic workflow " in (
        result.stdout
    )


def test_a_v1_model_app_is_tested_through_the_plugin(tmp_path):
    app = tmp_path / "app"
    shutil.copytree(SAMPLES / "function_chaining", app)
    (tmp_path / "test_chain.py").write_text(
        textwrap.dedent(
            """
            def test_hello_sequence(durable_host):
                instance_id = durable_host.start("E1_HelloSequence")
                status = durable_host.wait_for(instance_id)
                assert status.output == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
            """
        )
    )
    result = plain_pytest(tmp_path, "--durable-app", "app")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
