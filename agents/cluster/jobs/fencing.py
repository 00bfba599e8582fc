"""Fencing: whether a silent node is really down (see ha.py), and how failures are handled.

A node is fenced when a configured fence command exits 0 or, without one, when its libvirt
URI does not answer ``libvirt.open`` within the fence timeout.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field

from vmgrid.agents.cluster.state.state import NodeView


@dataclass(frozen=True)
class HaConfig:
    """How failures are confirmed and handled."""

    fence_command: tuple[str, ...] = ()
    """argv run to fence a node ({node} and {uri} are substituted); exit 0 means fenced.
    Empty: a node is fenced when its libvirt URI does not answer."""
    fence_timeout_s: float = 5.0
    libvirt_uris: Mapping[str, str] = field(default_factory=dict)
    """node id -> libvirt URI to probe; default: the node's peer_uri (or migration_uri)."""
    period_s: float = 1.0
    """How often lost nodes are examined."""
    command_timeout_s: float = 120.0


@dataclass(frozen=True, slots=True)
class FenceResult:
    fenced: bool
    how: str


def libvirt_answers(uri: str) -> bool:
    """True when libvirt at `uri` accepts a connection (blocking; run in a thread)."""
    import libvirt

    libvirt.registerErrorHandler(lambda *_: None, None)
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError:
        return False
    try:
        conn.getVersion()
        return True
    except libvirt.libvirtError:
        return False
    finally:
        conn.close()


async def fence(view: NodeView, config: HaConfig) -> FenceResult:
    """Confirm a silent node is really down (see the module docstring)."""
    node = view.node_id
    uri = config.libvirt_uris.get(node) or view.identity.peer_uri or view.identity.migration_uri
    if config.fence_command:
        argv = [a.replace("{node}", node).replace("{uri}", uri) for a in config.fence_command]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            code = await asyncio.wait_for(proc.wait(), config.fence_timeout_s)
        except (OSError, TimeoutError) as exc:
            return FenceResult(False, f"fence command {argv[0]} failed: {exc}")
        return FenceResult(code == 0, f"fence command {argv[0]} exited {code}")
    if not uri or uri.startswith("test:"):
        return FenceResult(False, "no libvirt URI to probe and no fence command configured")
    try:
        answers = await asyncio.wait_for(
            asyncio.to_thread(libvirt_answers, uri), config.fence_timeout_s
        )
    except TimeoutError:
        answers = False
    return FenceResult(not answers, f"libvirt {uri} {'answers' if answers else 'unreachable'}")
