"""Host settings from host.json and local.settings.json, read as `func start` reads them."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .function_timeout import WARN_AFTER_SECONDS, FunctionTimeout
from .host_names import ALLOWED_HOSTS_SETTING, ALLOWED_HOSTS_VARIABLE, AllowedHosts

WARM_INSTANCES_VARIABLE = "DEVHOST_WARM_INSTANCES"
VERIFY_WARM_VARIABLE = "DEVHOST_VERIFY_WARM"
WORKER_COUNT_VARIABLE = "FUNCTIONS_WORKER_PROCESS_COUNT"
THREAD_COUNT_VARIABLE = "PYTHON_THREADPOOL_THREAD_COUNT"
HUNG_WARNING_VARIABLE = "DEVHOST_HUNG_WARNING_SECONDS"
MAX_WORKER_PROCESSES = 10  # as the Functions host allows
MAX_THREADS = 32  # as the Python worker allows
DEFAULT_WARM_INSTANCES = 1000  # warm orchestrations kept per process (DEVHOST_WARM_INSTANCES)


class SettingsError(Exception):
    """A settings file that cannot be used, with the file and the reason."""


@dataclass
class HostSettings:
    """What the host needs to know about an app before it starts."""

    app_dir: Path
    route_prefix: str = "api"
    hub_name: str = "TestHubName"
    port: int = 7071
    cors_origins: list[str] = field(default_factory=list)
    cors_credentials: bool = False
    # Host names besides loopback and the listen address that the host answers (host_names.py).
    allowed_hosts: AllowedHosts = field(default_factory=AllowedHosts)
    max_concurrent_activities: int = 10 * (os.cpu_count() or 1)
    max_concurrent_orchestrations: int = 10 * (os.cpu_count() or 1)
    warm_instances: int = DEFAULT_WARM_INSTANCES
    # Check every warm episode against a full replay; None: not set, so the caller decides
    # (the host checks each instance at its end, the test harness every episode).
    verify_warm: bool | None = None
    # Language worker processes; None: not set, so the caller decides (in-process for tests).
    worker_processes: int | None = None
    # Threads of a worker for sync functions; None: the Python worker's default (the executor's).
    worker_threads: int | None = None
    values: dict[str, str] = field(default_factory=dict)
    # How long a client request waits for storage that is away before answering 503.
    request_deadline: float = 10.0
    host_json: dict = field(default_factory=dict)  # as read, for extensions' own settings
    # host.json's functionTimeout, and when a function with no limit is named as still running.
    function_timeout: FunctionTimeout = field(default_factory=FunctionTimeout)

    @property
    def storage_connection(self) -> str:
        return os.environ.get("AzureWebJobsStorage", "")


def _read_json(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise SettingsError(f"{path}:{err.lineno}: not valid JSON: {err.msg}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: expected a JSON object at the top level")
    return data


def parse_cors(value: str | list[str] | None) -> list[str]:
    """Origins from a comma-separated string or a list; '*' allows any origin."""
    if not value:
        return []
    items = value.split(",") if isinstance(value, str) else value
    return [item.strip() for item in items if item.strip()]


def parse_allowed_hosts(value: str | list[str] | None, source: str) -> AllowedHosts:
    """Allowed Host names from a setting, or a SettingsError that names `source`."""
    try:
        return AllowedHosts.parse(value)
    except ValueError as err:
        raise SettingsError(f"{source}: {err}") from None


def load_settings(app_dir: str | Path, apply_environment: bool = True) -> HostSettings:
    """Read host.json and local.settings.json; Values become environment variables.

    A variable already set in the environment wins over local.settings.json, as with `func start`.
    """
    root = Path(app_dir).resolve()
    host = _read_json(root / "host.json")
    local = _read_json(root / "local.settings.json")
    settings = HostSettings(app_dir=root, host_json=host)

    extensions = host.get("extensions") or {}
    http = extensions.get("http") or {}
    if "routePrefix" in http:
        settings.route_prefix = str(http["routePrefix"]).strip("/")
    durable = extensions.get("durableTask") or {}
    hub = durable.get("hubName")
    if hub:
        settings.hub_name = _expand_app_setting(str(hub), local.get("Values") or {})
    for key, attr in (
        ("maxConcurrentActivityFunctions", "max_concurrent_activities"),
        ("maxConcurrentOrchestratorFunctions", "max_concurrent_orchestrations"),
    ):
        if key in durable:
            setattr(settings, attr, int(durable[key]))

    values = local.get("Values") or {}
    if not isinstance(values, dict):
        raise SettingsError(f"{root / 'local.settings.json'}: 'Values' must be an object")
    settings.values = {str(k): str(v) for k, v in values.items()}
    local_host = local.get("Host") or {}
    if "LocalHttpPort" in local_host:
        settings.port = int(local_host["LocalHttpPort"])
    settings.cors_origins = parse_cors(local_host.get("CORS"))
    settings.cors_credentials = bool(local_host.get("CORSCredentials", False))
    settings.allowed_hosts = parse_allowed_hosts(
        local_host.get("AllowedHosts"), f"{ALLOWED_HOSTS_SETTING} in local.settings.json"
    )

    if apply_environment:
        for key, value in settings.values.items():
            os.environ.setdefault(key, value)
    deadline = os.environ.get("DEVHOST_REQUEST_DEADLINE_SECONDS")
    if deadline:
        try:
            settings.request_deadline = float(deadline)
        except ValueError:
            raise SettingsError(
                f"DEVHOST_REQUEST_DEADLINE_SECONDS must be a number of seconds, not {deadline!r}"
            ) from None
    variable = os.environ.get(ALLOWED_HOSTS_VARIABLE, settings.values.get(ALLOWED_HOSTS_VARIABLE))
    if variable is not None:  # wins over Host.AllowedHosts, as the environment does elsewhere
        settings.allowed_hosts = parse_allowed_hosts(variable, ALLOWED_HOSTS_VARIABLE)
    _read_warm_settings(settings)
    _read_worker_settings(settings)
    settings.function_timeout = _read_function_timeout(root / "host.json", host, settings.values)
    return settings


def _read_function_timeout(path: Path, host: dict, values: dict[str, str]) -> FunctionTimeout:
    """host.json's functionTimeout, and DEVHOST_HUNG_WARNING_SECONDS (5 minutes by default)."""
    text = os.environ.get(HUNG_WARNING_VARIABLE, values.get(HUNG_WARNING_VARIABLE, "")).strip()
    try:
        warn_after = float(text) if text else WARN_AFTER_SECONDS
    except ValueError:
        warn_after = -1.0
    if not warn_after > 0:
        raise SettingsError(
            f"{HUNG_WARNING_VARIABLE} must be a number of seconds above zero, not '{text}'"
        )
    try:
        return FunctionTimeout.from_host_json(host, warn_after)
    except ValueError as err:
        raise SettingsError(f"{path}: {err}") from None


def _read_worker_settings(settings: HostSettings) -> None:
    """FUNCTIONS_WORKER_PROCESS_COUNT (1..10) and PYTHON_THREADPOOL_THREAD_COUNT (1..32)."""
    for variable, attr, most in (
        (WORKER_COUNT_VARIABLE, "worker_processes", MAX_WORKER_PROCESSES),
        (THREAD_COUNT_VARIABLE, "worker_threads", MAX_THREADS),
    ):
        text = os.environ.get(variable, settings.values.get(variable, "")).strip()
        if not text:
            continue
        if not text.isdigit() or not 1 <= int(text) <= most:
            raise SettingsError(f"{variable} must be a whole number from 1 to {most}, not '{text}'")
        setattr(settings, attr, int(text))


def _read_warm_settings(settings: HostSettings) -> None:
    """The warm cache's size and verify mode: from the environment, or local.settings.json."""

    def value(name: str) -> str:
        return os.environ.get(name, settings.values.get(name, "")).strip()

    size = value(WARM_INSTANCES_VARIABLE)
    if size and not size.isdigit():
        raise SettingsError(
            f"{WARM_INSTANCES_VARIABLE} must be a whole number of instances, 0 or more "
            f"(0 turns warm orchestrations off), not '{size}'"
        )
    if size:
        settings.warm_instances = int(size)
    verify = value(VERIFY_WARM_VARIABLE).lower()
    if verify:
        settings.verify_warm = verify not in ("0", "false", "no")


def _expand_app_setting(value: str, values: dict) -> str:
    """host.json may name an app setting as %NAME%; the environment wins over local settings."""
    if len(value) > 2 and value.startswith("%") and value.endswith("%"):
        name = value[1:-1]
        return os.environ.get(name) or str(values.get(name, "")) or value
    return value
