"""DurableHarness: a Functions app in-process, on the memory store and a virtual clock, served on
a real socket, with the SDK's own client.

    with DurableHarness("path/to/app") as host:
        instance_id = host.start("Approval")
        host.advance(minutes=2)                   # durable timers fire; no wall time passes
        assert host.wait_for(instance_id).output == "timed out"

The host runs on one event loop in a background thread shared by every harness of the process,
so the SDK's own HTTP session (a module global bound to a loop) stays valid across tests. Time
skipping lives here: the engine only knows the clock interface, and `advance` moves the virtual
clock from one booked wake-up to the next, letting the app settle after each.

Longer than 400 lines because it is the harness's whole public surface, each parameter
documented where it is declared, beside the small part that starts and stops the host.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import azure.durable_functions as df

from ..app.app_index import FunctionIndex, build_index
from ..app.invoke import run_activity
from ..clock import Clock
from ..engine.planner import WaitingOn
from ..engine.replay_check import ReplayResult, check_history
from ..host import DevHost, ListenAddress
from ..settings import HostSettings, load_settings
from ..store.base import TaskHubStore
from ..store.memory import MemoryStore
from ..taskhub.model import RuntimeStatus
from .diagnosis import diverged_instances, waits_of
from .virtual_clock import VirtualClock, advance_through, step_of

T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()
_app_indexes: dict[int, tuple[Any, FunctionIndex]] = {}


def _shared_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _loop_lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="devhost-loop", daemon=True).start()
        return _loop


class ActivityError(Exception):
    """`run_activity`: the activity raised; the message is the reason its orchestrator would get."""


class EntityOperationError(Exception):
    """`call_entity`: the operation raised; the entity's state is as it was before it."""


class DurableHarness:
    """Runs a Functions app for a test; use it as a context manager.

    Args:
        app_dir: the folder of the app's `function_app.py` (its `host.json` and
            `local.settings.json` are read as `func start` reads them).
        store: the task hub store; default a new in-memory one. Pass
            `devhost.store.azure.AzureStore(connection_string, hub)` to test on Azure Storage.
        virtual_clock: True (default) runs on a `VirtualClock` that moves only by `advance`;
            False uses the wall clock, and durable timers take real time.
        env: environment variables to set before the app is loaded (they win over
            `local.settings.json`).
        cors_origins: allowed CORS origins of the HTTP server (default: from local settings).
        static_dir: a folder served at `/` (for browser tests of a web page).
        grpc: also serve Durable Task's gRPC protocol on the same engine and hub, for
            `durabletask` workers and clients (`grpc_address` tells where).
    """

    def __init__(
        self,
        app_dir: str | Path,
        store: TaskHubStore | None = None,
        virtual_clock: bool = True,
        env: dict[str, str] | None = None,
        cors_origins: list[str] | None = None,
        static_dir: str | Path | None = None,
        grpc: bool = False,
    ) -> None:
        self.app_dir = Path(app_dir)
        self._grpc = grpc
        self.clock: Clock = VirtualClock() if virtual_clock else Clock()
        self._store = store
        self._env = env or {}
        self._cors = cors_origins
        self._static_dir = Path(static_dir) if static_dir else None
        self._app: Any = None
        self._settings_dir: Path | None = self.app_dir
        self._host: DevHost | None = None
        self._client: df.DurableOrchestrationClient | None = None

    @classmethod
    def from_app(
        cls, app: Any, app_dir: str | Path | None = None, **options: Any
    ) -> DurableHarness:
        """A harness for an app object built in the test file (`df.DFApp()` or
        `func.FunctionApp()`) rather than a folder. The SDK lets an app be indexed once: for
        the app of a folder, use `DurableHarness(folder)` rather than importing its `app` here.

        Args:
            app: the app object; its functions are indexed once, as the worker does.
            app_dir: a folder whose `host.json` and `local.settings.json` to read (default:
                none; the host's defaults apply).
            options: the keyword arguments of `DurableHarness` (store, virtual_clock, env, ...).
        """
        harness = cls(app_dir or Path.cwd(), **options)
        harness._app = app
        harness._settings_dir = Path(app_dir) if app_dir else None
        return harness

    # -- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> DurableHarness:
        os.environ.update(self._env)
        if self._settings_dir is None:
            settings = HostSettings(app_dir=self.app_dir)
        else:
            settings = load_settings(self._settings_dir)
        index = _index_of(self._app) if self._app is not None else None
        if self._cors is not None:
            settings.cors_origins = self._cors
        if settings.verify_warm is None:  # tests check every episode against a full replay
            settings.verify_warm = True
        self._host = DevHost(
            settings,
            self._store or MemoryStore(),
            self.clock,
            index=index,
            listen=ListenAddress("127.0.0.1", 0),
            static_dir=self._static_dir,
            # An app object of the test's own can only run here: a worker loads a folder's app.
            workers=0 if self._app is not None else None,
            grpc_port=0 if self._grpc else None,
        )
        self.run(self._host.start())
        self._client = df.DurableOrchestrationClient(self._host.client_json())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._host is not None:
            self.run(self._host.stop())
            self._host = None

    @property
    def client(self) -> df.DurableOrchestrationClient:
        """The SDK's own DurableOrchestrationClient, bound to this host."""
        assert self._client is not None, "use the harness as a context manager"
        return self._client

    @property
    def base_url(self) -> str:
        """The host's origin, e.g. http://127.0.0.1:41234."""
        return self._started.base_url

    @property
    def grpc_address(self) -> str:
        """`host:port` of the Durable Task gRPC service (`grpc=True`), for durabletask workers
        and clients on the app's hub."""
        grpc = self._started.grpc
        if grpc is None:
            raise RuntimeError("this harness serves no gRPC: create it with grpc=True")
        return grpc.address

    @property
    def functions(self) -> FunctionIndex:
        """The app's functions, grouped by trigger (`.http`, `.orchestrators`, ...)."""
        return self._started.index

    @property
    def _started(self) -> DevHost:
        assert self._host is not None, "use the harness as a context manager"
        return self._host

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run a coroutine (e.g. a `client` call) on the host's loop and return its result.

        Args:
            coro: the coroutine.
            timeout: seconds to wait for it.
        """
        return asyncio.run_coroutine_threadsafe(coro, _shared_loop()).result(timeout)

    # -- time ---------------------------------------------------------------------------------

    def idle(self, timeout: float = 30) -> None:
        """Wait until no episode, activity or delivery is under way (timers may be pending).

        Args:
            timeout: seconds to wait.
        """
        self.run(self._settle(), timeout)

    async def _settle(self) -> None:
        host = self._started
        while True:
            await host.wait_idle()
            if not isinstance(self.clock, VirtualClock) or not self.clock.move_to(self.clock.now()):
                return

    def advance(
        self,
        delta: timedelta | None = None,
        *,
        days: float = 0,
        hours: float = 0,
        minutes: float = 0,
        seconds: float = 0,
        timeout: float = 60,
    ) -> None:
        """Move the virtual clock forward, firing durable timers in order of their due times
        and letting the app settle after each; no wall time passes.

        Args:
            delta: how far to move, as a timedelta; or give days, hours, minutes, seconds.
            timeout: wall-clock seconds the app may take to settle.
        """
        if not isinstance(self.clock, VirtualClock):
            raise RuntimeError("advance() needs the virtual clock (virtual_clock=True)")
        step = step_of(delta, days, hours, minutes, seconds)
        self.run(advance_through(self.clock, step, self._settle), timeout)

    # -- orchestrations -----------------------------------------------------------------------

    def start(self, name: str, input: Any = None, instance_id: str | None = None) -> str:
        """Start an orchestration through the client; its instance id.

        Args:
            name: the orchestrator function's name.
            input: a JSON-serializable input (`context.get_input()`).
            instance_id: the id to give it (default: a new one).
        """
        return self.run(self.client.start_new(name, instance_id, input))

    def raise_event(self, instance_id: str, name: str, data: Any = None) -> None:
        """Send an external event (`context.wait_for_external_event(name)`) to an instance.

        Args:
            instance_id: the instance.
            name: the event's name.
            data: its JSON-serializable payload.
        """
        self.run(self.client.raise_event(instance_id, name, data))

    def terminate(self, instance_id: str, reason: str) -> None:
        """Terminate a running instance.

        Args:
            instance_id: the instance.
            reason: kept as its output.
        """
        self.run(self.client.terminate(instance_id, reason))

    def status(self, instance_id: str, **options: bool) -> df.DurableOrchestrationStatus:
        """The SDK's status of an instance.

        Args:
            instance_id: the instance.
            options: `show_history`, `show_history_output`, `show_input`, as
                `client.get_status` takes them.
        """
        return self.run(self.client.get_status(instance_id, **options))

    def wait_for(
        self, instance_id: str, timeout: float = 30, statuses: tuple[str, ...] = ()
    ) -> df.DurableOrchestrationStatus:
        """Wait until the instance reaches one of `statuses` and return its status.

        On the virtual clock nothing changes once the app is idle, so an instance that is idle
        in another status fails at once, with what it waits on ("waiting on the retry timer
        due in 1 s: call advance()"), rather than at the deadline.

        Args:
            instance_id: the instance.
            timeout: seconds to wait.
            statuses: runtime status names (default: any finished one: Completed, Failed,
                Terminated, Canceled).
        """
        wanted = {RuntimeStatus(s) for s in statuses} or {s for s in RuntimeStatus if s.is_terminal}
        engine = self._started.engine
        if isinstance(self.clock, VirtualClock):
            self.idle(timeout)
            record = self.run(engine.get_record(instance_id))
        else:
            record = self.run(engine.wait_for_status(instance_id, wanted, timeout), timeout + 5)
        if record is None or record.runtime_status not in wanted:
            current = record.runtime_status.value if record else "unknown"
            names = ", ".join(s.value for s in sorted(wanted))
            waits = self.run(waits_of(engine, self.clock, instance_id)) if record else ""
            raise AssertionError(f"{instance_id} is {current}, not {names}{waits}")
        return self.status(instance_id)

    def waiting_on(self, instance_id: str, settle: bool = True) -> dict[str, Any]:
        """What a running instance waits for, once the app is idle.

        Returns a dict of lists: `timers` ({"task", "due"}, due in ISO 8601), `events` (names
        of awaited external events), `activities` ({"task", "name"}), `suborchestrations`
        ({"task", "name", "instance_id"}) and `entities` ({"entity", "operation"}) in flight.
        All lists are empty for an instance that has finished or does not exist.

        Args:
            instance_id: the instance.
            settle: wait until the app is idle first (default); False looks at once, which
                shows activities still running.
        """
        if settle:
            self.idle()
        view = self.run(self._started.engine.waiting_on(instance_id))
        return (view or WaitingOn()).to_dict()

    def history(self, instance_id: str) -> list[dict[str, Any]]:
        """The instance's history (its current execution), as JSON-ready dicts: every event the
        SDK is given, with its ids. Save it to a file to check code changes later with
        `replay` or `python -m devhost replay FILE`.

        Args:
            instance_id: the instance.
        """
        events = self.run(self._started.engine.get_history(instance_id))
        return json.loads(json.dumps(events))

    def replay(self, history: list[dict[str, Any]], name: str | None = None) -> ReplayResult:
        """Replay a recorded history against the app's current code.

        `ok` is False when the code no longer asks for the work the history recorded (an
        activity reordered or renamed, a timer added before recorded work, a removed `yield`);
        `message` says at which event and how. Work added after everything recorded passes.
        Raises `devhost.engine.replay_check.HistoryError` for input that is not a history.

        Args:
            history: a list of events, as `history()` returns it (or parsed from its JSON).
            name: the orchestrator to replay (default: the one named in the history).
        """
        return check_history(history, self._started.index, name)

    def divergences(self) -> list[str]:
        """The instances that failed as non-deterministic, each as `ID (NAME): message`.

        Every episode a test runs is checked against a full replay of its history (unless
        DEVHOST_VERIFY_WARM is 0); the pytest plugin fails a test that leaves any of these.
        """
        return self.run(diverged_instances(self._started.engine))

    # -- activities and entities --------------------------------------------------------------

    def run_activity(self, name: str, input: Any = None) -> Any:
        """Run one activity alone, through the worker's converters, and return its result.

        Raises ActivityError (with the reason an orchestrator would get) if it raises.

        Args:
            name: the activity function's name.
            input: its JSON-serializable input.
        """
        host = self._started
        info = host.index.activities.get(name)
        if info is None:
            raise KeyError(
                f"no activity named '{name}' (the app has: "
                f"{', '.join(sorted(host.index.activities)) or 'none'})"
            )
        outcome = self.run(run_activity(host.invoker, info, json.dumps(input)))
        if not outcome.ok:
            raise ActivityError(outcome.reason)
        return None if outcome.result is None else json.loads(outcome.result)

    def call_entity(self, entity: df.EntityId, operation: str, input: Any = None) -> Any:
        """Run an operation on an entity, as an orchestration's `call_entity` does, and return
        its result (`context.set_result`). Raises EntityOperationError if the operation raises.

        Args:
            entity: the SDK's EntityId(name, key).
            operation: the operation name.
            input: its JSON-serializable input.
        """
        engine = self._started.engine
        outcome = self.run(
            engine.call_entity(entity.name, entity.key, operation, json.dumps(input))
        )
        result = json.loads(outcome.result) if outcome.result else None
        if outcome.is_error:
            raise EntityOperationError(result)
        return result

    def signal_entity(self, entity: df.EntityId, operation: str, input: Any = None) -> None:
        """Send a one-way operation to an entity (it runs once the app is idle).

        Args:
            entity: the SDK's EntityId(name, key).
            operation: the operation name.
            input: its JSON-serializable input.
        """
        self.run(self.client.signal_entity(entity, operation, input))

    def entity_state(self, entity: df.EntityId) -> Any:
        """An entity's state once the app is idle; None if it has none.

        Args:
            entity: the SDK's EntityId(name, key).
        """
        self.idle()
        record = self.run(self._started.engine.read_entity(entity.name, entity.key))
        if record is None or record.entity_state is None:
            return None
        return json.loads(record.entity_state)

    # -- HTTP -----------------------------------------------------------------------------------

    def http(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], Any]:
        """A real HTTP request to the host: status, headers and the JSON (or text) body.

        Args:
            method: GET, POST, ...
            path: the path and query, e.g. `/api/orders/7`.
            body: bytes as they are, anything else as JSON (sent as `application/json` unless
                `headers` name another Content-Type).
            headers: request headers.
        """
        headers = dict(headers or {})
        if body is None or isinstance(body, bytes):
            data = body
        else:
            data = json.dumps(body).encode()
            if not any(name.lower() == "content-type" for name in headers):
                headers["Content-Type"] = "application/json"
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, dict(response.headers), _decode(response.read())
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), _decode(err.read())


def _index_of(app: Any) -> FunctionIndex:
    """An app object's functions, indexed once: the SDK lets `get_functions()` run only once."""
    cached = _app_indexes.get(id(app))
    if cached is None or cached[0] is not app:
        cached = _app_indexes[id(app)] = (app, build_index(app))
    return cached[1]


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")
