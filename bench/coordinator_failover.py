"""`vmgrid-bench coordinator-failover`: SIGKILL the leader of replicated grid coordinators while
a grid move runs, and time the takeover.

Test-driver variant: a private etcd cluster of `--etcd-members` on loopback ports
(``vmgrid.lab.etcd``), `--replicas` `vmgrid-coordinator` processes, two `vmgrid-cluster`
processes (c1, c2 of the two-cluster topology in tests/data/grid) given every coordinator's
address, each with two test-driver `vmgrid-agent` processes (two 1 GiB VMs per node). Each
round waits for one coordinator leading with both clusters reporting, asks it to move one VM
to the other cluster (a simulated transfer lasting memory / `--bandwidth-mbit`), SIGKILLs the
leader `--kill-after-s` later and starts it again as its supervisor would (it comes back a
standby).

- ``elected_s``: from the SIGKILL to a survivor answering as leader.
- ``reregistered_s``: to both clusters having said hello to the new leader (their
  ``last_seen`` there is after the SIGKILL).
- ``takeover_s``: to the new leader with both clusters re-registered and the interrupted
  move known (read back from etcd).
- ``moves_resumed``: rounds whose interrupted move then ended ``succeeded`` on the new leader.
- ``lost_vms`` / ``duplicated_vms``: VMs of the start running nowhere / more than once (in
  either cluster) at the end.
"""

from __future__ import annotations

import argparse
import functools
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
from vmgrid.lab.coordinators import (
    coordinator_leaders,
    grid_plan_state,
    list_clusters,
    migrate_to_cluster,
    start_cluster,
    start_coordinator,
)
from vmgrid.lab.etcd import EtcdCluster
from vmgrid.lab.replicas import (
    ManagerProcess,
    idle_vms,
    restart_manager,
    running_placement,
    start_test_agent,
    stop,
    wait_until,
)
from vmgrid.v1 import common_pb2

FINISHED = (common_pb2.PLAN_STATE_SUCCEEDED, common_pb2.PLAN_STATE_FAILED)
CLUSTERS = ("c1", "c2")
TOPOLOGY = Path(__file__).resolve().parents[1] / "tests" / "data" / "grid" / "two-clusters.graphml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--replicas", type=int, default=3, help="coordinators (default 3)")
    parser.add_argument("--kills", type=int, default=5, help="leader kills (default 5)")
    parser.add_argument("--etcd-members", type=int, default=3, choices=(1, 3, 5))
    parser.add_argument("--lease-ttl-s", type=int, default=2, help="leader lease (default 2)")
    parser.add_argument("--bandwidth-mbit", type=int, default=2000, help="simulated transfer speed")
    parser.add_argument("--kill-after-s", type=float, default=1.5, help="into the move")
    parser.add_argument(
        "--topology-file", type=Path, default=TOPOLOGY, help="GraphML naming c1 and c2"
    )
    parser.add_argument("--driver", choices=("test",), default="test", help="libvirt driver")


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _one_leads(coordinators: list[ManagerProcess]) -> bool:
    return len(coordinator_leaders(coordinators)) == 1


def _reporting_since(address: str, since_unix_s: float) -> bool:
    """Both clusters registered at `address`, connected, with VMs, heard from after
    `since_unix_s`."""
    try:
        clusters = list_clusters(address).clusters
    except grpc.RpcError:
        return False
    return sorted(c.cluster_id for c in clusters) == list(CLUSTERS) and all(
        c.connected and c.vm_count and c.last_seen.ToNanoseconds() / 1e9 > since_unix_s
        for c in clusters
    )


def _leader(coordinators: list[ManagerProcess], since_unix_s: float) -> ManagerProcess:
    def serving() -> ManagerProcess | None:
        found = coordinator_leaders(coordinators)
        if len(found) == 1 and _reporting_since(found[0].address, since_unix_s):
            return found[0]
        return None

    wait_until(serving, 60, "one coordinator leading with both clusters reporting")
    leader = serving()
    if leader is None:
        raise ValueError("the leader changed while it was being looked at")
    return leader


def _placement(clusters: dict[str, ManagerProcess]) -> dict[str, list[str]]:
    """VM uuid -> every cluster/node it runs on."""
    out: dict[str, list[str]] = {}
    for cluster_id, cluster in clusters.items():
        for vm, nodes in running_placement(cluster.address).items():
            out.setdefault(vm, []).extend(f"{cluster_id}/{n}" for n in nodes)
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.replicas < 2 or args.kills < 1:
        raise ValueError("--replicas must be >= 2, --kills >= 1")
    if not args.topology_file.is_file():
        raise ValueError(f"--topology-file {str(args.topology_file)!r} is not a file")
    workdir = Path(tempfile.mkdtemp(prefix="vmgrid-coordinator-failover-"))
    etcd = EtcdCluster(workdir / "etcd", args.etcd_members).start()
    flags = (
        "--topology-file", str(args.topology_file),
        "--summary-period-s", "0.5", "--cluster-timeout-s", "5",
    )  # fmt: skip
    coordinators: list[ManagerProcess] = []
    clusters: dict[str, ManagerProcess] = {}
    agents = []
    try:
        for i in range(args.replicas):
            coordinators.append(
                start_coordinator(workdir, f"g{i}", etcd.endpoints, args.lease_ttl_s, flags)
            )
        addresses = [c.address for c in coordinators]
        bandwidth = ("--migration-bandwidth-mbit", str(args.bandwidth_mbit))
        every_vm: set[str] = set()
        originals: dict[str, set[str]] = {c: set() for c in CLUSTERS}
        moved: set[str] = set()
        for cluster_id in CLUSTERS:
            clusters[cluster_id] = start_cluster(workdir, cluster_id, addresses, bandwidth)
            for n in (1, 2):
                node = f"{cluster_id}-n{n}"
                vms = idle_vms(node)
                every_vm |= {vm.uuid for vm in vms}
                originals[cluster_id] |= {vm.uuid for vm in vms}
                agents.append(start_test_agent(workdir, node, [clusters[cluster_id].address], vms))
        elections: list[float] = []
        reregistrations: list[float] = []
        takeovers: list[float] = []
        resumed = 0
        since = 0.0
        for round_index in range(args.kills):
            leader = _leader(coordinators, since)
            src, dst = CLUSTERS[round_index % 2], CLUSTERS[(round_index + 1) % 2]
            placement = running_placement(clusters[src].address)
            vm = min(u for u in placement if u in originals[src] and u not in moved)
            moved.add(vm)
            plan_id = migrate_to_cluster(leader.address, vm, dst, f"failover-{round_index}")
            time.sleep(args.kill_after_s)
            since = time.time()
            leader.process.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            leader.process.wait(timeout=10)
            survivors = [c for c in coordinators if c is not leader]
            wait_until(functools.partial(_one_leads, survivors), 60, "a survivor leads")
            elections.append(time.monotonic() - killed)
            new = _leader(survivors, since)
            reregistrations.append(time.monotonic() - killed)
            wait_until(lambda: grid_plan_state(new.address, plan_id), 30, "the move known")  # noqa: B023
            takeovers.append(time.monotonic() - killed)
            coordinators[coordinators.index(leader)] = restart_manager(workdir, leader)
            wait_until(
                lambda: grid_plan_state(new.address, plan_id) in FINISHED,  # noqa: B023
                120,
                "the move ends",
            )
            if grid_plan_state(new.address, plan_id) == common_pb2.PLAN_STATE_SUCCEEDED:
                resumed += 1
            _log(
                f"round {round_index + 1}: {leader.name} killed, {new.name} took over in "
                f"{takeovers[-1]:.2f} s; move {plan_id} ended"
            )
        time.sleep(1.5)  # three report periods, so a second copy would show
        placement = _placement(clusters)
        lost = sorted(u for u in every_vm if not placement.get(u))
        duplicated = sorted(u for u in every_vm if len(placement.get(u, [])) > 1)
        return {
            "driver": args.driver,
            "replicas": args.replicas,
            "etcd_members": args.etcd_members,
            "lease_ttl_s": args.lease_ttl_s,
            "failovers": len(takeovers),
            "takeover_s_p50": round(statistics.median(takeovers), 3),
            "takeover_s_max": round(max(takeovers), 3),
            "elected_s_p50": round(statistics.median(elections), 3),
            "reregistered_s_p50": round(statistics.median(reregistrations), 3),
            "reregistered_s_max": round(max(reregistrations), 3),
            "moves_resumed": resumed,
            "lost_vms": len(lost),
            "duplicated_vms": len(duplicated),
        }
    finally:
        for process in [*agents, *(c.process for c in clusters.values())]:
            stop(process)
        for coordinator in coordinators:
            stop(coordinator.process)
        etcd.stop()
