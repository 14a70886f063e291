"""What the host and its worker processes say to each other, and how it is framed.

Each message is a 4-byte big-endian length and a pickle of one of the dataclasses below. Both
ends are devhost, on the same interpreter, so pickle is safe here and the cheapest encoding.
The host writes to the worker's stdin; the worker answers on a duplicate of its original stdout
(fd 1 itself is pointed at stderr, so that what user code prints never reaches the channel).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pickle
import struct
import threading
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from ..app.http_call import HttpCall
from ..engine.entities import EntityRequest
from ..settings import HostSettings
from ..taskhub.model import InstanceRecord

HEADER = struct.Struct(">I")
PIPE_BYTES = 1 << 20


# -- host to worker --------------------------------------------------------------------------------


@dataclass
class Setup:
    """The first message: the host's settings (the app folder, warm cache, threads), what the
    durable client binding says (it points at this host), the level to log at, and whether this
    worker runs background work (orchestrations, entities, activities) at a lower CPU priority."""

    settings: HostSettings
    client_json: str
    log_level: int
    background: bool = False


@dataclass
class RunEpisode:
    """An episode: the events appended to the instance's history after the first `base` ones
    (which the worker already holds; `base` 0 sends the whole history), and the new events."""

    call_id: int
    name: str
    instance_id: str
    execution_id: str
    base: int
    appended: list[dict[str, Any]]
    new_events: list[dict[str, Any]]
    parent_instance_id: str | None
    input_json: str | None


@dataclass
class RunEntityBatch:
    call_id: int
    record: InstanceRecord
    requests: list[EntityRequest]


@dataclass
class RunActivity:
    call_id: int
    name: str
    input_json: str | None


@dataclass
class RunHttp:
    call_id: int
    name: str
    request: HttpCall


@dataclass
class Discard:
    """The instance finished: drop its history and warm state."""

    instance_id: str


@dataclass
class GetWarmStats:
    call_id: int


@dataclass
class Stop:
    """Finish nothing more; exit."""


# -- worker to host --------------------------------------------------------------------------------


@dataclass
class Ready:
    pid: int


@dataclass
class Answer:
    call_id: int
    value: Any


@dataclass
class UnknownHistory:
    """The worker lacks the history an episode builds on: the host sends it whole."""


@dataclass
class Crashed:
    """The worker itself failed running a request (not user code, whose failures are results)."""

    details: str


@dataclass
class LogLine:
    """A log record of user code (or the worker), with the function it ran in."""

    level: int
    logger: str
    message: str
    function: str | None = None


@dataclass
class Written:
    """An output binding wrote to a queue or a blob: the host's triggers may look now."""

    kind: str
    target: str


@dataclass
class LoadFailed:
    """The worker could not load the app."""

    reason: str


@dataclass
class Channel:
    """The writing end of a pipe, for many threads: a thread that finds another one writing
    leaves its frames to that one, so that a burst of answers goes in few writes."""

    fd: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    queued: list[bytes] = field(default_factory=list)
    writing: bool = False

    def send(self, message: object) -> None:
        self.write(frame(message))

    def write(self, frames: bytes) -> None:
        """Whole frames, one or several, in the order threads hand them over."""
        with self.lock:
            self.queued.append(frames)
            if self.writing:
                return
            self.writing = True
        while True:
            with self.lock:
                if not self.queued:
                    self.writing = False
                    return
                data = b"".join(self.queued)
                self.queued.clear()
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self.fd, view) :]
            except BaseException:
                with self.lock:
                    self.writing = False
                raise


def frame(message: object) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(data)) + data


def widen(fd: int) -> None:
    """A larger pipe buffer (Linux), so that a burst of requests rarely waits for the reader."""
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)


def read_message(stream: BinaryIO) -> object | None:
    """The next message; None at the end of the stream (the other end exited)."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (size,) = HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)  # noqa: S301 - both ends are devhost
