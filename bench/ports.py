"""A free loopback port, for benchmarks that start servers of their own."""

from __future__ import annotations

import contextlib
import socket


def free_port() -> int:
    """One free loopback port (for two or more at once, `free_ports`)."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports: all held open until every one is picked (two
    calls of `free_port` can return the same port, the first being free again)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(contextlib.closing(socket.socket())) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
