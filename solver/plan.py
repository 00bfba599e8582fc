"""Reconfiguration plans: timed actions with dependencies and the reason each one exists.

Times are integer seconds from the start of the plan. An action holds resources as BtrPlace does:
a migration holds the VM's old demand on `src` until `end_s` and its new demand on `dst` from
`start_s`; a VM boot or resume holds on `dst` from `start_s`; a VM shutdown or suspend releases
`src` at `end_s`. Node boots end before any inbound action starts; node shutdowns start after the
last outbound action ends.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from vmgrid.solver.model import Model


class ActionKind(enum.Enum):
    MIGRATE = "migrate"
    BOOT_VM = "boot_vm"
    SHUTDOWN_VM = "shutdown_vm"
    SUSPEND = "suspend"
    RESUME = "resume"
    BOOT_NODE = "boot_node"
    SHUTDOWN_NODE = "shutdown_node"

    @property
    def on_node(self) -> bool:
        return self in (ActionKind.BOOT_NODE, ActionKind.SHUTDOWN_NODE)


@dataclass(frozen=True, slots=True)
class Action:
    """One step of a plan.

    `subject` is a VM name, or a node name for node actions. `src`/`dst` are the nodes the action
    leaves/reaches (None where meaningless). `depends_on` holds the ids of actions that must end
    before this one starts. `reason` is a human sentence saying why the action exists.
    """

    id: int
    kind: ActionKind
    subject: str
    src: str | None
    dst: str | None
    start_s: int
    end_s: int
    reason: str
    depends_on: tuple[int, ...] = ()

    @property
    def duration_s(self) -> int:
        return self.end_s - self.start_s

    def describe(self) -> str:
        where = f"{self.src or '-'} -> {self.dst or '-'}"
        return (
            f"[{self.start_s:>5}s..{self.end_s:>5}s] {self.kind.value} {self.subject} {where}"
            f": {self.reason}"
        )


@dataclass(frozen=True)
class Plan:
    """A timed, dependency-ordered set of actions turning `src` into `dst`."""

    src: Model
    dst: Model
    actions: tuple[Action, ...]

    @property
    def makespan_s(self) -> int:
        return max((a.end_s for a in self.actions), default=0)

    @property
    def mttr_s(self) -> int:
        """Sum of the actions' end times: BtrPlace's MinMTTR objective."""
        return sum(a.end_s for a in self.actions)

    @property
    def migrations(self) -> int:
        """Number of VMs that change host: by migration (a pivoted VM counts once) or by a
        suspend on one node and a resume on another in the same plan."""
        moved = {a.subject for a in self.actions if a.kind is ActionKind.MIGRATE}
        suspended = {a.subject: a.src for a in self.actions if a.kind is ActionKind.SUSPEND}
        for a in self.actions:
            if a.kind is ActionKind.RESUME and suspended.get(a.subject, a.dst) != a.dst:
                moved.add(a.subject)
        return len(moved)

    def of_kind(self, kind: ActionKind) -> list[Action]:
        return [a for a in self.actions if a.kind is kind]

    def describe(self) -> str:
        return "\n".join(a.describe() for a in sorted(self.actions, key=lambda a: a.start_s))
