"""Health, reflection and binding of a vmgrid grpc.aio server (cluster manager, coordinator).

Both servers expose the standard health and reflection services beside their own, and bind
plaintext only when configured ``insecure``, mTLS otherwise; one place keeps that identical.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection
from vmgrid.agents.errors import ConfigError
from vmgrid.agents.tls import TlsFiles, server_credentials

HEALTH_SERVICE_NAME = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
EXCLUSIVE_PORT = ("grpc.so_reuseport", 0)
"""Server option: gRPC sets SO_REUSEPORT by default, so a second manager would bind the port a
first one holds and agents would split between them; without it, the second bind fails."""


def add_health_and_reflection(
    server: grpc.aio.Server, health: health_aio.HealthServicer, service_names: Sequence[str]
) -> None:
    """Serve ``health`` and reflection over ``service_names``, health and reflection itself."""
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection(
        (*service_names, HEALTH_SERVICE_NAME, reflection.SERVICE_NAME), server
    )


def bind(server: grpc.aio.Server, listen: str, insecure: bool, tls: TlsFiles) -> str:
    """Bind ``listen`` (plaintext when ``insecure``, mTLS with ``tls`` otherwise); return the
    bound host:port. ConfigError when the address cannot be bound."""
    host = listen.rpartition(":")[0]
    try:
        if insecure:
            port = server.add_insecure_port(listen)
        else:
            port = server.add_secure_port(listen, server_credentials(tls))
    except RuntimeError:  # grpc's "Failed to bind": the port is taken or the TLS files are bad
        port = 0
    if port == 0:
        raise ConfigError(
            f"listen: cannot bind {listen!r} (address in use, or TLS files not usable?)"
        )
    return f"{host}:{port}"


async def mark_serving(health: health_aio.HealthServicer, service_names: Sequence[str]) -> None:
    """Report SERVING for the whole server ("") and each of ``service_names``."""
    for name in ("", *service_names):
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)
