"""Fluent builders for tiny solver instances: make_node("n1").cpu(4000).mem(8192).build()."""

from __future__ import annotations

from vmgrid.solver.model import CPU, MEMORY, NET, VM, Node, NodeState, VMState


class NodeBuilder:
    def __init__(self, name: str) -> None:
        self.name, self.capacity, self.state = name, {}, NodeState.ONLINE  # type: ignore[var-annotated]

    def cpu(self, millicores: int) -> NodeBuilder:
        self.capacity[CPU] = millicores
        return self

    def mem(self, mib: int) -> NodeBuilder:
        self.capacity[MEMORY] = mib
        return self

    def net(self, mbit: int) -> NodeBuilder:
        self.capacity[NET] = mbit
        return self

    def offline(self) -> NodeBuilder:
        self.state = NodeState.OFFLINE
        return self

    def build(self) -> Node:
        return Node(self.name, dict(self.capacity), self.state)


class VMBuilder:
    def __init__(self, name: str) -> None:
        self.name, self.demand = name, {}  # type: ignore[var-annotated]
        self.host: str | None = None
        self.state = VMState.RUNNING
        self.attrs: dict[str, int] = {}

    def cpu(self, millicores: int) -> VMBuilder:
        self.demand[CPU] = millicores
        return self

    def mem(self, mib: int) -> VMBuilder:
        self.demand[MEMORY] = mib
        return self

    def net(self, mbit: int) -> VMBuilder:
        self.demand[NET] = mbit
        return self

    def on(self, host: str) -> VMBuilder:
        self.host = host
        return self

    def ready(self) -> VMBuilder:
        self.state, self.host = VMState.READY, None
        return self

    def migrate_s(self, seconds: int) -> VMBuilder:
        self.attrs["migrate"] = seconds
        return self

    def build(self) -> VM:
        return VM(self.name, dict(self.demand), self.state, self.host, dict(self.attrs))


def make_node(name: str) -> NodeBuilder:
    return NodeBuilder(name)


def make_vm(name: str) -> VMBuilder:
    return VMBuilder(name)
