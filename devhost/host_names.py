"""Which `Host` header values the host answers: a defence against DNS rebinding.

A page on evil.example whose name is made to resolve to 127.0.0.1 reaches the host from the
developer's own browser, as "same-origin" to that page; only the `Host` header it sends
(`evil.example:7071`) tells the request apart. So the host answers only names that cannot be
rebound: `localhost`, loopback addresses (any form: `127.0.0.1`, `[::1]`,
`[0:0:0:0:0:0:0:1]`), the address it listens on, with the port it listens on; when it listens
on every interface (`0.0.0.0`, `::`), any IP address with that port too (an address typed in a
URL resolves to itself, so it cannot be rebound, and these are the machine's addresses as others
reach it). Any other name is one the user allowed (`Host.AllowedHosts`, `--allowed-hosts`,
DEVHOST_ALLOWED_HOSTS): a dev container's or a tunnel's name. Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

ALLOWED_HOSTS_SETTING = "Host.AllowedHosts"
ALLOWED_HOSTS_VARIABLE = "DEVHOST_ALLOWED_HOSTS"
MAX_NAME = 253  # the longest DNS name
# A name (letters, digits, dots, hyphens, underscores) or an IPv6 address in brackets,
# then maybe a port.
HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::([0-9]{1,5}))?")
LOOPBACK_NAMES = frozenset({"localhost"})
WILDCARDS = frozenset({"0.0.0.0", "[::]"})


@dataclass(frozen=True)
class HostName:
    """A `Host` header's name (lower case; an IPv6 address in brackets) and port, if any."""

    name: str
    port: int | None

    @classmethod
    def parse(cls, value: str) -> HostName | None:
        """None for anything that is not `name[:port]`: userinfo, paths, spaces, zone ids."""
        found = HOST.fullmatch(value)
        if not found or len(found[1]) > MAX_NAME:
            return None
        name, port = found[1].lower(), found[2]
        if name.startswith("[") and _ip(name) is None:
            return None
        if port is not None and int(port) > 65535:
            return None
        return cls(name, int(port) if port is not None else None)

    def __str__(self) -> str:
        return self.name if self.port is None else f"{self.name}:{self.port}"


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name.removeprefix("[").removesuffix("]"))
    except ValueError:
        return None


def is_loopback(name: str) -> bool:
    """`localhost` or a loopback address, an IPv4-mapped IPv6 one included."""
    if name.lower() in LOOPBACK_NAMES:
        return True
    address = _ip(name)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address is not None and address.is_loopback


def bracketed(host: str) -> str:
    """A listen address as it appears in a Host header (IPv6 in brackets), in lower case."""
    host = host.lower()
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


@dataclass(frozen=True)
class AllowedHosts:
    """The names a user allowed: `name` (any port), `name:port`, `.domain` or `*.domain` (the
    domain and every name under it), or `*` (any Host at all: no protection from DNS rebinding)."""

    entries: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: str | list[str] | None) -> AllowedHosts:
        """From a comma-separated string or a list; ValueError naming a malformed entry."""
        if not value:
            return cls()
        items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
        entries = []
        for item in (i.strip().lower() for i in items):
            if not item:
                continue
            if item.startswith("*."):  # as other tools spell a domain and the names under it
                item = item[1:]
            if item != "*" and HostName.parse(item.removeprefix(".")) is None:
                raise ValueError(f"{item[:100]!r} is not a host name, name:port, .domain or *")
            entries.append(item)
        return cls(tuple(entries))

    def allows(self, host: HostName) -> bool:
        for entry in self.entries:
            if entry == "*" or entry in (host.name, str(host)):
                return True
            if entry.startswith(".") and (host.name == entry[1:] or host.name.endswith(entry)):
                return True
        return False


@dataclass(frozen=True)
class HostCheck:
    """Whether a Host header names this host: see the module's docstring."""

    listen_host: str
    allowed: AllowedHosts = AllowedHosts()

    def accepts(self, header: str, port: int) -> bool:
        """`header`: the request's Host; `port`: the port the host listens on now."""
        host = HostName.parse(header)
        if host is None:
            return False
        if self.allowed.allows(host):
            return True
        if host.port != port and not (host.port is None and port == 80):
            return False
        listen = bracketed(self.listen_host)
        if host.name == listen or is_loopback(host.name):
            return True
        return listen in WILDCARDS and _ip(host.name) is not None

    def answered(self, port: int) -> str:
        """The Host values accepted, for a person to read."""
        names = ["localhost", "127.0.0.1", "[::1]"]
        listen = bracketed(self.listen_host)
        if listen in WILDCARDS:
            names.append("this machine's IP addresses")
        elif listen not in names:
            names.append(listen)
        listed = ", ".join(names[:-1]) + " or " + names[-1]
        allowed = f", and {', '.join(self.allowed.entries)}" if self.allowed.entries else ""
        return f"{listed} on port {port}{allowed}"
