"""The console monitor as a person runs it: real processes reading the real queue and Log."""

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueClient

from dungeon.console import decode, format_line
from dungeon.repository import GameRepository


def test_lines_are_formatted_with_time_user_and_text():
    line = format_line({"time": "2026-01-02T03:04:05.000Z", "user": "Pat", "text": "Hi"}, False)
    assert line == "03:04:05 Pat          Hi"
    assert decode("a bare string from the original sample") == {
        "text": "a bare string from the original sample"
    }


def start_console(azurite, *args: str) -> subprocess.Popen:
    env = dict(os.environ, AzureWebJobsStorage=azurite.connection_string, NO_COLOR="1")
    return subprocess.Popen(
        [sys.executable, "-m", "dungeon.console", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def read_lines(process: subprocess.Popen, count: int) -> list[str]:
    deadline = time.monotonic() + 30
    lines = []
    while len(lines) < count and time.monotonic() < deadline:
        lines.append(process.stdout.readline().strip())
    return lines


def stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    return out


def test_the_plain_console_prints_every_players_lines_and_takes_them(azurite):
    queue = QueueClient.from_connection_string(azurite.connection_string, "console")
    with contextlib.suppress(ResourceNotFoundError):
        queue.clear_messages()  # what other tests' games left
    process = start_console(azurite)
    try:
        assert "Watching" in process.stdout.readline()
        queue.send_message('{"time": "2026-01-01T10:00:00Z", "user": "Zed", "text": "one"}')
        queue.send_message('{"time": "2026-01-01T10:00:01Z", "user": "Amy", "text": "two"}')
        assert read_lines(process, 2) == [
            "10:00:00 Zed          one",
            "10:00:01 Amy          two",
        ]
    finally:
        out = stop(process)
    assert "Stopped." in out
    assert queue.peek_messages(max_messages=32) == []


def test_the_user_console_follows_one_story_from_the_log_and_takes_no_message(azurite):
    name = f"Zed{uuid.uuid4().hex[:6]}"
    queue = QueueClient.from_connection_string(azurite.connection_string, "console")
    queue.send_message(f'{{"time": "2026-01-01T10:00:00Z", "user": "{name}", "text": "one"}}')

    async def write(user: str, at: str, text: str) -> None:
        repository = GameRepository(azurite.connection_string)
        await repository.append_log(user, at, uuid.uuid4().hex, text)
        await repository.service.close()

    def append(at: str, text: str, user: str = name) -> None:
        asyncio.run(write(user, at, text))

    append("2026-01-01T10:00:00.000000Z", "one")
    append("2026-01-01T10:00:00.500000Z", "someone else's", user="Other" + name)
    process = start_console(azurite, "--user", name.upper())
    try:
        assert "Following the story of" in process.stdout.readline()
        assert read_lines(process, 1) == [f"10:00:00 {name}    one"]
        append("2026-01-01T10:00:02.000000Z", "three")
        assert read_lines(process, 1) == [f"10:00:02 {name}    three"]
        append("2026-01-01T10:00:01.000000Z", "two, stored late")  # behind the newest line
        assert read_lines(process, 1) == [f"10:00:01 {name}    two, stored late"]
    finally:
        out = stop(process)
    assert "someone else's" not in out
    waiting = [m.content for m in queue.peek_messages(max_messages=32)]
    assert any(name in content for content in waiting), "the queue's message is still there"


def test_the_user_console_refuses_a_bad_name(azurite):
    process = start_console(azurite, "--user", "..")
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 2 and "'.' or '..'" in out
