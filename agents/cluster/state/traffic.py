"""The cluster's measured traffic matrix, and the soft network-affinity terms it yields (#16).

Each node reports directed flows between MACs on its bridges, with its own VMs' MACs (and the
IPv4 address learned from them). The manager resolves both ends of every flow against all its
nodes' endpoints (by MAC, else by IP, for a peer behind a router), so a flow between VMs on
two nodes is known by uuid. Both nodes see such a flow: the largest of their figures is kept,
never their sum. Heavy pairs (both directions added) become soft ``networkAffinity`` terms,
handed to every decider with the cluster's rules (``ClusterSnapshot.rules``) under the origin
``traffic``: they add the pair's traffic to the objective when the pair is split, and forbid
nothing, so operators' rules (hard) always win. NIC bandwidth stays within capacity through
the ``net`` resource every VM already demands (its measured rx + tx).

A flow whose other end is none of the cluster's VMs is kept as an external flow (local VM,
peer MAC and IP, both directions added) and reported in the cluster summary with the local
VMs' addresses, so that the coordinator, which sees every cluster, resolves cross-cluster pairs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from vmgrid.agents import grid_model as m
from vmgrid.agents.cluster.rules.store import Rule
from vmgrid.agents.traffic import TrafficEndpoint, TrafficMatrix
from vmgrid.solver.constraints.network import NetworkAffinity

CACHE_S = 5.0
"""Longest reuse of the derived rules while no matrix changes (stale matrices age out)."""

TRAFFIC_ORIGIN = "traffic"
"""Origin of the soft terms derived from measured traffic (rule ids ``traffic:<a>:<b>``)."""


@dataclass(frozen=True, slots=True)
class TrafficSettings:
    heavy_mbit: int = 1
    """A pair exchanging at least this many Mbit/s (both directions) becomes a soft term."""
    max_terms: int = 500
    """Only the heaviest pairs, this many at most, become terms (bounds the solver's model)."""
    stale_windows: float = 3.0
    """A node's matrix older than this many of its windows (at least 60 s) is ignored."""


@dataclass(frozen=True, slots=True, order=True)
class VmPair:
    """Traffic between two VMs (``vm_a < vm_b``), both directions added, in bytes/s."""

    bytes_per_second: int
    vm_a: str
    vm_b: str

    @property
    def mbit(self) -> int:
        return self.bytes_per_second * 8 // 1_000_000


@dataclass(frozen=True, slots=True)
class ResolvedTraffic:
    """The cluster's matrices resolved: what the summary to the coordinator carries."""

    pairs: list[VmPair]
    """Pairs of the cluster's VMs, heaviest first."""
    external: list[m.ExternalFlow]
    """Flows whose peer is none of the cluster's VMs, heaviest first."""
    addresses: list[m.VmAddress]
    """The NICs of the VMs that have external flows."""


class ClusterTraffic:
    """The latest matrix of every node, resolved into VM pairs on demand."""

    def __init__(
        self,
        settings: TrafficSettings | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings or TrafficSettings()
        self._monotonic = monotonic
        self._matrices: dict[str, tuple[float, TrafficMatrix]] = {}
        self._version = 0
        self._cached: tuple[int, float, tuple[Rule, ...]] | None = None

    def apply(self, node_id: str, matrix: TrafficMatrix) -> None:
        """A node's report; an unavailable matrix replaces the last one (no stale figures)."""
        last = self._matrices.get(node_id)
        if last is None or last[1] != matrix:
            self._version += 1
        self._matrices[node_id] = (self._monotonic(), matrix)

    def forget(self, node_id: str) -> None:
        if self._matrices.pop(node_id, None) is not None:
            self._version += 1

    def unavailable(self) -> dict[str, str]:
        """Node id -> why it measures nothing (the test driver, no nftables...)."""
        return {n: m.unavailable_reason for n, (_, m) in self._matrices.items() if not m.available}

    def _fresh(self) -> list[TrafficMatrix]:
        now = self._monotonic()
        out = []
        for at, matrix in self._matrices.values():
            limit = max(60.0, self.settings.stale_windows * matrix.window_ms / 1000)
            if matrix.available and now - at <= limit:
                out.append(matrix)
        return out

    def pairs(self) -> list[VmPair]:
        """Resolved VM pairs, heaviest first."""
        return self.resolve().pairs

    def external(self) -> tuple[list[m.ExternalFlow], list[m.VmAddress]]:
        """Flows between one of the cluster's VMs and an address that is none of them (both
        directions added), heaviest first, and the NICs of the VMs that have such flows: what
        the coordinator resolves into cross-cluster pairs."""
        resolved = self.resolve()
        return resolved.external, resolved.addresses

    def resolve(self) -> ResolvedTraffic:
        """Pairs, external flows and their VMs' addresses, from one pass over the matrices."""
        pairs, flows, ends = self._resolve()
        talking = {f.vm_uuid for f in flows}
        addresses = sorted({m.VmAddress(e.vm_uuid, e.mac, e.ip) for e in ends if e.vm_uuid in talking},
                           key=lambda a: (a.vm_uuid, a.mac))  # fmt: skip
        return ResolvedTraffic(pairs, flows, addresses)

    def _resolve(self) -> tuple[list[VmPair], list[m.ExternalFlow], list[TrafficEndpoint]]:
        matrices = self._fresh()
        ends = [end for matrix in matrices for end in matrix.endpoints]
        by_mac = {end.mac: end.vm_uuid for end in ends}
        by_ip = {end.ip: end.vm_uuid for end in ends if end.ip}
        directed: dict[tuple[str, str], int] = {}
        outside: dict[tuple[str, str, str, bool], int] = {}  # (vm, peer MAC, peer IP, sent)
        for matrix in matrices:
            for flow in matrix.flows:
                src = by_mac.get(flow.src_mac) or by_ip.get(flow.src_ip)
                dst = by_mac.get(flow.dst_mac) or by_ip.get(flow.dst_ip)
                rate = flow.bytes_per_second
                if src is not None and dst is not None:
                    if src != dst:
                        _keep_max(directed, (src, dst), rate)
                elif src is not None:
                    _keep_max(outside, (src, flow.dst_mac, flow.dst_ip, True), rate)
                elif dst is not None:
                    _keep_max(outside, (dst, flow.src_mac, flow.src_ip, False), rate)
        both: dict[tuple[str, str], int] = {}
        for (src, dst), rate in directed.items():
            pair = (src, dst) if src < dst else (dst, src)
            both[pair] = both.get(pair, 0) + rate
        peers: dict[tuple[str, str, str], int] = {}
        for (vm, mac, ip, _), rate in outside.items():
            peers[(vm, mac, ip)] = peers.get((vm, mac, ip), 0) + rate
        pairs = sorted((VmPair(rate, a, b) for (a, b), rate in both.items()), reverse=True)
        flows = sorted(
            (m.ExternalFlow(vm, mac, ip, rate) for (vm, mac, ip), rate in peers.items()),
            key=lambda f: (-f.bytes_per_second, f.vm_uuid, f.peer_mac, f.peer_ip),
        )
        return pairs, flows, ends

    def soft_rules(self) -> tuple[Rule, ...]:
        """The heavy pairs as soft networkAffinity rules (no crossing bound: never hard).
        Recomputed when a matrix changed, or after `CACHE_S` (matrices age out)."""
        now = self._monotonic()
        cached = self._cached
        if cached is not None and cached[0] == self._version and now - cached[1] < CACHE_S:
            return cached[2]
        heavy = [p for p in self.pairs() if p.mbit >= self.settings.heavy_mbit]
        rules = soft_rules(heavy[: self.settings.max_terms])
        self._cached = (self._version, now, rules)
        return rules


K = TypeVar("K")


def _keep_max(table: dict[K, int], key: K, rate: int) -> None:
    """Several nodes may see one flow: the largest of their figures is kept, never the sum."""
    table[key] = max(table.get(key, 0), rate)


def soft_rules(pairs: Iterable[VmPair], created_unix_s: float = 0.0) -> tuple[Rule, ...]:
    return tuple(
        Rule(
            f"{TRAFFIC_ORIGIN}:{p.vm_a}:{p.vm_b}",
            TRAFFIC_ORIGIN,
            NetworkAffinity(((p.vm_a, p.vm_b, max(1, p.mbit)),)),
            created_unix_s,
        )
        for p in pairs
    )
