"""Small builders for job tests: a valid SSH key, a valid job dict, cluster models."""

from __future__ import annotations

import base64
import struct
from typing import Any

from vmgrid.solver import VM, Model, Node


def ssh_key(kind: str = "ssh-ed25519", comment: str = "alice@laptop") -> str:
    blob = struct.pack(">I", len(kind)) + kind.encode() + struct.pack(">I", 32) + bytes(range(32))
    return f"{kind} {base64.b64encode(blob).decode()} {comment}"


def job(**overrides: Any) -> dict[str, Any]:
    """A valid job dict; `overrides` replace or add fields (None removes one)."""
    data: dict[str, Any] = {
        "name": "mpi",
        "count": 3,
        "image": "debian-12",
        "vcpus": 1,
        "memory_mib": 1024,
        "bandwidth_mbps": 100,
        "user": "alice",
        "ssh_key": ssh_key(),
    }
    for key, value in overrides.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def cluster(
    nodes: int,
    cpu: int = 4000,
    mem: int = 4096,
    net: int = 1000,
    vms: list[tuple[str, str, int]] | None = None,
    prefix: str = "n",
) -> Model:
    """`nodes` identical nodes; `vms` are (name, host, mem MiB) running with 1000 millicores."""
    ns = [Node(f"{prefix}{i}", {"cpu": cpu, "mem": mem, "net": net}) for i in range(nodes)]
    running = [VM(n, {"cpu": 1000, "mem": m, "net": 10}, host=h) for n, h, m in vms or []]
    return Model.of(ns, running)
