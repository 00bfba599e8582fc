"""Domain model of a cluster snapshot: nodes, VMs, their placement and their resources.

Everything here is an immutable value: the solver reads a `Model` (the source configuration) and
produces another one (the destination); the plan builder turns the pair into actions.

Units. Resources are named integers. Three names are conventional and documented here, any other
name is an opaque resource whose unit is the caller's business (BtrPlace's ``uCpu``, ``memory``..):

- ``CPU`` = ``"cpu"``: millicores (1000 = one core).
- ``MEMORY`` = ``"mem"``: MiB. Migration durations are derived from it.
- ``NET`` = ``"net"``: NIC bandwidth in Mbit/s (a node's capacity, a VM's observed traffic).

Durations are integer seconds. A VM or node may carry BtrPlace-style duration attributes
(``migrate``, ``boot``, ``shutdown``, ``suspend``, ``resume``); otherwise an action lasts 1 s, or
longer when derived from memory and bandwidth (see `vmgrid.solver.planner`).

Example::

    from vmgrid.solver.model import Model, Node, VM, VMState

    model = Model.of(
        nodes=[Node("n1", {"cpu": 4000, "mem": 8192}), Node("n2", {"cpu": 4000, "mem": 8192})],
        vms=[
            VM("web", {"cpu": 1000, "mem": 2048}, host="n1"),
            VM("db", {"cpu": 2000, "mem": 4096}, state=VMState.READY),
        ],
    )
    model.load("n1", "mem")        # 2048
    model.hosted("n1")             # ("web",)
    moved = model.with_vms([model.vms["web"].on("n2")])
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property

from vmgrid.v1.errors import VmgridError

CPU = "cpu"
MEMORY = "mem"
NET = "net"

Resources = Mapping[str, int]
Attributes = Mapping[str, str | int | float | bool]


class ModelError(VmgridError, ValueError):
    """Root of the solver's input errors: a model or constraint that cannot be right."""


class NodeState(enum.Enum):
    """Power state of a node. Only online nodes host VMs."""

    ONLINE = "online"
    OFFLINE = "offline"


class VMState(enum.Enum):
    """Life-cycle state of a VM, after BtrPlace.

    RUNNING and SLEEPING VMs have a host; a READY VM is defined but not placed. A SLEEPING
    (suspended) VM keeps its host but consumes none of its resources.
    """

    RUNNING = "running"
    READY = "ready"
    SLEEPING = "sleeping"


@dataclass(frozen=True, slots=True)
class Node:
    """A compute node: its capacity per resource and its power state.

    `capacity` maps resource name -> capacity (see the module doc for units); a resource that a
    node does not list has capacity 0 there.
    """

    name: str
    capacity: Resources
    state: NodeState = NodeState.ONLINE
    attributes: Attributes = field(default_factory=dict)

    @property
    def online(self) -> bool:
        return self.state is NodeState.ONLINE

    def cap(self, resource: str) -> int:
        return self.capacity.get(resource, 0)

    def duration_s(self, action: str) -> int:
        """BtrPlace's default duration for `action` (``boot``/``shutdown``), else 1 s."""
        return _duration(self.attributes, action)


@dataclass(frozen=True, slots=True)
class VM:
    """A virtual machine: its demand per resource, its state and its host (None when READY)."""

    name: str
    demand: Resources
    state: VMState = VMState.RUNNING
    host: str | None = None
    attributes: Attributes = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.state is VMState.READY and self.host is not None:
            raise ModelError(f"VM {self.name!r}: a ready VM has no host, got host={self.host!r}")
        if self.state is not VMState.READY and self.host is None:
            raise ModelError(f"VM {self.name!r}: a {self.state.value} VM needs a host, got None")

    @property
    def running(self) -> bool:
        return self.state is VMState.RUNNING

    def use(self, resource: str) -> int:
        """What the VM consumes of `resource` on its host (0 unless running)."""
        return self.demand.get(resource, 0) if self.state is VMState.RUNNING else 0

    def need(self, resource: str) -> int:
        """What the VM would consume of `resource` if running."""
        return self.demand.get(resource, 0)

    def on(self, host: str, state: VMState = VMState.RUNNING) -> VM:
        return replace(self, host=host, state=state)

    def with_demand(self, demand: Resources) -> VM:
        return replace(self, demand=demand)

    def duration_s(self, action: str) -> int:
        """BtrPlace's default duration for `action` (``migrate``, ``boot``...), else 1 s."""
        return _duration(self.attributes, action)


def _duration(attributes: Attributes, action: str) -> int:
    value = attributes.get(action)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return 1
    try:
        return max(1, int(float(value)))
    except ValueError:
        return 1


@dataclass(frozen=True)
class Model:
    """A configuration: nodes and VMs by name. The mapping is each VM's (state, host).

    Treat the dicts as read-only; derive new models with `with_vms` / `with_nodes`.
    """

    nodes: Mapping[str, Node]
    vms: Mapping[str, VM]

    @classmethod
    def of(cls, nodes: Iterable[Node], vms: Iterable[VM]) -> Model:
        """Build a model and check that every host exists and is online."""
        node_map = {n.name: n for n in nodes}
        vm_map = {v.name: v for v in vms}
        model = cls(node_map, vm_map)
        model.check()
        return model

    def check(self) -> None:
        for vm in self.vms.values():
            if vm.host is None:
                continue
            node = self.nodes.get(vm.host)
            if node is None:
                raise ModelError(f"VM {vm.name!r}: host {vm.host!r} is not a known node")
            if not node.online:
                raise ModelError(f"VM {vm.name!r}: host {vm.host!r} is offline; must be online")

    @cached_property
    def resources(self) -> tuple[str, ...]:
        """Every resource name that some node or VM mentions, sorted."""
        names: set[str] = set()
        for n in self.nodes.values():
            names.update(n.capacity)
        for v in self.vms.values():
            names.update(v.demand)
        return tuple(sorted(names))

    @cached_property
    def _hosted(self) -> dict[str, tuple[str, ...]]:
        out: dict[str, list[str]] = {n: [] for n in self.nodes}
        for vm in self.vms.values():
            if vm.host is not None:
                out[vm.host].append(vm.name)
        return {n: tuple(v) for n, v in out.items()}

    @cached_property
    def _loads(self) -> dict[str, dict[str, int]]:
        loads: dict[str, dict[str, int]] = {n: {} for n in self.nodes}
        for vm in self.vms.values():
            if vm.host is None or vm.state is not VMState.RUNNING:
                continue
            acc = loads[vm.host]
            for r, q in vm.demand.items():
                acc[r] = acc.get(r, 0) + q
        return loads

    def hosted(self, node: str) -> tuple[str, ...]:
        """Names of the VMs (running or sleeping) whose host is `node`."""
        return self._hosted.get(node, ())

    def running_on(self, node: str) -> tuple[str, ...]:
        return tuple(v for v in self.hosted(node) if self.vms[v].running)

    def load(self, node: str, resource: str) -> int:
        """Sum of the running VMs' demand of `resource` on `node`."""
        return self._loads.get(node, {}).get(resource, 0)

    def slack(self, node: str, resource: str) -> int:
        return self.nodes[node].cap(resource) - self.load(node, resource)

    def overloaded(self, node: str) -> list[str]:
        """Resources on which `node` exceeds its capacity (empty when it fits)."""
        n = self.nodes[node]
        return [r for r, q in self._loads.get(node, {}).items() if q > n.cap(r)]

    def online_nodes(self) -> list[str]:
        return [n.name for n in self.nodes.values() if n.online]

    def used_nodes(self) -> list[str]:
        """Online nodes that host at least one running VM."""
        return [n for n, vms in self._hosted.items() if any(self.vms[v].running for v in vms)]

    def with_vms(self, changed: Iterable[VM]) -> Model:
        vms = dict(self.vms)
        for vm in changed:
            vms[vm.name] = vm
        return Model(self.nodes, vms)

    def with_nodes(self, changed: Iterable[Node]) -> Model:
        nodes = dict(self.nodes)
        for node in changed:
            nodes[node.name] = node
        return Model(nodes, self.vms)
