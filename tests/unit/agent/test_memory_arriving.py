"""Which libvirt states mean a guest's memory is still arriving (#16): the agent does not
measure a guest's resident memory then (`Collector`), as its half-filled RAM says nothing of
what the guest holds. The (state, reason) pairs are the ones the lab shows (docs/migration.md):
the destination's domain is paused (starting up, then migration) during the transfer and runs
(migrated) after it; the source's pauses (migration) for the final copy, then shuts off
(migrated)."""

from __future__ import annotations

import libvirt
import pytest
from vmgrid.agents.node.guest_memory import memory_arriving

RUNNING, PAUSED, SHUTOFF = (
    libvirt.VIR_DOMAIN_RUNNING,
    libvirt.VIR_DOMAIN_PAUSED,
    libvirt.VIR_DOMAIN_SHUTOFF,
)


@pytest.mark.parametrize(
    ("state", "reason", "arriving"),
    [
        (PAUSED, libvirt.VIR_DOMAIN_PAUSED_STARTING_UP, True),
        (PAUSED, libvirt.VIR_DOMAIN_PAUSED_MIGRATION, True),
        (RUNNING, libvirt.VIR_DOMAIN_RUNNING_POSTCOPY, True),
        (RUNNING, libvirt.VIR_DOMAIN_RUNNING_MIGRATED, False),
        (RUNNING, libvirt.VIR_DOMAIN_RUNNING_BOOTED, False),
        (RUNNING, libvirt.VIR_DOMAIN_RUNNING_RESTORED, False),
        (PAUSED, libvirt.VIR_DOMAIN_PAUSED_USER, False),
        (SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_MIGRATED, False),
    ],
)
def test_only_a_domain_whose_ram_qemu_is_filling_has_its_memory_arriving(
    state: int, reason: int, arriving: bool
) -> None:
    assert memory_arriving({"state.state": state, "state.reason": reason}) is arriving


def test_stats_without_a_state_are_not_arriving() -> None:
    assert memory_arriving({}) is False
    assert memory_arriving({"state.state": PAUSED}) is False
