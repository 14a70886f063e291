"""Where the `durable` CLI finds the running host that holds a task hub, as `func durable` does.

A host records its address when it takes the hub:
- on Azure Storage, in the hub's lease row (`Address`, beside `Owner` and `ExpiresAt`), so a host
  on any port, or on another machine of the same account, is found through the storage the CLI
  reads anyway;
- on the memory store the hub lives inside the host's process and nothing else can hold it, so
  "holds the hub" means "runs this app folder with this hub name": `python -m devhost start
  --store memory` writes a small record file per app folder and hub in this user's temporary
  folder, and removes it when it stops (a killed host's record names a process that is gone,
  and is ignored).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path


def _records_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"devhost-{os.getuid()}" / "memory-hosts"


def memory_record(app_dir: Path, hub: str) -> Path:
    key = hashlib.sha256(f"{Path(app_dir).resolve()}\0{hub.lower()}".encode()).hexdigest()[:24]
    return _records_dir() / f"{key}.json"


def record_memory_host(app_dir: Path, hub: str, address: str) -> Path:
    """Write this process's record for the hub it runs on the memory store."""
    path = memory_record(app_dir, hub)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"address": address, "pid": os.getpid(), "hub": hub}))
    return path


def forget_memory_host(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def memory_host(app_dir: Path, hub: str) -> str | None:
    """The address of a live host running this app's hub on the memory store, if any."""
    try:
        record = json.loads(memory_record(app_dir, hub).read_text())
        pid, address = int(record["pid"]), str(record["address"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return address
