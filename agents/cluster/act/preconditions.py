"""The applier's re-check: before each action starts, on the manager's fresh state.

A plan was decided on a snapshot; by the time one of its actions may start, the cluster has
moved on. Each action is checked again: its nodes are still there and reachable, its VM is where
the plan thought (and not running anywhere else, for a start), the destination has room on
memory, CPU and NIC bandwidth with the migrations already started towards it counted, and no
placement rule that holds now would be broken by the VM arriving there (the VMs of a lost
node counted where they were last seen, unless a plan holds them). The answer is READY,
WAIT (room may be freed by an action still running) or STALE (the action is skipped, and the
reason says which check failed).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

from vmgrid.agents import model as m
from vmgrid.agents.cluster.act.executor import READY, Check, Verdict
from vmgrid.agents.cluster.rules.check import arrival_refusal, involving, refusing_rules
from vmgrid.agents.cluster.rules.store import Rule
from vmgrid.agents.cluster.state.solver_view import (
    ViewOptions,
    node_capacity,
    to_model,
    vm_demand,
)
from vmgrid.agents.cluster.state.state import ClusterState, NodeStatus, NodeView
from vmgrid.agents.errors import NotFound
from vmgrid.solver.model import VM, Model, Node, VMState
from vmgrid.solver.plan import Action, ActionKind

# A shutting-down copy is not "the running copy" of a VM nor a started one; a guest-suspended
# (PM_SUSPENDED) copy is not an active one: both narrower than the model's sets on purpose.
RUNNING = m.RUNNING_STATES - {m.VmState.SHUTTING_DOWN}
ACTIVE = RUNNING | {m.VmState.PAUSED}
Incoming = Callable[[str], list[tuple[int, int]]]
"""node id -> (CPU millicores, memory bytes) of each migration already started towards it."""
InFlight = Callable[[], list[tuple[str, str]]]
"""(VM, destination) of each migration started and not ended."""


def _net_bps(vm: m.VmUsage) -> int:
    return (vm.net_rx_bytes_per_second + vm.net_tx_bytes_per_second) * 8


def locate_vm(state: ClusterState, vm_uuid: str) -> tuple[str, m.VmUsage]:
    """(node, VM) of the VM's running copy, else its paused one, else of any definition;
    NotFound otherwise.

    After a live migration libvirt keeps the persistent definition (shut off) on the source,
    so a VM can be reported by two nodes: the node where it runs is the one that counts. During
    a live migration the destination's incoming copy is paused while the source's runs, so a
    running copy outranks a paused one (else the migration would look done before it is).
    """
    host, vm = state.find_vm(vm_uuid)
    if vm.state in RUNNING:
        return host, vm
    best = (host, vm)
    for view in state.views():
        for other in view.vms:
            if other.uuid != vm_uuid:
                continue
            if other.state in RUNNING:
                return view.node_id, other
            if other.state in ACTIVE and best[1].state not in ACTIVE:
                best = (view.node_id, other)
    return best


class Preconditions:
    """``check(action)`` for the executor, over a live ClusterState."""

    def __init__(
        self,
        state: ClusterState,
        incoming: Incoming,
        in_flight: InFlight = lambda: [],
        held: Callable[[str], bool] = lambda vm: False,
    ) -> None:
        self._state = state
        self._incoming = incoming
        self._in_flight = in_flight
        self.held = held
        """Whether a plan holds the VM now (its actions may move or restart it)."""

    def check(self, action: Action) -> Check:
        state = self._state
        for node in (action.src, action.dst):
            if node is not None and node not in state.node_ids():
                return Check(Verdict.STALE, f"node {node} is no longer in the cluster")
            if node is not None and state.node_status(node) is NodeStatus.LOST:
                return Check(Verdict.STALE, f"node {node} is lost")
        if action.kind.on_node:
            return READY
        for node in (action.src, action.dst):
            if node is not None and state.node_status(node) is NodeStatus.POWERED_OFF:
                return Check(Verdict.STALE, f"node {node} is powered off")
        if action.kind is ActionKind.MIGRATE and self._interrupted_simulation(action):
            return READY  # a simulated migration cut short by a restart: finish it
        try:
            host, vm = locate_vm(state, action.subject)
        except NotFound:
            return Check(Verdict.STALE, f"VM {action.subject} is gone")
        leaving = (ActionKind.MIGRATE, ActionKind.SUSPEND, ActionKind.SHUTDOWN_VM)
        if action.kind in leaving and host != action.src:
            return Check(Verdict.STALE, f"VM {action.subject} is on {host}, not {action.src}")
        if action.kind is ActionKind.MIGRATE:
            if vm.state not in ACTIVE:  # libvirt migrates paused domains too
                return Check(Verdict.STALE, f"VM {action.subject} is {vm.state.value}")
            assert action.dst is not None
            return self._arrival(action.dst, vm)
        if action.kind is ActionKind.BOOT_VM and action.dst is not None:
            elsewhere = self._active_elsewhere(action.subject, action.dst)
            if elsewhere:
                name = vm.name or action.subject
                return Check(Verdict.STALE, f"VM {name} already runs on {elsewhere}")
            if host == action.dst and vm.state in ACTIVE:
                return READY  # already started: the start command is a no-op
            # A VM that starts holds its memory at once; its CPU and traffic (which a lost
            # node's last report may still show) come later and are the deciders' business:
            # a restart is never held back for them.
            starting = dataclasses.replace(
                vm, cpu_used_millicores=0, net_rx_bytes_per_second=0, net_tx_bytes_per_second=0
            )
            return self._arrival(action.dst, starting)
        return READY

    def _active_elsewhere(self, vm_uuid: str, node_id: str) -> str:
        """A connected node other than `node_id` where the VM runs or is paused ('' if none):
        starting it would run it twice. A lost node's last report does not count."""
        state = self._state
        for view in state.views():
            if view.node_id == node_id or view.status is not NodeStatus.CONNECTED:
                continue
            if any(v.uuid == vm_uuid and v.state in ACTIVE for v in view.vms):
                return view.node_id
        return ""

    def _arrival(self, destination: str, vm: m.VmUsage) -> Check:
        """`vm` may run on `destination` from now on: room on every resource, every rule."""
        room = self._room(destination, vm)
        return room if room.verdict is not Verdict.READY else self._rules(destination, vm)

    def _rules(self, destination: str, vm: m.VmUsage) -> Check:
        """STALE when the VM on `destination` would break a placement rule that holds now
        (rules reported impossible excepted)."""
        judged = self._arrival_model(destination, vm.uuid)
        if judged is None:
            return READY
        rules, model = judged
        arriving = model.vms.get(vm.uuid) or VM(
            vm.uuid, vm_demand(vm, (), 1), VMState.READY, None, {"name": vm.name}
        )
        refusal = arrival_refusal(rules, model, arriving, destination)
        return Check(Verdict.STALE, refusal) if refusal else READY

    def arrival_breaks(self, destination: str, vm: VM) -> list[Rule]:
        """The rules `check` refuses `vm` starting on `destination` for: those that hold now
        and would not with it running there, judged as every arrival is (migrations under
        way counted on their destinations, a lost node's VMs where they were last seen); the
        VM as the state counts it when the state knows it. Empty when it breaks none."""
        judged = self._arrival_model(destination, vm.name)
        if judged is None:
            return []
        rules, model = judged
        return refusing_rules(rules, model, model.vms.get(vm.name) or vm, destination)

    def _arrival_model(self, destination: str, vm_uuid: str) -> tuple[list[Rule], Model] | None:
        """The kept rules an arrival of `vm_uuid` on `destination` may break, and the model
        they are judged on; None when no rule is involved."""
        state = self._state
        rules = involving(state.rules.kept(), [vm_uuid], [destination])
        if not rules:
            return None
        snapshot = state.snapshot(copy_history=False)
        model = self._with_moves_done(to_model(snapshot), vm_uuid)
        return rules, self._with_lost_vms(model, snapshot.nodes, vm_uuid)

    def _interrupted_simulation(self, action: Action) -> bool:
        """True when a simulated migration stopped between its steps (the manager was killed
        after destroying the source copy and before starting the destination one): the VM
        runs nowhere and is defined on the destination. Its steps have their own command ids,
        so running the action again repeats none of those already done."""
        state = self._state
        if action.src is None or action.dst is None:
            return False
        if not (
            state.view(action.src).identity.simulated and state.view(action.dst).identity.simulated
        ):
            return False
        copies = [
            (view.node_id, vm.state)
            for view in state.views()
            for vm in view.vms
            if vm.uuid == action.subject
        ]
        active = [node for node, vm_state in copies if vm_state in ACTIVE]
        return not active and any(node == action.dst for node, _ in copies)

    def _room(self, node_id: str, vm: m.VmUsage) -> Check:
        """WAIT unless `node_id` has room for `vm` on memory, CPU and NIC bandwidth, counting
        what its running and paused VMs hold and what migrations already started towards it
        reserve (a migrating VM holds room on both of its nodes until it has left)."""
        view = self._state.view(node_id)
        name = vm.name or vm.uuid
        here = [v for v in view.vms if v.state in ACTIVE and v.uuid != vm.uuid]
        incoming = self._incoming(node_id)
        used_mem = sum(v.memory_allocated_bytes for v in here) + sum(mem for _, mem in incoming)
        if used_mem + vm.memory_allocated_bytes > view.capacity.memory_bytes:
            free_mib = (view.capacity.memory_bytes - used_mem) // 2**20
            return Check(
                Verdict.WAIT,
                f"{node_id} has {free_mib} MiB free, VM {name} needs "
                f"{vm.memory_allocated_bytes // 2**20} MiB",
            )
        cpu_cap = view.capacity.cpu_millicores
        used_cpu = sum(v.cpu_used_millicores for v in here) + sum(cpu for cpu, _ in incoming)
        if (
            cpu_cap > 0
            and vm.cpu_used_millicores > 0
            and used_cpu + vm.cpu_used_millicores > cpu_cap
        ):
            return Check(
                Verdict.WAIT,
                f"{node_id} uses {used_cpu} of {cpu_cap} millicores, VM {name} uses "
                f"{vm.cpu_used_millicores}",
            )
        nic = view.capacity.nic_bandwidth_bps
        used_net = sum(_net_bps(v) for v in here)
        if nic > 0 and _net_bps(vm) > 0 and used_net + _net_bps(vm) > nic:
            return Check(
                Verdict.WAIT,
                f"{node_id}'s NIC carries {used_net // 1_000_000} of {nic // 1_000_000} Mbit/s, "
                f"VM {name} needs {_net_bps(vm) // 1_000_000} Mbit/s",
            )
        return READY

    def _with_lost_vms(self, model: Model, views: Iterable[NodeView], arriving: str) -> Model:
        """`model` (built from `views`) with the VMs last seen on lost nodes counted there,
        unless a plan holds them (HA restarting them) or they run elsewhere now: a lost node's
        VMs come back with it, so a rule with one of them (a gather, say) still binds the VM
        arriving elsewhere."""
        nodes: list[Node] = []
        vms: list[VM] = []
        for view in views:
            if view.status is not NodeStatus.LOST:
                continue
            lost = [
                VM(v.uuid, vm_demand(v, (), 1), VMState.RUNNING, view.node_id, {"name": v.name})
                for v in view.vms
                if v.state in m.HOLDS_MEMORY_STATES
                and v.uuid != arriving
                and v.uuid not in model.vms
                and not self.held(v.uuid)
            ]
            if lost:
                nodes.append(Node(view.node_id, node_capacity(view, ViewOptions())))
                vms.extend(lost)
        if not vms:
            return model
        return Model(
            {**model.nodes, **{n.name: n for n in nodes}}, {**model.vms, **{v.name: v for v in vms}}
        )

    def _with_moves_done(self, model: Model, arriving: str) -> Model:
        """`model` with every other VM now migrating counted on its destination: two moves of
        one plan must not break a rule together that neither breaks alone."""
        moved = [
            model.vms[vm].on(dst)
            for vm, dst in self._in_flight()
            if vm != arriving and vm in model.vms and dst in model.nodes
        ]
        return model.with_vms(moved) if moved else model
