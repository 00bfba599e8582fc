"""`vmgrid-bench fuzz`: the RPC fuzzer against a live TLS grid, for S seconds.

Starts, on loopback, a real `vmgrid-coordinator`, a real `vmgrid-cluster` reporting to it and a
real `vmgrid-agent` on a two-VM libvirt test-driver node, all over mutual TLS with certificates
from `vmgridctl certs init` and `certs issue`. Then, until the time is up, it picks a method of
any service (node link, ClusterService, grid link, CoordinatorService) and a certificate of any
role (node, cluster, coordinator, operator, read-only; the fuzzer's own names, so no call can
speak for the real agent or cluster), sends requests made by ``vmgrid.bench.fuzz_rpc`` and
checks each answer:

- crashes: a status the servers never give on purpose (UNKNOWN, INTERNAL) or a process that died;
- unauthorised_accepted: a call whose role the method's access table does not allow that got
  anything but PERMISSION_DENIED (a stream reset by the client's transport, below, with no
  answer from the server, is not an acceptance; it is counted in stream_resets);
- state_corruptions: a refused call after which the nodes, VMs, rules or clusters differ;
- tracebacks: lines ``Traceback (most recent call last)`` in the three processes' logs.

Target: all four 0. ``stream_resets`` counts streams the client's own transport reset while
it was still sending after the server's answer (reported apart: the server answered).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from vmgrid.agents.cluster.service.access import CLUSTER_ACCESS
from vmgrid.agents.identity import Role
from vmgrid.agents.node.testnode import SimVm, node_xml
from vmgrid.agents.tls import TlsFiles, secure_channel
from vmgrid.bench.fuzz_rpc import TARGETS, call, grid_state, random_payloads
from vmgrid.bench.ports import free_port
from vmgrid.coordinator.access import COORDINATOR_ACCESS

CLUSTER_ID = "c1"
NODE_ID = "n1"
CALLERS: dict[Role, str] = {
    Role.NODE: "fuzz-node",
    Role.CLUSTER: "fuzz-cluster",
    Role.COORDINATOR: "coordinator",
    Role.OPERATOR: "vmgridctl",
    Role.READONLY: "fuzz-viewer",
}
"""The certificate each role calls with (coordinator and vmgridctl come from `certs init`)."""
ACCESS = {"cluster": CLUSTER_ACCESS, "coordinator": COORDINATOR_ACCESS}
SERVER_ROLE = {"cluster": Role.CLUSTER, "coordinator": Role.COORDINATOR}
TOPOLOGY = Path(__file__).resolve().parents[1] / "deploy" / "demo" / "grid.graphml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to fuzz (s)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the request generator")


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.seconds <= 0:
        raise ValueError(f"--seconds {args.seconds}: must be > 0")
    with tempfile.TemporaryDirectory(prefix="vmgrid-fuzz-") as tmp:
        grid = LiveGrid(Path(tmp))
        try:
            grid.start()
            tally = asyncio.run(_fuzz(grid, args.seconds, args.seed))
        finally:
            grid.stop()
        tally.tracebacks = grid.tracebacks()
        tally.crashes += grid.deaths
    return tally.result(args.seconds, args.seed)


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


class LiveGrid:
    """The three processes, their certificates and logs, in ``workdir``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.certs = workdir / "certs"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.addresses: dict[str, str] = {}
        self.deaths = 0

    def start(self) -> None:
        ctl = _bin("vmgridctl")
        subprocess.run(
            [ctl, "certs", "init", "--dir", str(self.certs)], check=True, stdout=subprocess.DEVNULL
        )
        issued = [(Role.NODE, NODE_ID), (Role.CLUSTER, CLUSTER_ID)]
        issued += [(r, n) for r, n in CALLERS.items() if n.startswith("fuzz-")]
        for role, name in issued:
            subprocess.run(
                [ctl, "certs", "issue", "--role", role.value, "--name", name, "--dir", str(self.certs)],
                check=True,
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
        common = ["--certs", str(self.certs)]
        self._serve("coordinator", [
            _bin("vmgrid-coordinator"), *common, f"--topology-file={TOPOLOGY}",
            f"--state-db={self.workdir / 'grid.sqlite'}",
        ])  # fmt: skip
        self._serve("cluster", [
            _bin("vmgrid-cluster"), *common, f"--cert-name={CLUSTER_ID}",
            f"--cluster-id={CLUSTER_ID}", f"--state-dir={self.workdir / 'cluster'}",
            f"--coordinator={self.addresses['coordinator']}", "--summary-period-s=0.5",
            "--no-decisions",
        ])  # fmt: skip
        xml = self.workdir / "node.xml"
        xml.write_text(node_xml([SimVm("vm-a"), SimVm("vm-b")], cpus=4, memory_mib=8192))
        config = self.workdir / "agent.toml"
        config.write_text(
            f'node_id = "{NODE_ID}"\nlibvirt_uri = "test://{xml}"\n'
            f'manager = "{self.addresses["cluster"]}"\nreport_period_s = 0.5\n'
            f'heartbeat_period_s = 0.5\ntls_dir = "{self.certs}"\n'
        )
        self._spawn(
            "agent", [sys.executable, "-m", "vmgrid.agents.node.main", "--config", str(config)]
        )

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        with (self.workdir / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(argv, stdout=log, stderr=log)
        self.processes[name] = process
        return process

    def _serve(self, name: str, argv: list[str]) -> None:
        ready = self.workdir / f"{name}.ready"
        address = f"127.0.0.1:{free_port()}"
        process = self._spawn(name, [*argv, f"--listen={address}", f"--ready-file={ready}"])
        deadline = time.monotonic() + 60
        while not ready.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                log = (self.workdir / f"{name}.log").read_text()[-2000:]
                raise RuntimeError(f"{name} did not start:\n{log}")
            time.sleep(0.05)
        self.addresses[name] = ready.read_text().strip() or address

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.processes.values())

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is not None:
                self.deaths += 1
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def tracebacks(self) -> int:
        marker = "Traceback (most recent call last)"
        return sum(
            (self.workdir / f"{name}.log").read_text(errors="replace").count(marker)
            for name in self.processes
        )

    def channel(self, server: str, role: Role) -> grpc.aio.Channel:
        files = TlsFiles.from_dir(self.certs, CALLERS[role])
        return secure_channel(self.addresses[server], files, SERVER_ROLE[server])


@dataclass
class Tally:
    calls: int = 0
    crashes: int = 0
    tracebacks: int = 0
    unauthorised_accepted: int = 0
    state_corruptions: int = 0
    stream_resets: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    methods: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)

    def note(self, problem: str) -> None:
        if len(self.samples) < 10:
            self.samples.append(problem)

    def result(self, seconds: float, seed: int) -> dict[str, Any]:
        return {
            "benchmark": "fuzz",
            "seconds": seconds,
            "seed": seed,
            "calls": self.calls,
            "crashes": self.crashes,
            "tracebacks": self.tracebacks,
            "unauthorised_accepted": self.unauthorised_accepted,
            "state_corruptions": self.state_corruptions,
            "stream_resets": self.stream_resets,
            "methods_covered": len(self.methods),
            "methods_total": len(TARGETS),
            "statuses": dict(self.statuses.most_common()),
            "problems": self.samples,
        }


async def _ready(operator: dict[str, grpc.aio.Channel], within_s: float = 60) -> Any:
    deadline = time.monotonic() + within_s
    while True:
        try:
            state = await grid_state(operator["cluster"], operator["coordinator"])
            if len(state[1]) == 2 and CLUSTER_ID in state[3]:
                return state
        except grpc.aio.AioRpcError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the grid did not come up (agent VMs or cluster not seen)")
        await asyncio.sleep(0.2)


async def _fuzz(grid: LiveGrid, seconds: float, seed: int) -> Tally:
    rnd = random.Random(seed)
    channels = {(s, r): grid.channel(s, r) for s in ACCESS for r in CALLERS}
    operator = {s: channels[(s, Role.OPERATOR)] for s in ACCESS}
    tally = Tally()
    try:
        before = await _ready(operator)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and grid.alive():
            target, role = rnd.choice(TARGETS), rnd.choice(list(CALLERS))
            outcome = await call(
                channels[(target.server, role)], target, random_payloads(target, rnd)
            )
            tally.calls += 1
            tally.methods[target.path] += 1
            tally.statuses[outcome.code.name] += 1
            what = f"{target.path} as {role.value}: {outcome.code.name} {outcome.details[:120]}"
            tally.stream_resets += outcome.reset
            if outcome.crashed:
                tally.crashes += 1
                tally.note(f"crash: {what}")
            allowed = role in ACCESS[target.server].get(target.path, frozenset())
            denied = outcome.code is grpc.StatusCode.PERMISSION_DENIED
            if not allowed and not denied and (outcome.accepted or not outcome.reset):
                tally.unauthorised_accepted += 1
                tally.note(f"unauthorised accepted: {what}")
            after = await grid_state(operator["cluster"], operator["coordinator"])
            if not outcome.accepted and after != before:
                tally.state_corruptions += 1
                tally.note(f"state changed by a refused call: {what}")
            before = after
    finally:
        for channel in channels.values():
            await channel.close()
    return tally
