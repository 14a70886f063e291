"""The console monitor as a person runs it: a real process reading the real queue."""

import os
import signal
import subprocess
import sys
import time

from azure.storage.queue import QueueClient

from dungeon.console import decode, format_line


def test_lines_are_formatted_with_time_user_and_text():
    line = format_line({"time": "2026-01-02T03:04:05.000Z", "user": "Pat", "text": "Hi"}, False)
    assert line == "03:04:05 Pat          Hi"
    assert decode("a bare string from the original sample") == {
        "text": "a bare string from the original sample"
    }


def test_monitor_prints_a_users_lines_as_they_arrive_and_stops_on_ctrl_c(azurite):
    queue = QueueClient.from_connection_string(azurite.connection_string, "console")
    env = dict(os.environ, AzureWebJobsStorage=azurite.connection_string, NO_COLOR="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "dungeon.console", "--user", "Zed"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert "Watching" in process.stdout.readline()
        queue.send_message('{"time": "2026-01-01T10:00:00Z", "user": "Zed", "text": "one"}')
        queue.send_message('{"time": "2026-01-01T10:00:01Z", "user": "Zed", "text": "two"}')
        deadline = time.monotonic() + 30
        lines = []
        while len(lines) < 2 and time.monotonic() < deadline:
            lines.append(process.stdout.readline().strip())
        assert lines == ["10:00:00 Zed          one", "10:00:01 Zed          two"]
    finally:
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "Stopped." in out
