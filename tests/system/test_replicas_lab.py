"""Replicated cluster managers on the KVM lab: the leader SIGKILLed while a real live migration
runs (`vmgrid-bench manager-failover --driver kvm`'s rounds, on the session's lab)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from vmgrid.bench.manager_failover_lab import failover_rounds
from vmgrid.lab import Lab

pytestmark = [pytest.mark.system, pytest.mark.slow, pytest.mark.timeout(300)]


def test_leader_killed_mid_live_migration_twice_every_guest_runs_once(
    lab: Lab, tmp_path: Path
) -> None:
    args = argparse.Namespace(replicas=3, kills=2, etcd_members=3, lease_ttl_s=2)
    result = failover_rounds(lab, lab.hosts(), tmp_path, args)
    assert result["failovers"] == 2
    assert result["plan_resumed"] == 2, result  # each interrupted migration finished
    assert (result["lost_vms"], result["duplicated_vms"]) == (0, 0), result
    assert result["guests"] == 6
