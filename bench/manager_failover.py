"""`vmgrid-bench manager-failover`: SIGKILL the leader of replicated cluster managers while a
plan of migrations runs, and time the takeover.

Test-driver variant (`--driver kvm` runs real live migrations on the KVM lab:
manager_failover_lab.py): a private etcd cluster of
`--etcd-members` on loopback ports (``vmgrid.lab.etcd``), `--replicas` `vmgrid-cluster`
processes and `--hosts` test-driver `vmgrid-agent` processes (two 1 GiB VMs each) given every
replica's address. Each round waits for one leader serving every agent, asks it to migrate one
VM (a simulated migration lasting memory / `--bandwidth-mbit`), SIGKILLs the leader
`--kill-after-s` later and starts it again as its supervisor would (it comes back a standby).

- ``takeover_s``: from the SIGKILL to a survivor answering as leader with every agent
  connected (each agent's log says it connected to that leader) and the interrupted plan known
  (read back from etcd); ``elected_s``: to a survivor answering as leader; ``reconnect_s``:
  from then until every agent is connected to it (the agents' reconnect storm: they all lost their stream at once, and find the leader
  through the standbys' redirects, with jittered backoff capped at 0.5 s).
- ``decide_s``: from the SIGKILL to the new leader answering with every node and every VM in
  its view, the moment it can decide: a standby that kept its view warm (it follows the
  leader's view of the nodes) answers so at once, a cold one once the agents have reported to
  it.
- ``plan_resumed``: rounds whose interrupted plan then ended ``succeeded`` on the new leader.
- ``lost_vms`` / ``duplicated_vms``: VMs of the start running nowhere / on two nodes at the end.
- ``duplicate_commands_refused``: stale-term commands agents refused (their logs).
"""

from __future__ import annotations

import argparse
import functools
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from vmgrid.lab.etcd import EtcdCluster
from vmgrid.lab.replicas import (
    ManagerProcess,
    connected_nodes,
    idle_vms,
    leaders,
    migrate,
    plan_state,
    restart_manager,
    running_placement,
    start_manager,
    start_test_agent,
    stop,
    view_of,
    wait_until,
)
from vmgrid.v1 import cluster_pb2, common_pb2

CONNECTED = cluster_pb2.NODE_STATUS_CONNECTED
FINISHED = (common_pb2.PLAN_STATE_SUCCEEDED, common_pb2.PLAN_STATE_FAILED)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--replicas", type=int, default=3, help="manager replicas (default 3)")
    parser.add_argument("--hosts", type=int, default=3, help="test-driver nodes (default 3)")
    parser.add_argument("--kills", type=int, default=5, help="leader kills (default 5)")
    parser.add_argument("--etcd-members", type=int, default=3, choices=(1, 3, 5))
    parser.add_argument("--lease-ttl-s", type=int, default=2, help="leader lease (default 2)")
    parser.add_argument(
        "--bandwidth-mbit", type=int, default=2000, help="simulated migration speed"
    )
    parser.add_argument("--kill-after-s", type=float, default=1.5, help="into the migration")
    parser.add_argument(
        "--driver",
        choices=("test", "kvm"),
        default="test",
        help="test: test-driver nodes, simulated migrations; kvm: the KVM lab's hosts, tiny "
        "guests, real live migrations (manager_failover_lab.py)",
    )
    parser.add_argument("--dir", help="--driver kvm: lab directory (default: a new one in /tmp)")


def _ended(address: str, plan_id: str) -> bool:
    return plan_state(address, plan_id) in FINISHED


def _one_leads(managers: list[ManagerProcess]) -> bool:
    return len(leaders(managers)) == 1


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def serving_leader(
    managers: list[ManagerProcess], nodes: set[str], timeout_s: float
) -> ManagerProcess:
    def serving() -> ManagerProcess | None:
        found = leaders(managers)
        if len(found) == 1 and connected_nodes(found[0].address) == nodes:
            return found[0]
        return None

    wait_until(serving, timeout_s, "one leader serving every agent")
    leader = serving()
    if leader is None:
        raise ValueError("the leader changed while it was being looked at")
    return leader


@dataclass(frozen=True)
class Takeover:
    """One leader kill: who took over and when (seconds from the SIGKILL)."""

    new: ManagerProcess
    elected_s: float
    """To a survivor answering as leader."""
    reconnect_s: float
    """From then to that leader serving every agent."""
    decide_s: float
    """To the new leader answering with every node and VM in its view."""
    takeover_s: float
    """To the new leader serving every agent and knowing the interrupted plan."""
    succeeded: bool
    """The interrupted plan then ended ``succeeded``."""


def _sees(address: str, nodes: set[str], vms: set[str]) -> bool:
    """The manager at `address` answers with every one of `nodes` connected and every one
    of `vms` running."""
    try:
        view = view_of(address)
    except grpc.RpcError:
        return False
    connected = {n for n, (status, _) in view.nodes.items() if status == CONNECTED}
    return connected >= nodes and set(view.placement) >= vms


def _reached(logs: dict[Path, int], address: str) -> bool:
    """Every agent says, in its log after the offset noted, that it connected to `address`
    (its own word: a warm leader lists the nodes as connected before their agents are)."""
    said = f"connected to manager at {address} "
    for log, offset in logs.items():
        with log.open("rb") as handle:
            handle.seek(offset)
            if said not in handle.read().decode(errors="replace"):
                return False
    return True


def kill_leader(
    managers: list[ManagerProcess],
    leader: ManagerProcess,
    nodes: set[str],
    plan_id: str,
    workdir: Path,
    vms: set[str],
    agent_logs: list[Path],
) -> Takeover:
    """SIGKILL `leader` while its plan `plan_id` runs, time the takeover, start the killed
    replica again as its supervisor would (replacing it in `managers`: it comes back a
    standby) and wait for the plan to end on the new leader."""
    offsets = {log: log.stat().st_size for log in agent_logs}
    leader.process.send_signal(signal.SIGKILL)
    leader.process.wait(timeout=10)
    killed = time.monotonic()
    survivors = [m for m in managers if m is not leader]
    wait_until(functools.partial(_one_leads, survivors), 60, "a survivor leads")
    elected = time.monotonic() - killed
    (first,) = leaders(survivors)
    wait_until(functools.partial(_sees, first.address, nodes, vms), 60, "every node and VM")
    decide = time.monotonic() - killed
    new = first
    wait_until(functools.partial(_reached, offsets, new.address), 60, "every agent reached it")
    reconnect = time.monotonic() - killed - elected
    wait_until(functools.partial(plan_state, new.address, plan_id), 30, "plan known")
    takeover = time.monotonic() - killed
    managers[managers.index(leader)] = restart_manager(workdir, leader)
    wait_until(functools.partial(_ended, new.address, plan_id), 120, "the plan ends")
    succeeded = plan_state(new.address, plan_id) == common_pb2.PLAN_STATE_SUCCEEDED
    return Takeover(new, elected, reconnect, decide, takeover, succeeded)


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.replicas < 2 or args.hosts < 2 or args.kills < 1:
        raise ValueError("--replicas and --hosts must be >= 2, --kills >= 1")
    if args.driver == "kvm":
        from vmgrid.bench.manager_failover_lab import run_lab

        return run_lab(args)
    workdir = Path(tempfile.mkdtemp(prefix="vmgrid-manager-failover-"))
    nodes = [f"n{i + 1}" for i in range(args.hosts)]
    extra = ("--migration-bandwidth-mbit", str(args.bandwidth_mbit), "--resume-grace-s", "10")
    etcd = EtcdCluster(workdir / "etcd", args.etcd_members).start()
    managers: list[ManagerProcess] = []
    agents = []
    try:
        for i in range(args.replicas):
            managers.append(
                start_manager(workdir, f"r{i}", etcd.endpoints, args.lease_ttl_s, extra)
            )
        addresses = [m.address for m in managers]
        vms = {n: idle_vms(n) for n in nodes}
        agents = [start_test_agent(workdir, n, addresses, vms[n]) for n in nodes]
        every_vm = {vm.uuid for group in vms.values() for vm in group}
        takeovers: list[float] = []
        elections: list[float] = []
        reconnects: list[float] = []
        decisions: list[float] = []
        resumed = 0
        for round_index in range(args.kills):
            leader = serving_leader(managers, set(nodes), 60)
            placement = running_placement(leader.address)
            src = nodes[round_index % len(nodes)]
            dst = nodes[(round_index + 1) % len(nodes)]
            vm = next(u for u, hosts in sorted(placement.items()) if hosts == [src])
            plan_id = migrate(leader.address, vm, dst)
            time.sleep(args.kill_after_s)
            logs = [workdir / f"{n}.log" for n in nodes]
            done = kill_leader(managers, leader, set(nodes), plan_id, workdir, every_vm, logs)
            elections.append(done.elected_s)
            decisions.append(done.decide_s)
            reconnects.append(done.reconnect_s)
            takeovers.append(done.takeover_s)
            resumed += done.succeeded
            say(
                f"round {round_index + 1}: {leader.name} killed, {done.new.name} took over in "
                f"{done.takeover_s:.2f} s; plan {plan_id} resumed"
            )
        final = serving_leader(managers, set(nodes), 60)
        time.sleep(1.5)  # three report periods, so a second copy would show
        placement = running_placement(final.address)
        lost = sorted(u for u in every_vm if not placement.get(u))
        duplicated = sorted(u for u in every_vm if len(placement.get(u, [])) > 1)
        refused = sum(
            (workdir / f"{n}.log").read_text(errors="replace").count("refused: command")
            for n in nodes
        )
        return {
            "driver": args.driver,
            "replicas": args.replicas,
            "hosts": args.hosts,
            "etcd_members": args.etcd_members,
            "lease_ttl_s": args.lease_ttl_s,
            "failovers": len(takeovers),
            "takeover_s_p50": round(statistics.median(takeovers), 3),
            "takeover_s_max": round(max(takeovers), 3),
            "elected_s_p50": round(statistics.median(elections), 3),
            "reconnect_s_p50": round(statistics.median(reconnects), 3),
            "reconnect_s_max": round(max(reconnects), 3),
            "decide_s_p50": round(statistics.median(decisions), 3),
            "decide_s_max": round(max(decisions), 3),
            "plan_resumed": resumed,
            "lost_vms": len(lost),
            "duplicated_vms": len(duplicated),
            "duplicate_commands_refused": refused,
        }
    finally:
        for process in [*agents, *(m.process for m in managers)]:
            stop(process)
        etcd.stop()
