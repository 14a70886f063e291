"""The two ways `devhost durable` reaches a task hub, behind one interface.

- `HttpHub`: a running host's public Durable Functions HTTP API (`--url`, the memory store's
  only way, or the host found at the app's port serving the same hub).
- `StorageHub`: the hub in Azure Storage itself. Reads open it without the lease, beside a
  running host; changes go through an engine opened for client operations only (it takes the
  lease, so it is used only when no host runs the hub: the next host resumes what it stored).

Both answer in the DF HTTP API's JSON shapes, so `--json` prints the same either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote, urlencode

import aiohttp

from ..app.app_index import FunctionIndex
from ..app.invoke import Invoker
from ..clock import Clock
from ..engine.engine import Engine
from ..engine.purge_filter import matching
from ..runner import InProcessRunner
from ..status import public_history, status_json
from ..store.azure import AzureStore
from ..store.base import StorageRequestError
from ..taskhub.errors import EngineError
from ..taskhub.model import InstanceQuery, RuntimeStatus
from ..taskhub.rules import not_purged_reason

CONTINUATION_HEADER = "x-ms-continuation-token"
WEBHOOK = "/runtime/webhooks/durabletask"
DASHBOARD_HUB = "/_devhost/api/hub"
PAGE = 1000
LONG_WORK_SECONDS = 15 * 60  # a purge of thousands takes minutes on Azurite; a wedged host ends
LONG_WORK = aiohttp.ClientTimeout(total=LONG_WORK_SECONDS, sock_connect=10)
Progress = Callable[[int, int], None]  # told (instances done, instances in all) as a purge goes
EARLIEST = "1601-01-01T00:00:00Z"  # the earliest time Azure Table storage holds


@dataclass
class Purged:
    """What a purge did: how many it deleted, and why nothing was when live instances matched."""

    deleted: int
    reason: str | None = None


class HubError(Exception):
    """The hub refused or could not answer; the message is one sentence (exit status 1)."""


@dataclass
class Filters:
    """The instance filters of get-instances and purge-history."""

    runtime_status: list[RuntimeStatus] | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None

    def query(self) -> InstanceQuery:
        return InstanceQuery(
            runtime_status=set(self.runtime_status) if self.runtime_status else None,
            created_from=self.created_after,
            created_to=self.created_before,
        )

    def params(self) -> dict[str, str]:
        params = {}
        if self.runtime_status:
            params["runtimeStatus"] = ",".join(self.runtime_status)
        if self.created_after:
            params["createdTimeFrom"] = self.created_after.isoformat()
        if self.created_before:
            params["createdTimeTo"] = self.created_before.isoformat()
        return params


class Hub(Protocol):
    async def start_new(self, name: str, instance_id: str | None, input_json: str | None) -> dict:
        """The start's answer: at least `id`."""

    async def instances(
        self, filters: Filters, top: int, token: str | None
    ) -> tuple[list[dict], str | None]:
        """One page of statuses (without input) and the next page's token."""

    async def status(self, instance_id: str, show_input: bool, show_output: bool) -> dict: ...

    async def history(self, instance_id: str) -> list[dict]: ...

    async def control(self, instance_id: str, operation: str, reason: str) -> None:
        """terminate, suspend, resume or rewind."""

    async def raise_event(self, instance_id: str, name: str, data_json: str | None) -> None: ...

    async def purge(self, filters: Filters, progress: Progress | None = None) -> Purged:
        """Delete the finished instances that match; `progress` is told as the work goes, where
        the hub can say (a host purges in one request)."""

    async def delete_hub(self) -> None: ...

    async def close(self) -> None: ...


class HttpHub:
    """A running host, through its public DF HTTP API."""

    def __init__(self, url: str) -> None:
        self.origin = url.rstrip("/")
        self.base = self.origin + WEBHOOK
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))

    async def close(self) -> None:
        await self.session.close()

    async def _call(
        self,
        method: str,
        path: str,
        params: dict | None = None,
        body: str | None = None,
        headers: dict[str, str] | None = None,
        timeout: aiohttp.ClientTimeout | None = None,
    ) -> tuple[Any, dict[str, str]]:
        """The answer's JSON and headers; a refusal as a HubError with the host's sentence.
        `timeout` replaces the session's 60 s for work that takes as long as it takes.

        A purge that deleted nothing answers 404 with a count: that is an answer, not an error.
        """
        url = (path if "://" in path else self.base + path) + (
            f"?{urlencode(params)}" if params else ""
        )
        headers = dict(headers or {})
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            async with self.session.request(
                method, url, data=body, headers=headers, timeout=timeout or self.session.timeout
            ) as response:
                text = await response.text()
                answer = json.loads(text) if text.strip() else None
                if response.status >= 400 and not (response.status == 404 and method == "DELETE"):
                    message = answer.get("Message") if isinstance(answer, dict) else None
                    raise HubError(message or f"the host answered HTTP {response.status}")
                return answer, dict(response.headers)
        except TimeoutError:  # aiohttp's socket timeouts are ClientErrors too: this goes first
            seconds = (timeout or self.session.timeout).total
            raise HubError(
                f"the host at {self.origin} did not answer {method} {path} within {seconds:g} s "
                "(it may still be at work: see its log before trying again)"
            ) from None
        except aiohttp.ClientError as err:
            raise HubError(f"no host answers at {self.base} ({err})") from None
        except ValueError:
            raise HubError(f"{url} did not answer JSON: is it a Functions host?") from None

    @staticmethod
    def _id(instance_id: str) -> str:
        return "/instances/" + quote(instance_id, safe="")

    async def start_new(self, name: str, instance_id: str | None, input_json: str | None) -> dict:
        path = f"/orchestrators/{quote(name, safe='')}"
        if instance_id is not None:
            path += "/" + quote(instance_id, safe="")
        answer, _ = await self._call("POST", path, body=input_json)
        return answer

    async def instances(
        self, filters: Filters, top: int, token: str | None
    ) -> tuple[list[dict], str | None]:
        params = {**filters.params(), "top": str(top), "showInput": "false"}
        headers = {CONTINUATION_HEADER: token} if token else None
        answer, answer_headers = await self._call("GET", "/instances", params, headers=headers)
        return answer, answer_headers.get(CONTINUATION_HEADER)

    async def status(self, instance_id: str, show_input: bool, show_output: bool) -> dict:
        params = {"showInput": str(show_input).lower()}
        answer, _ = await self._call("GET", self._id(instance_id), params)
        if not show_output:
            answer.pop("output", None)
        return answer

    async def history(self, instance_id: str) -> list[dict]:
        params = {"showHistory": "true", "showHistoryOutput": "true"}
        answer, _ = await self._call("GET", self._id(instance_id), params)
        return answer.get("historyEvents") or []

    async def control(self, instance_id: str, operation: str, reason: str) -> None:
        await self._call("POST", f"{self._id(instance_id)}/{operation}", {"reason": reason})

    async def raise_event(self, instance_id: str, name: str, data_json: str | None) -> None:
        path = f"{self._id(instance_id)}/raiseEvent/{quote(name, safe='')}"
        await self._call("POST", path, body=data_json if data_json is not None else "null")

    async def purge(self, filters: Filters, progress: Progress | None = None) -> Purged:
        params = filters.params()
        params.setdefault("createdTimeFrom", EARLIEST)
        answer, _ = await self._call("DELETE", "/instances", params, timeout=LONG_WORK)
        answer = answer if isinstance(answer, dict) else {}
        return Purged(int(answer.get("instancesDeleted", 0)), answer.get("Message"))

    async def delete_hub(self, timeout: float = 30) -> None:
        """Terminate what still runs, wait until it has stopped, then have the host delete
        every instance and entity."""
        live = Filters(runtime_status=[s for s in RuntimeStatus if not s.is_terminal])
        deadline = time.monotonic() + timeout
        while ids := [s["instanceId"] for s in await self._all(live)]:
            if time.monotonic() > deadline:
                raise HubError(f"{len(ids)} instances did not stop within {timeout:g} s")
            for instance_id in ids:
                with contextlib.suppress(HubError):  # it may have finished meanwhile
                    await self._call("POST", f"{self._id(instance_id)}/terminate", {"reason": ""})
            await asyncio.sleep(0.2)  # a poll with a deadline: the host answers no "stopped"
        await self._call("DELETE", f"{self.origin}{DASHBOARD_HUB}", timeout=LONG_WORK)

    async def _all(self, filters: Filters) -> list[dict]:
        found, token = [], None
        while True:
            page, token = await self.instances(filters, PAGE, token)
            found += page
            if not token:
                return found


class StorageHub:
    """The hub in Azure Storage: reads without the lease; changes only when no host runs."""

    def __init__(self, connection: str, hub: str, index: FunctionIndex, app_dir: str) -> None:
        self.reader = AzureStore(connection, hub, read_only=True)
        self.connection, self.hub, self.index, self.app_dir = connection, hub, index, app_dir
        self._engine: Engine | None = None
        self._executor: ThreadPoolExecutor | None = None

    async def open(self) -> StorageHub:
        await self.reader.open()
        return self

    async def close(self) -> None:
        await self.reader.close()
        if self._engine is not None:
            await self._engine.stop()
            await self._engine.store.close()
        if self._executor is not None:
            self._executor.shutdown(wait=False)

    async def engine(self) -> Engine:
        """An engine for client operations only, holding the hub's lease while the CLI runs."""
        if self._engine is None:
            self._executor = ThreadPoolExecutor(max_workers=1)
            invoker = Invoker(self._executor, self.app_dir, lambda: "{}")
            owner = f"{socket.gethostname()}:{os.getpid()}:durable-cli"  # never a host's lease
            store = AzureStore(self.connection, self.hub, owner=owner)
            engine = Engine(self.index, store, Clock(), InProcessRunner(self.index, invoker))
            await engine.open_for_clients()
            self._engine = engine
        return self._engine

    async def start_new(self, name: str, instance_id: str | None, input_json: str | None) -> dict:
        engine = await self.engine()
        return {"id": await _engine_call(engine.start_new(name, instance_id, input_json))}

    async def instances(
        self, filters: Filters, top: int, token: str | None
    ) -> tuple[list[dict], str | None]:
        records, next_token = await _engine_call(self.reader.query(filters.query(), top, token))
        return [status_json(r, False) for r in records if not r.is_entity], next_token

    async def status(self, instance_id: str, show_input: bool, show_output: bool) -> dict:
        record = await self.reader.get_instance(instance_id)
        if record is None or record.is_entity:
            raise HubError(f"No instance with ID '{instance_id}' found.")
        answer = status_json(record, show_input)
        if not show_output:
            answer.pop("output", None)
        return answer

    async def history(self, instance_id: str) -> list[dict]:
        await self.status(instance_id, False, False)
        return public_history(await self.reader.get_history(instance_id), True)

    async def control(self, instance_id: str, operation: str, reason: str) -> None:
        engine = await self.engine()
        await _engine_call(getattr(engine, operation)(instance_id, reason))

    async def raise_event(self, instance_id: str, name: str, data_json: str | None) -> None:
        engine = await self.engine()
        await _engine_call(engine.raise_event(instance_id, name, data_json))

    async def purge(self, filters: Filters, progress: Progress | None = None) -> Purged:
        """The matching ids first (a page of the listing holds offsets a purge would move),
        then their purge, a page of ids at a time, told to `progress`."""
        engine = await self.engine()
        query = replace(filters.query(), orchestrations_only=True)
        found = await _engine_call(matching(engine.query, query))
        ids = found.ids
        deleted = 0
        for start in range(0, len(ids), PAGE):
            deleted += await _engine_call(engine.purge(ids[start : start + PAGE]))
            if progress is not None:
                progress(min(start + PAGE, len(ids)), len(ids))
        live = [(r.instance_id, str(r.runtime_status)) for r in found.live]
        return Purged(deleted, None if deleted else not_purged_reason(live))

    async def delete_hub(self) -> None:
        engine = await self.engine()
        await engine.store.delete_hub()


async def _engine_call(coro):
    """The engine's refusals (404, 409, 400 ...) as one-sentence HubErrors."""
    try:
        return await coro
    except (EngineError, StorageRequestError) as err:
        raise HubError(str(err)) from None
