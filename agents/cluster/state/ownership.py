"""One node per VM uuid: the rule the manager applies when two nodes report the same VM.

A uuid names one VM; two agents reporting it (a copy left behind by a failed migration, an
agent lying, a VM restarted elsewhere while its old node was cut off) must not make the
cluster show it twice, count it twice or plan it twice. The rule:

1. The node that reported the VM first owns it while it is connected and keeps reporting it.
2. Except that a copy of a higher rank takes the VM from its owner: running (or migrating)
   over asleep in memory (paused, pm-suspended) over anything else (shut off, defined,
   crashed). During a live migration the source's running copy outranks the destination's
   paused incoming one; afterwards the destination's running copy outranks the shut-off
   definition libvirt keeps on the source (the ranking ``act.preconditions.locate_vm`` used).
3. An owner that is lost, powered off or forgotten, or that stops reporting the VM, gives it
   up; the next node reporting it becomes the owner and the old record's copy is dropped.

A copy that loses is hidden from every view (nodes, VMs, summaries, snapshots, the solver's
view). Two copies of the same rank holding memory (two running, two paused; neither
migrating) are a real conflict: reported once, when it starts, as a VM_CONFLICT event and a log line. A copy of a
lower rank is the normal trace of a migration and is hidden without a word.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

from vmgrid.agents.model import RUNNING_STATES, SLEEPING_STATES, VmState, VmUsage

log = logging.getLogger(__name__)

_RUNNING = RUNNING_STATES - {VmState.SHUTTING_DOWN}


def rank(state: VmState) -> int:
    """2 for a running copy, 1 for one asleep in memory, 0 for the rest."""
    if state in _RUNNING:
        return 2
    return 1 if state in SLEEPING_STATES or state is VmState.SHUTTING_DOWN else 0


def _conflicting(mine: VmState, theirs: VmState) -> bool:
    """Two copies holding memory at the same rank, neither of them migrating."""
    migrating = VmState.MIGRATING in (mine, theirs)
    return not migrating and rank(mine) == rank(theirs) > 0


class Holder(Protocol):
    """What the rule reads of a node's record."""

    @property
    def vms(self) -> Mapping[str, VmUsage]: ...

    @property
    def reporting(self) -> bool: ...


Evict = Callable[[str, str], VmUsage | None]
"""Drop VM ``uuid`` from node ``node_id``'s record (as if its report no longer had it)."""
Adopt = Callable[[str, VmUsage], None]
"""Show ``vm`` on node ``node_id`` (its hidden copy won) until that node's next report."""
Conflict = Callable[[str, str, VmUsage], None]
"""Report that ``node_id``'s copy of a VM is hidden because ``owner`` keeps it."""


class VmOwners:
    """uuid -> owning node, and the copies hidden on other nodes."""

    def __init__(self, evict: Evict, adopt: Adopt, conflict: Conflict) -> None:
        self._owner: dict[str, str] = {}
        self._contested: dict[str, dict[str, VmUsage]] = {}
        """uuid -> node -> that node's hidden copy (rare: only VMs reported twice)."""
        self._evict, self._adopt, self._conflict = evict, adopt, conflict

    @property
    def contested(self) -> bool:
        """Whether some uuid has a hidden copy (then every report is checked, not only the
        ones whose VMs changed)."""
        return bool(self._contested)

    def owner(self, uuid: str) -> str | None:
        return self._owner.get(uuid)

    def hidden(self, node_id: str) -> frozenset[str]:
        """Uuids that ``node_id`` reports but another node owns."""
        return frozenset(u for u, copies in self._contested.items() if node_id in copies)

    def admit(
        self, node_id: str, vms: Sequence[VmUsage], holders: Mapping[str, Holder]
    ) -> Sequence[VmUsage]:
        """The VMs of ``node_id``'s report that it owns (all of them, unless another node
        keeps one under the rule above); claims the unowned ones."""
        owners, contested = self._owner, self._contested
        kept: list[VmUsage] | None = None
        was_hidden = self.hidden(node_id) if contested else frozenset()
        for i, vm in enumerate(vms):
            uuid = vm.uuid
            owner = owners.get(uuid)
            if (owner is None or owner == node_id) and uuid not in contested:
                owners[uuid] = node_id
                if kept is not None:
                    kept.append(vm)
                continue
            if self._settle(node_id, vm, holders, uuid in was_hidden) == node_id:
                if kept is not None:
                    kept.append(vm)
            elif kept is None:
                kept = list(vms[:i])
        if was_hidden:
            reported = {vm.uuid for vm in vms}
            for uuid in was_hidden - reported:
                self._unhide(uuid, node_id)
        return vms if kept is None else kept

    def _settle(self, node_id: str, vm: VmUsage, holders: Mapping[str, Holder], known: bool) -> str:
        """Apply the rule to ``vm`` reported by ``node_id``; returns the owner it leaves."""
        uuid = vm.uuid
        copies = self._contested.setdefault(uuid, {})
        copies.pop(node_id, None)
        owner = self._owner.get(uuid)
        theirs = _live_copy(owner, uuid, holders) if owner not in (None, node_id) else None
        candidates = [(owner, theirs)] if owner is not None and theirs is not None else []
        candidates += [(n, c) for n, c in copies.items() if _reporting(n, holders)]
        candidates.append((node_id, vm))
        winner, best = max(candidates, key=lambda pair: rank(pair[1].state))
        if winner != owner and owner is not None and owner != node_id:
            evicted = self._evict(owner, uuid)
            if evicted is not None and theirs is not None:
                # kept hidden only while its node reports it: a lost owner's copy is stale,
                # and the one it reports when it comes back is checked (and told) afresh
                copies[owner] = evicted
        if winner != node_id:
            copies[node_id] = vm
            if winner != owner:
                copies.pop(winner, None)
                self._adopt(winner, best)
            elif not known and _conflicting(vm.state, best.state):
                self._conflict(node_id, winner, vm)
        self._owner[uuid] = winner
        if not copies:
            del self._contested[uuid]
        return winner

    def _unhide(self, uuid: str, node_id: str) -> None:
        copies = self._contested.get(uuid)
        if copies is not None:
            copies.pop(node_id, None)
            if not copies:
                del self._contested[uuid]

    def released(self, node_id: str, uuids: Iterable[str], holders: Mapping[str, Holder]) -> None:
        """``node_id`` no longer reports ``uuids``: the ones it owned pass to the best hidden
        copy on a reporting node, if any, else are free again."""
        owners = self._owner
        for uuid in uuids:
            if owners.get(uuid) != node_id:
                continue
            del owners[uuid]
            copies = self._contested.get(uuid)
            live = [(n, c) for n, c in (copies or {}).items() if _reporting(n, holders)]
            if live:
                winner, best = max(live, key=lambda pair: rank(pair[1].state))
                owners[uuid] = winner
                self._unhide(uuid, winner)
                self._adopt(winner, best)

    def drop_hidden(self, node_id: str) -> None:
        """Forget ``node_id``'s hidden copies (the node powered off: what it reports when it
        is back is checked, and a conflict told, afresh)."""
        for uuid in list(self._contested):
            self._unhide(uuid, node_id)

    def forget_node(self, node_id: str, holders: Mapping[str, Holder]) -> None:
        """A node about to be removed from the cluster: its hidden copies are dropped and
        its VMs pass to the best hidden copy elsewhere (else are free)."""
        self.drop_hidden(node_id)
        self.released(node_id, [u for u, n in self._owner.items() if n == node_id], holders)


def _reporting(node_id: str, holders: Mapping[str, Holder]) -> bool:
    holder = holders.get(node_id)
    return holder is not None and holder.reporting


def _live_copy(owner: str | None, uuid: str, holders: Mapping[str, Holder]) -> VmUsage | None:
    """The owner's copy, when the owner is still connected and reporting it."""
    holder = holders.get(owner) if owner is not None else None
    if holder is None or not holder.reporting:
        return None
    return holder.vms.get(uuid)


def conflict_message(node_id: str, owner: str, vm: VmUsage) -> str:
    return (
        f"VM {vm.uuid} ({vm.name or 'no name'}, {vm.state.value}) reported by {node_id} is "
        f"already on {owner}; {node_id}'s copy is hidden while {owner} keeps reporting it"
    )
