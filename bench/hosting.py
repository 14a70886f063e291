"""A host as a process of its own, for benchmarks, chaos runs and crash tests: start, kill, stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from devhost.azurite import answers, free_port

REPO = Path(__file__).resolve().parent.parent


class HostProcess:
    """`python -m devhost start --store azure` on an app (the game by default), its output
    appended to `log_path`."""

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        port: int | None = None,
        app_dir: Path = REPO,
    ) -> None:
        self.env = dict(os.environ, **env)
        self.log_path = log_path
        self.port = port or free_port()
        self.app_dir = app_dir
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        return [sys.executable, "-m", "devhost", "start", "--app-dir", str(self.app_dir)] + [
            "--store",
            "azure",
            "--port",
            str(self.port),
        ]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180) -> None:
        """Start and wait until the port answers; the engine may still be resuming work. The
        timeout is generous: a start on a busy machine is slow, and a failed one ends the
        process, which ends the wait at once."""
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                self.command(),
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while not answers("127.0.0.1", self.port, timeout=0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the host did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.05)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def request(
        self, method: str, path: str, body: object = None, timeout: float = 120
    ) -> tuple[int, object]:
        """A JSON request to the host: the status and the decoded body (None when empty). The
        timeout is far past the host's own deadline (it answers 503 after 10 s of storage
        away): a busy machine answers late, not never."""
        data = None if body is None else json.dumps(body).encode()
        headers = {} if data is None else {"Content-Type": "application/json"}
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")
