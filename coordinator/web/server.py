"""Run the dashboard app on an address; ``start()`` returns the base URL it listens on."""

from __future__ import annotations

from aiohttp import web
from vmgrid.coordinator.web.app import build_app
from vmgrid.coordinator.web.auth import Tokens
from vmgrid.coordinator.web.backend import Backend
from vmgrid.coordinator.web.cluster_backend import ClusterBackend, DashboardSource
from vmgrid.coordinator.web.errors import ApiError


class WebServer:
    """The dashboard over HTTP; plaintext, so bind it to loopback or put TLS in front."""

    def __init__(self, backend: Backend, tokens: Tokens, listen: str = "127.0.0.1:0") -> None:
        host, _, port = listen.rpartition(":")
        if not host or not port.isdigit() or int(port) > 65535:
            raise ApiError(400, f"listen address {listen!r} must be HOST:PORT", "listen")
        self.host, self.port = host.strip("[]"), int(port)
        self.tokens = tokens
        self.app = build_app(backend, tokens)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        """Listen and return the base URL (http://host:port)."""
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server  # the bound port when 0 was asked for
        sockets = getattr(server, "sockets", None) or []
        port = sockets[0].getsockname()[1] if sockets else self.port
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{host}:{port}"
        return self.url

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v1"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def serve_cluster(
    runtime: DashboardSource, tokens: Tokens, listen: str = "127.0.0.1:0"
) -> tuple[WebServer, ClusterBackend]:
    """Start the dashboard of a running cluster manager; stop both with ``stop_cluster_web``."""
    backend = ClusterBackend(runtime)
    backend.start()
    server = WebServer(backend, tokens, listen)
    await server.start()
    return server, backend


async def stop_cluster_web(server: WebServer, backend: ClusterBackend) -> None:
    await server.stop()
    await backend.stop()
