"""What the demo prints for a person: node changes, one line per plan, each action's start and end,
and a status table of every cluster every few seconds.

Events and actions carry VM uuids; a reader wants names. ``Names`` resolves them from the
managers' state and remembers every name it has seen, so a VM that has just left a node (a
migration, a failure) still prints by name. Progress percentages are not printed: the dashboard
shows them; the console keeps one line per start and one per end.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping

from vmgrid.agents.cluster.act.executor import ExecutionEvent
from vmgrid.agents.cluster.act.journal import ActionState
from vmgrid.agents.cluster.service.runtime import ClusterRuntime
from vmgrid.agents.cluster.state.events import ClusterEvent, EventKind
from vmgrid.agents.cluster.state.solver_view import memory_fraction
from vmgrid.agents.cluster.state.state import NodeStatus
from vmgrid.solver.plan import Action

Say = Callable[[str], None]
UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
NODE_KINDS = {EventKind.NODE_JOINED, EventKind.NODE_LOST, EventKind.NODE_RETURNED}
PER_ACTION = re.compile(r"^plan-[0-9a-f]+: ")
PLAN_OPENS = re.compile(r"^plan-[0-9a-f]+ (?:starts|waits for approval): (.*)$")
HOLD_S = 0.5
"""A decision's bare summary waits this long: when a plan opens with it, only that line shows."""


class Names:
    """uuid -> VM name over every cluster of the demo, remembering VMs that went away."""

    def __init__(self, runtimes: Mapping[str, ClusterRuntime]) -> None:
        self.runtimes = runtimes
        self._known: dict[str, str] = {}

    def refresh(self) -> None:
        for runtime in self.runtimes.values():
            for view in runtime.manager.state.views():
                self._known.update((vm.uuid, vm.name) for vm in view.vms if vm.name)

    def of(self, vm_uuid: str) -> str:
        if vm_uuid not in self._known:
            self.refresh()
        return self._known.get(vm_uuid, vm_uuid)

    def in_text(self, text: str) -> str:
        """`text` with every VM uuid replaced by the VM's name (unknown uuids stay)."""
        return UUID.sub(lambda match: self.of(match.group(0)), text)


def stamp() -> str:
    return time.strftime("%H:%M:%S")


class Console:
    """Prints the clusters' events and actions; ``start()`` in the loop, ``stop()`` at the end."""

    def __init__(self, runtimes: Mapping[str, ClusterRuntime], say: Say) -> None:
        self.runtimes = runtimes
        self.say = say
        self.names = Names(runtimes)
        self._tasks: list[asyncio.Task[None]] = []
        self._started: set[tuple[str, int]] = set()
        self._held: dict[str, asyncio.TimerHandle] = {}

    def start(self) -> None:
        self.names.refresh()
        for cluster_id, runtime in self.runtimes.items():
            runtime.executor.add_listener(self._action_printer(cluster_id))
            self._tasks.append(asyncio.create_task(self._events(cluster_id, runtime)))

    def stop(self) -> None:
        for handle in self._held.values():
            handle.cancel()
        self._held.clear()
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()

    async def _events(self, cluster_id: str, runtime: ClusterRuntime) -> None:
        sub = runtime.manager.bus.subscribe(_worth_a_line)
        try:
            while True:
                event = await sub.get()
                line = f"{stamp()} {cluster_id} [{event.kind.value}] {event.node_id or 'plan'}: "
                message = self.names.in_text(event.message)
                if event.kind is not EventKind.PLAN_CHANGED:
                    self.say(line + message)
                else:
                    self._plan_line(cluster_id, line, message)
        finally:
            sub.close()

    def _plan_line(self, cluster_id: str, line: str, message: str) -> None:
        """One line per plan: per-action lines are left to the start/end lines of actions, and
        a decision's summary is said once, by the plan it opens when there is one."""
        if PER_ACTION.match(message):
            return
        opens = PLAN_OPENS.match(message)
        if opens:
            held = self._held.pop(f"{cluster_id} {opens.group(1)}", None)
            if held is not None:
                held.cancel()
            self.say(line + message)
        elif message.startswith("plan-"):
            self.say(line + message)
        else:
            key = f"{cluster_id} {message}"
            say = self.say
            self._held[key] = asyncio.get_running_loop().call_later(
                HOLD_S, lambda: (self._held.pop(key, None), say(line + message))
            )

    def _action_printer(self, cluster_id: str) -> Callable[[ExecutionEvent], None]:
        def on_action(event: ExecutionEvent) -> None:
            key = (event.plan_id, event.action.id)
            if event.state is ActionState.RUNNING:
                if key in self._started:
                    return  # a progress update: the dashboard shows it
                self._started.add(key)
                verb = "start"
            elif event.state.final:
                self._started.discard(key)
                verb = event.state.value
            else:
                return
            what = self.describe(event.action, event.simulated)
            detail = f" ({event.message})" if event.message and event.state.final else ""
            self.say(f"{stamp()} {cluster_id} {event.plan_id} {verb}: {what}{detail}")

        return on_action

    def describe(self, action: Action, simulated: bool = False) -> str:
        subject = action.subject if action.kind.on_node else self.names.of(action.subject)
        where = f"{action.src or '-'} -> {action.dst or '-'}" if action.dst else action.src
        tag = " [simulated]" if simulated else ""
        return f"{action.kind.value} {subject} {where}{tag}".rstrip()


def _worth_a_line(event: ClusterEvent) -> bool:
    """Node changes, and plan summaries of the decision loop (operator plans' progress events
    carry a plan id and are covered by the action lines)."""
    if event.kind in NODE_KINDS:
        return True
    return event.kind is EventKind.PLAN_CHANGED and not event.plan_id


def status_table(cluster_id: str, runtime: ClusterRuntime) -> str:
    """One row per node: state, CPU and memory load, its running VMs by name."""
    rows = [f"{'cluster ' + cluster_id:<14} {'state':<9} {'cpu':>5} {'mem':>5}  VMs"]
    for view in sorted(runtime.manager.state.views(), key=lambda v: v.node_id):
        cpu = 0.0
        if view.usage is not None:
            cpu = view.usage.cpu_used_millicores / max(1, view.capacity.cpu_millicores)
        running = [vm.name for vm in view.vms if vm.state.value == "running"]
        state = view.status.value if view.status is not NodeStatus.CONNECTED else "up"
        rows.append(
            f"  {view.node_id:<12} {state:<9} {cpu:>5.0%} {memory_fraction(view):>5.0%}  "
            f"{len(running)}: {' '.join(sorted(running))}"
        )
    return "\n".join(rows)
