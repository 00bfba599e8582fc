"""Serve one component's Prometheus registry on its own ``/metrics`` HTTP endpoint.

Every vmgrid program (agent, cluster manager, coordinator) takes ``--metrics-listen HOST:PORT``;
an empty value (the default) serves nothing, port 0 picks a free port, which is logged so a
scrape config can be written for it. The server runs in a daemon thread of prometheus_client and
only reads the registry, whose collectors look at the component's state at scrape time.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from vmgrid.agents.errors import ConfigError

if TYPE_CHECKING:  # the agent imports this module; prometheus_client only loads when used
    from wsgiref.simple_server import WSGIServer

    from prometheus_client import CollectorRegistry

log = logging.getLogger(__name__)


def parse_metrics_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` -> (host, port); ConfigError names the value and what is accepted."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(
            f"metrics_listen: {value!r} is not HOST:PORT with a port 0-65535 "
            "(e.g. 127.0.0.1:9711; port 0 picks a free port; empty serves no metrics)"
        )
    return host.strip("[]"), int(port)


class MetricsEndpoint:
    """A running ``/metrics`` server for one registry; ``stop()`` closes it."""

    def __init__(self, registry: CollectorRegistry, listen: str, component: str) -> None:
        from prometheus_client import start_http_server

        host, port = parse_metrics_listen(listen)
        try:
            server, thread = start_http_server(port, addr=host, registry=registry)
        except OSError as exc:
            raise ConfigError(
                f"metrics_listen: cannot bind {listen!r} ({exc.strerror}); "
                "give a free HOST:PORT, or port 0"
            ) from None
        self._server: WSGIServer = server
        self._thread = thread
        self.host = host
        self.port = int(server.server_address[1])
        log.info("%s metrics on %s", component, self.url)

    @property
    def address(self) -> str:
        """``host:port`` as a Prometheus static target."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}/metrics"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
