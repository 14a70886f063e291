"""`python -m devhost check`: read the app's orchestrators for what would make them replay wrong.

    python -m devhost check --app-dir .

Each finding is a `file:line` with what the line does and the replay-safe way to do it (see
devhost/app/orchestrator_check.py). A line ending with `# devhost: allow-nondeterminism` is not
reported. Exit status: 0 when nothing is found, 1 with findings, 2 when the app cannot be loaded.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..app.app_index import AppLoadError, index_app
from ..app.orchestrator_check import check_orchestrators
from ..settings import SettingsError, load_settings


def add_parser(commands: Any) -> None:
    """The `check` subcommand of `python -m devhost`."""
    check = commands.add_parser(
        "check",
        help="check orchestrators against the Durable Functions code constraints "
        "(0 clean, 1 findings, 2 the app cannot be loaded)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("--app-dir", default=".", help="folder of function_app.py (default: .)")


def run(args: argparse.Namespace) -> int:
    app_dir = Path(args.app_dir).resolve()
    try:
        load_settings(app_dir)  # the app imports with its settings, as the host loads it
        index = index_app(app_dir)
    except (AppLoadError, SettingsError) as err:
        print(f"devhost check: {err}", file=sys.stderr)
        return 2
    findings = check_orchestrators(index, app_dir)
    for finding in findings:
        print(finding)
    count = len(index.orchestrators)
    checked = f"{count} orchestrator{'s' if count != 1 else ''}"
    if findings:
        print(f"{len(findings)} finding{'s' if len(findings) != 1 else ''}; {checked} read")
        return 1
    print(f"ok: {checked} keep the Durable Functions code constraints")
    return 0
