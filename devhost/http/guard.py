"""Who can reach the host: one middleware in front of every route, before any handler runs.

The host listens on 127.0.0.1, yet any page open in the developer's browser can send it
requests. Three checks keep those pages out, as Vite, webpack-dev-server and Jupyter do:
1. the `Host` header must name this host (devhost/host_names.py): a DNS-rebinding page cannot read
   or change anything;
2. the host's own surfaces (the Durable Functions HTTP API, the dashboard) are same-origin only:
   a preflight is refused, and a request that changes state (any method but GET, HEAD, OPTIONS)
   is refused when its `Origin` (or, without one, its `Referer`; without both, its
   `Sec-Fetch-Site`) says another origin sent it. A request with none of these comes from no
   browser page (curl, the SDK's client, the `durable` CLI) and is served. Every browser sends
   `Origin` on a cross-origin POST, PUT, DELETE or PATCH, so no token is needed: the dashboard's
   own page is same-origin and its actions pass unchanged;
3. those surfaces may not be framed by another page (clickjacking).
CORS (`Host.CORS`) is the app's business and applies to the app's own routes only (cors.py).
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from yarl import URL

from ..host_names import (
    ALLOWED_HOSTS_SETTING,
    ALLOWED_HOSTS_VARIABLE,
    HostCheck,
    HostName,
    is_loopback,
)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SHOWN_CHARS = 100  # of a refused header, in the answer
DEFAULT_PORTS = {"http": 80, "https": 443}
NOT_FRAMED = {"X-Frame-Options": "DENY", "Content-Security-Policy": "frame-ancestors 'none'"}
Origin = tuple[str, str, int | None]


def _origin(url: str) -> Origin | None:
    """scheme, host and port of an absolute http(s) URL; None for `null` and anything else."""
    try:
        parsed = URL(url)
    except ValueError:
        return None
    if not parsed.is_absolute() or parsed.scheme not in ("http", "https") or not parsed.host:
        return None
    return parsed.scheme, parsed.host.lower(), parsed.port


def _same(sender: Origin, addressed: HostName) -> bool:
    """Whether a page's origin is the one the request was addressed to.

    The Host's name and port decide; a Host without a port was addressed to the default port of
    the page's scheme. The scheme itself may differ: devhost speaks plain HTTP, and a tunnel
    with TLS in front of it (an allowed name) forwards an https page's requests over http; and
    no page but devhost's own can be served from its host and port.
    """
    scheme, name, port = sender
    expected = addressed.port if addressed.port is not None else DEFAULT_PORTS[scheme]
    return name == addressed.name.strip("[]") and port == expected


def _shown(value: str) -> str:
    return repr(value[:SHOWN_CHARS] + ("..." if len(value) > SHOWN_CHARS else ""))


def _refused(message: str) -> web.Response:
    return web.json_response({"Message": message}, status=403)


class RequestGuard:
    """The middleware and what it needs: the Host check, the port listened on now (known only
    once the socket is bound, for port 0) and the sub-applications that are the host's own."""

    def __init__(self, check: HostCheck, port: Callable[[], int]) -> None:
        self.check = check
        self._port = port
        self._own: set[web.Application] = set()

    def own(self, app: web.Application) -> web.Application:
        """Marks a sub-application as the host's own surface: same-origin only, never framed,
        never under CORS. Returns it, to be mounted."""
        self._own.add(app)
        return app

    def is_own(self, request: web.Request) -> bool:
        """Whether the request is routed to one of the host's own surfaces (as aiohttp routed
        it, so no spelling of the path can slip past)."""
        return any(app in self._own for app in request.match_info.apps)

    @web.middleware
    async def middleware(self, request: web.Request, handler) -> web.StreamResponse:
        hosts = request.headers.getall("Host", [])
        port = self._port()
        if len(hosts) != 1 or not self.check.accepts(hosts[0], port):
            return _refused(self._wrong_host(hosts, port))
        if not self.is_own(request):
            return await handler(request)
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            return _refused(
                "Cross-origin requests to the Durable Functions HTTP API and the dashboard are "
                f"refused: {request.headers.get('Origin', 'another origin')[:SHOWN_CHARS]!r} "
                "may not call them (Host.CORS and --cors apply to the app's own functions only)."
            )
        if request.method not in SAFE_METHODS:
            sender = self._other_sender(request, hosts[0])
            if sender is not None:
                return _refused(
                    f"A {request.method} from another origin ({sender}) may not change the task "
                    "hub: the Durable Functions HTTP API and the dashboard answer their own "
                    f"origin only ({request.scheme}://{hosts[0]}). Use the dashboard, curl, the "
                    "SDK's client or the durable CLI."
                )
        response = await handler(request)
        if not response.prepared:
            for name, value in NOT_FRAMED.items():
                response.headers.setdefault(name, value)
        return response

    def _other_sender(self, request: web.Request, host: str) -> str | None:
        """Who sent the request, if a browser says it was a page of another origin."""
        addressed = HostName.parse(host)
        assert addressed is not None  # the Host check passed
        for header in ("Origin", "Referer"):
            value = request.headers.get(header)
            if value is not None:
                sender = _origin(value)
                if sender is not None and _same(sender, addressed):
                    return None
                return f"{header}: {_shown(value)}"
        fetch_site = request.headers.get("Sec-Fetch-Site", "")
        if fetch_site in ("cross-site", "same-site"):
            return f"Sec-Fetch-Site: {fetch_site}"
        return None

    def _wrong_host(self, hosts: list[str], port: int) -> str:
        if not hosts:
            said = "with no Host header"
        elif len(hosts) > 1:
            said = "with more than one Host header"
        else:
            said = f"for Host {_shown(hosts[0])}"
        return (
            f"devhost refused a request {said}: it answers {self.check.answered(port)}, so that "
            "no other web page can reach it through a name of its own (DNS rebinding). To "
            f"allow a name of yours (a dev container, a tunnel), add it to {ALLOWED_HOSTS_SETTING} "
            f"in local.settings.json, to {ALLOWED_HOSTS_VARIABLE}, or pass --allowed-hosts."
        )


def network_warning(listen_host: str) -> str | None:
    """What binding to an address other than loopback means, or None for loopback."""
    if is_loopback(listen_host):
        return None
    return (
        f"Warning: devhost listens on {listen_host}: the Durable Functions HTTP API "
        "(/runtime/webhooks/durabletask/) and the dashboard (/_devhost/) are reachable from the "
        "network, with no key, and they read, start, stop and purge every instance. Requests "
        "are answered for that address (for 0.0.0.0 or ::, any IP address of this machine), "
        "localhost, and the names allowed with --allowed-hosts."
    )
