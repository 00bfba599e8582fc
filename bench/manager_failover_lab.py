"""`vmgrid-bench manager-failover --driver kvm`: the leader SIGKILLed in the middle of a real
live migration on the KVM lab.

`--hosts` lab hosts (session libvirt daemons, see docs/lab.md) with two tiny idle guests each,
one `vmgrid-agent` per host given every replica's address (and a state directory, where it
keeps the highest manager term it has seen), `--replicas` `vmgrid-cluster` processes on a
private etcd cluster. Each round asks the leader to live-migrate one guest to the next host,
watches the source host's libvirt until the migration job is running there, SIGKILLs the
leader at that moment and starts it again as its supervisor would (it comes back a standby).
The agent carries the migration on (libvirt peer to peer); the new leader reads the plan back
from etcd and finishes it from what the agents report.

Figures as for the test driver (`manager_failover.py`), plus ``killed_mid_migration``: rounds
whose kill fell while the source host's libvirt showed the migration job running (a tiny idle
guest's memory is mostly zero pages, so its migration is short). Placement at the end is read
from every host's libvirt, not from the manager: ``lost_vms`` guests running nowhere,
``duplicated_vms`` guests running on two hosts.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import statistics
import time
from pathlib import Path
from typing import Any

import grpc
import libvirt
from vmgrid.bench.lab_cluster import LabCluster, bench_dir, require_hypervisor
from vmgrid.bench.manager_failover import kill_leader, say, serving_leader
from vmgrid.lab import Lab, LabHost
from vmgrid.lab.etcd import EtcdCluster
from vmgrid.lab.replicas import (
    ManagerProcess,
    migrate,
    running_placement,
    start_manager,
    stop,
    wait_until,
)

GUESTS_PER_HOST = 2


def _migration_running(host: LabHost, name: str, timeout_s: float) -> bool:
    """Poll `host`'s libvirt until `name`'s migration job runs there (True), or until the
    guest has left or `timeout_s` passed (False)."""
    deadline = time.monotonic() + timeout_s
    with contextlib.closing(host.connect()) as conn:
        dom = conn.lookupByName(name)
        while time.monotonic() < deadline:
            try:
                if not dom.isActive():
                    return False
                if dom.jobInfo()[0] != libvirt.VIR_DOMAIN_JOB_NONE:
                    return True
            except libvirt.libvirtError:
                return False
            time.sleep(0.002)
    return False


def _guest_on(cluster: LabCluster, host: LabHost, names: list[str]) -> str:
    running = cluster.running()
    for name in names:
        if (
            running.get((name, host.name)) == 1
            and sum(c for (n, _), c in running.items() if n == name) == 1
        ):
            return name
    raise RuntimeError(f"no guest of this run runs on {host.name} alone: {dict(running)}")


def run_lab(args: argparse.Namespace) -> dict[str, Any]:
    require_hypervisor("--driver kvm: ")
    base = bench_dir(args.dir, "vmgrid-failover-lab-")
    lab = Lab(base / "lab")
    try:
        say(f"starting a {args.hosts}-host lab in {base}")
        return failover_rounds(lab, lab.start(args.hosts), base, args)
    finally:
        lab.stop()


def failover_rounds(
    lab: Lab, hosts: list[LabHost], base: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """The rounds on a started lab's `hosts` (guests, etcd and processes made and removed
    here, under `base`); the benchmark's JSON object."""
    workdir = base / "procs"
    workdir.mkdir(parents=True, exist_ok=True)
    etcd = EtcdCluster(base / "etcd", args.etcd_members).start()
    managers: list[ManagerProcess] = []
    cluster = LabCluster(lab, hosts, workdir)
    names: list[str] = []
    try:
        for host in hosts:
            for i in range(GUESTS_PER_HOST):
                names.append(f"fo-{host.name}-{i}")
                cluster.start_guest(host, names[-1], "idle")
        uuids = _uuids(hosts, names)
        extra = ("--resume-grace-s", "10")
        for i in range(args.replicas):
            managers.append(
                start_manager(workdir, f"r{i}", etcd.endpoints, args.lease_ttl_s, extra)
            )
        cluster.start_agents([m.address for m in managers])
        return _rounds(cluster, managers, workdir, names, uuids, args)
    finally:
        cluster.stop()
        cluster.remove_guests(names)
        for manager in managers:
            stop(manager.process)
        etcd.stop()


def _rounds(
    cluster: LabCluster,
    managers: list[ManagerProcess],
    workdir: Path,
    names: list[str],
    uuids: dict[str, str],
    args: argparse.Namespace,
) -> dict[str, Any]:
    hosts = cluster.hosts
    nodes = {h.name for h in hosts}
    takeovers: list[float] = []
    elections: list[float] = []
    decisions: list[float] = []
    resumed = mid = 0
    for round_index in range(args.kills):
        leader = serving_leader(managers, nodes, 120)
        wait_until(
            functools.partial(_sees_all, leader.address, set(uuids.values())),
            60,
            "the leader sees every guest running",
        )
        src = hosts[round_index % len(hosts)]
        dst = hosts[(round_index + 1) % len(hosts)]
        name = _guest_on(cluster, src, names)
        plan_id = migrate(leader.address, uuids[name], dst.name)
        during = _migration_running(src, name, 30)
        logs = [workdir / f"agent-{h.name}.log" for h in hosts]
        done = kill_leader(managers, leader, nodes, plan_id, workdir, set(uuids.values()), logs)
        mid += during
        elections.append(done.elected_s)
        decisions.append(done.decide_s)
        takeovers.append(done.takeover_s)
        resumed += done.succeeded
        say(
            f"round {round_index + 1}: {leader.name} killed "
            f"{'during' if during else 'outside'} the migration of {name} "
            f"{src.name} -> {dst.name}, {done.new.name} took over in {done.takeover_s:.2f} s; "
            f"plan {plan_id} {'succeeded' if done.succeeded else 'did not succeed'}"
        )
    time.sleep(3.0)  # a few report periods: a second copy would show
    running = cluster.running()
    where = {n: [h for (g, h), c in running.items() if g == n for _ in range(c)] for n in names}
    refused = sum(
        (workdir / f"agent-{h.name}.log").read_text(errors="replace").count("refused: command")
        for h in hosts
    )
    return {
        "driver": "kvm",
        "domain_type": "kvm" if cluster.lab.kvm else "qemu (TCG)",
        "replicas": len(managers),
        "hosts": len(hosts),
        "guests": len(names),
        "etcd_members": args.etcd_members,
        "lease_ttl_s": args.lease_ttl_s,
        "failovers": len(takeovers),
        "killed_mid_migration": mid,
        "takeover_s_p50": round(statistics.median(takeovers), 3),
        "takeover_s_max": round(max(takeovers), 3),
        "elected_s_p50": round(statistics.median(elections), 3),
        "decide_s_p50": round(statistics.median(decisions), 3),
        "decide_s_max": round(max(decisions), 3),
        "plan_resumed": resumed,
        "lost_vms": sum(1 for hosts_of in where.values() if not hosts_of),
        "duplicated_vms": sum(1 for hosts_of in where.values() if len(hosts_of) > 1),
        "duplicate_commands_refused": refused,
    }


def _sees_all(address: str, uuids: set[str]) -> bool:
    """Whether the manager at `address` sees every one of `uuids` running on exactly one node."""
    try:
        placement = running_placement(address)
    except grpc.RpcError:
        return False
    return all(len(placement.get(u, [])) == 1 for u in uuids)


def _uuids(hosts: list[LabHost], names: list[str]) -> dict[str, str]:
    found = {}
    for host in hosts:
        with contextlib.closing(host.connect()) as conn:
            for dom in conn.listAllDomains():
                if dom.name() in names:
                    found[dom.name()] = str(dom.UUIDString())
    return found
