"""free_ports hands out distinct ports, each one bindable."""

from __future__ import annotations

import contextlib
import socket

from vmgrid.bench.ports import free_ports


def test_ports_are_distinct_and_free() -> None:
    ports = free_ports(20)
    assert len(set(ports)) == 20
    for port in ports:
        with contextlib.closing(socket.socket()) as sock:
            sock.bind(("127.0.0.1", port))
