"""networkAffinity: VMs that talk to each other should share a node; crossing nodes costs.

Each pair carries its declared or observed traffic in Mbit/s. The constraint is soft: it adds
the traffic of every split pair to the objective. With `max_crossing_mbit` it is also hard:
the traffic crossing between nodes stays under that bound.
"""

from __future__ import annotations

from dataclasses import dataclass

from vmgrid.solver.constraints.base import Constraint, register, running_hosts
from vmgrid.solver.context import PostContext
from vmgrid.solver.model import Model


@register
@dataclass(frozen=True)
class NetworkAffinity(Constraint):
    """`pairs`: (vm_a, vm_b, traffic in Mbit/s)."""

    pairs: tuple[tuple[str, str, int], ...]
    max_crossing_mbit: int | None = None
    continuous: bool = False
    kind = "networkAffinity"

    @classmethod
    def group(cls, vms: tuple[str, ...], traffic_mbit: int) -> NetworkAffinity:
        """Every pair of `vms` exchanges `traffic_mbit`."""
        pairs = tuple((a, b, traffic_mbit) for i, a in enumerate(vms) for b in vms[i + 1 :])
        return cls(pairs)

    def vms_in_scope(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(v for a, b, _ in self.pairs for v in (a, b)))

    def crossing_mbit(self, dst: Model) -> int:
        hosts = running_hosts(dst, self.vms_in_scope())
        return sum(
            t for a, b, t in self.pairs if a in hosts and b in hosts and hosts[a] != hosts[b]
        )

    def is_satisfied(self, src: Model, dst: Model) -> bool:
        return self.max_crossing_mbit is None or self.crossing_mbit(dst) <= self.max_crossing_mbit

    def repair_scope(self, src: Model) -> set[str]:
        return set() if self.is_satisfied(src, src) else set(self.vms_in_scope())

    def post(self, ctx: PostContext) -> None:
        crossing = []
        for a, b, traffic in self.pairs:
            common = sorted(set(ctx.place(a)) & set(ctx.place(b)))
            together = []
            for node in common:
                both = ctx.cp.new_bool_var(f"aff_{a}_{b}_{node}")
                ctx.cp.add(both <= ctx.lit(a, node))
                ctx.cp.add(both <= ctx.lit(b, node))
                together.append(both)
            apart = 1 - sum(together) if together else 1
            crossing.append(traffic * apart)
            ctx.add_cost(apart, traffic)
        if self.max_crossing_mbit is not None:
            ctx.cp.add(sum(crossing) <= self.max_crossing_mbit).only_enforce_if(ctx.enforce(self))
