"""The static check: orchestrators' source against the Durable Functions code constraints.

Each test writes an app of its own into a fresh folder, with a module name of its own (an app
module is imported once per process), and checks it as `python -m devhost check` does.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from devhost.app.app_index import build_index, load_app
from devhost.app.orchestrator_check import ALLOW_COMMENT, Finding, check_orchestrators
from devhost.clock import Clock
from devhost.host import DevHost, ListenAddress
from devhost.settings import load_settings
from devhost.store.memory import MemoryStore

REPO = Path(__file__).resolve().parents[2]
APPS = Path(__file__).parent / "apps"
HEADER = """\
import asyncio
import datetime as dt
import os
import random
import threading
import time
import urllib.request
import uuid
from datetime import datetime
from random import randint as pick
from uuid import uuid4

import azure.durable_functions as df
import requests_like_module as requests
from azure.storage.blob import BlobServiceClient
from helpers import helper_reads_clock

app = df.DFApp()
COLORS = {"red", "green"}
NAMES = ["b", "a"]
"""


def check(tmp_path: Path, body: str, helpers: str = "def helper_reads_clock():\n    pass\n"):
    """Findings for an app made of HEADER, `body` and a helpers.py module, as (line, text)."""
    module = f"app_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(HEADER + textwrap.dedent(body))
    (tmp_path / "helpers.py").write_text(textwrap.dedent(helpers))
    (tmp_path / "requests_like_module.py").write_text("def get(url):\n    return url\n")
    sys.modules.pop("helpers", None)
    index = build_index(load_app(tmp_path, module).app)
    first = len(HEADER.splitlines())
    return [
        (f.line - first if f.path.name != "helpers.py" else f"helpers:{f.line}", f.problem)
        for f in check_orchestrators(index, tmp_path)
    ]


def test_each_forbidden_call_is_found_with_its_line_through_any_import_form(tmp_path):
    found = check(
        tmp_path,
        """
        @app.orchestration_trigger(context_name="context")
        def Bad(context):
            a = datetime.now()
            b = dt.datetime.utcnow()
            c = dt.date.today()
            d = time.time() + time.monotonic()
            time.sleep(1)
            e = random.random() + pick(1, 2)
            f = uuid.uuid4(), uuid4(), uuid.uuid1()
            g = os.environ["X"], os.getenv("Y"), os.environ.get("Z")
            h = open("f").read()
            i = urllib.request.urlopen("http://x")
            j = requests.get("http://x")
            k = BlobServiceClient.from_connection_string("x")
            threading.Thread(target=print).start()
            asyncio.sleep(1)
            yield context.call_activity("A", [a, b, c, d, e, f, g, h, i, j, k])
        """,
    )
    assert found == [
        (4, "reads the clock (datetime.datetime.now)"),
        (5, "reads the clock (datetime.datetime.utcnow)"),
        (6, "reads the clock (datetime.date.today)"),
        (7, "reads the clock (time.time)"),
        (7, "reads the clock (time.monotonic)"),
        (8, "sleeps, blocking the orchestrator (time.sleep)"),
        (9, "draws a random number (random.random)"),
        (9, "draws a random number (random.randint)"),
        (10, "makes a new uuid (uuid.uuid4)"),
        (10, "makes a new uuid (uuid.uuid1)"),
        (11, "reads a setting (os.environ)"),
        (11, "reads a setting (os.getenv)"),
        (11, "reads a setting (os.environ.get)"),
        (12, "opens a file (open)"),
        (13, "makes a network request (urllib.request.urlopen)"),
        (15, "uses a storage client (azure.storage.blob.BlobServiceClient.from_connection_string)"),
        (16, "starts threads (threading.Thread)"),
        (17, "uses asyncio in a generator orchestrator (asyncio.sleep)"),
    ]  # line 14 is clean: `requests` there is a module of the app's own


def test_each_finding_names_the_replay_safe_replacement(tmp_path):
    module = f"app_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(
        HEADER.replace("from helpers import helper_reads_clock\n", "")
        + textwrap.dedent(
            """
            @app.orchestration_trigger(context_name="context")
            def Bad(context):
                yield context.create_timer(datetime.utcnow())
                yield context.call_activity("A", str(uuid4()))
                time.sleep(random.random())
            """
        )
    )
    index = build_index(load_app(tmp_path, module).app)
    texts = [str(f) for f in check_orchestrators(index, tmp_path)]
    path = tmp_path / f"{module}.py"
    line = len(HEADER.splitlines())  # one line fewer (no helpers import), one more (blank line)
    assert texts == [
        f"{path}:{line + 3}: orchestrator 'Bad' reads the clock (datetime.datetime.utcnow): "
        "use context.current_utc_datetime, the replay-safe time",
        f"{path}:{line + 4}: orchestrator 'Bad' makes a new uuid (uuid.uuid4): "
        "use context.new_uuid()",
        f"{path}:{line + 5}: orchestrator 'Bad' sleeps, blocking the orchestrator (time.sleep): "
        "yield context.create_timer(...)",
        f"{path}:{line + 5}: orchestrator 'Bad' draws a random number (random.random): "
        "draw it in an activity, or derive it from context.new_uuid()",
    ]


def test_iteration_over_a_set_is_found_and_sorted_or_ordered_collections_are_not(tmp_path):
    found = check(
        tmp_path,
        """
        @app.orchestration_trigger(context_name="context")
        def Walk(context):
            for color in COLORS:
                yield context.call_activity(color)
            local = {"x", "y"} | set(NAMES)
            tasks = [context.call_activity(n) for n in local]
            yield context.task_all(list(frozenset(NAMES)))
            for name in sorted(COLORS):
                yield context.call_activity(name)
            for name in NAMES:
                yield context.call_activity(name)
            ordered = sorted(c.upper() for c in COLORS)
            count = len({n for n in NAMES})
            yield context.task_all(tasks + [context.call_activity(", ".join(COLORS))])
            return ordered, count, "red" in COLORS
        """,
    )
    problem = "iterates over a set, whose order changes from one process to another"
    assert [(line, text[: len(problem)]) for line, text in found] == [
        (4, problem),
        (7, problem),
        (8, problem),
        (15, problem),
    ]


def test_the_apps_own_functions_it_calls_are_read_and_activities_and_libraries_are_not(
    tmp_path,
):
    found = check(
        tmp_path,
        """
        def local_helper(context):
            return context.call_activity("A", time.time())

        @app.activity_trigger(input_name="value")
        def Reads(value):
            return os.environ["SECRET"]  # an activity may read settings

        @app.orchestration_trigger(context_name="context")
        def Calls(context):
            yield local_helper(context)
            helper_reads_clock()
            Reads("direct call of an activity function")
            yield context.call_activity("Reads", textwrap_dedent("x"))

        def textwrap_dedent(text):
            return text
        """,
        helpers="""\
        import datetime

        def helper_reads_clock():
            return datetime.datetime.now()
        """,
    )
    assert found == [
        (3, "reads the clock (time.time)"),
        ("helpers:4", "reads the clock (datetime.datetime.now)"),
    ]


def test_names_bound_in_the_function_are_not_modules(tmp_path):
    found = check(
        tmp_path,
        """
        @app.orchestration_trigger(context_name="context")
        def Shadows(context):
            random = context.get_input()
            time = context.current_utc_datetime
            return random, time.isoformat(), context.new_uuid()
            yield
        """,
    )
    assert found == []


def test_the_allow_comment_silences_its_line_only(tmp_path):
    found = check(
        tmp_path,
        f"""
        @app.orchestration_trigger(context_name="context")
        def Allowed(context):
            seed = random.random()  # {ALLOW_COMMENT}: the seed only names a log line
            other = random.random()
            yield context.call_activity("A", [seed, other])
        """,
    )
    assert found == [(5, "draws a random number (random.random)")]


CHECK_EACH = """
import sys
from devhost.app.app_index import index_app
from devhost.app.orchestrator_check import check_orchestrators
for folder in sys.argv[1:]:
    findings = check_orchestrators(index_app(folder), folder)
    print(folder, len(findings), *findings, sep="\\n  ")
"""


@pytest.mark.slow
def test_the_game_the_bench_app_and_the_test_apps_keep_the_constraints():
    skipped = ("broken_import", "broken_syntax", "duplicate", "nondeterministic", "samples")
    folders = [REPO, REPO / "bench" / "app"]
    folders += [p for p in sorted(APPS.glob("*/")) if p.name not in skipped]
    folders += sorted((APPS / "samples").glob("*/"))  # v1-model apps
    result = subprocess.run(
        [sys.executable, "-c", CHECK_EACH, *map(str, folders)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        check=True,
    )
    assert result.stdout.count("\n  0") == len(folders), result.stdout


def devhost_check(app_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "devhost", "check", "--app-dir", str(app_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


@pytest.mark.slow
def test_the_check_command_exits_1_on_findings_and_2_when_the_app_does_not_load(tmp_path):
    found = devhost_check(APPS / "nondeterministic")
    assert found.returncode == 1, found.stderr
    lines = found.stdout.splitlines()
    assert lines[0].startswith(
        "tests/devhost/apps/nondeterministic/function_app.py:23: orchestrator 'CoinFlips' "
        "draws a random number (random.random): "
    )
    assert any("'WalkDirections' iterates over a set" in line for line in lines)
    assert lines[-1] == "4 findings; 4 orchestrators read"
    missing = devhost_check(tmp_path)
    assert missing.returncode == 2
    assert "no such file" in missing.stderr
    broken = devhost_check(APPS / "broken_syntax")
    assert broken.returncode == 2 and "SyntaxError" in broken.stderr
    (tmp_path / "local.settings.json").write_text('{"Values": ')
    unreadable = devhost_check(tmp_path)
    assert unreadable.returncode == 2 and "local.settings.json:1: not valid JSON" in (
        unreadable.stderr
    )


def test_the_host_warns_of_each_finding_when_it_starts(caplog):
    async def start_and_stop() -> None:
        host = DevHost(
            load_settings(APPS / "nondeterministic"),
            MemoryStore(),
            Clock(),
            listen=ListenAddress("127.0.0.1", 0),
            workers=0,
        )
        await host.start()
        await host.stop()

    with caplog.at_level(logging.WARNING, logger="devhost"):
        asyncio.run(start_and_stop())
    warnings = [r.getMessage() for r in caplog.records if r.name == "devhost"]
    assert sum("function_app.py:" in w for w in warnings) == 4
    assert any(
        w.startswith("Warning: ")
        and "function_app.py:32: orchestrator 'PollUntilDeadline' reads the clock "
        "(datetime.datetime.now): use context.current_utc_datetime"
        in w
        for w in warnings
    )


def test_a_finding_prints_as_file_line_orchestrator_problem_and_remedy():
    finding = Finding(Path("/x/app.py"), 7, "Order", "pick", "draws a random number", "use X")
    assert str(finding) == (
        "/x/app.py:7: orchestrator 'Order' (in pick, it calls) draws a random number: use X"
    )
