"""`vmgrid-bench failover`: from a lab host's death to all its guests running elsewhere.

Starts a KVM lab of `--hosts` hosts, one `vmgrid-agent` per host and one `vmgrid-cluster` with
jobs on (`--storage-dir` = the lab's guest directory, read by every host), then submits a
spread group of one tiny guest per host (a qcow2 overlay on an idle boot disk, plus its
cloud-init seed ISO) and takes a coordinated checkpoint. The host of the first member then
dies: its agent is SIGKILLed and `Lab.kill_host` SIGKILLs its libvirtd and QEMU guests; the
surviving hosts' libvirt is polled until every member of the dead host runs elsewhere: `failover_s`.
Lost / duplicated members are counted on every surviving host's libvirt afterwards.

Timing choices (the manager's flags, in `MANAGER_FLAGS`): agents heartbeat every 0.5 s, a node
is LOST after 3 s of silence, lost nodes are examined every 0.5 s, and fencing is the libvirt
probe of the node's URI with a 2 s limit (a killed daemon refuses at once).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import grpc
import libvirt
from vmgrid.agents.jobmodel import codec as jobs_codec
from vmgrid.bench.lab_cluster import LabCluster, bench_dir, require_hypervisor
from vmgrid.lab import Lab, LabHost, create_boot_disk
from vmgrid.v1 import cluster_pb2, cluster_pb2_grpc, common_pb2

HEARTBEAT_TIMEOUT_MS = 3000
MANAGER_FLAGS = (
    "--jobs",
    "--no-decisions",
    f"--heartbeat-timeout-ms={HEARTBEAT_TIMEOUT_MS}",
    "--ha-period-s=0.5",
    "--fence-timeout-s=2",
    "--failures-to-tolerate=1",
    "--checkpoint-period-s=3600",
    "--log-level=INFO",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hosts", type=int, default=3, help="lab hosts (default 3)")
    parser.add_argument("--timeout-s", type=float, default=90.0, help="give up after this")
    parser.add_argument("--dir", help="lab directory (default: a new one under /tmp)")


def test_ssh_key() -> str:
    """A well-formed ed25519 public key (zero bytes): the seed ISO needs one."""
    blob = struct.pack(">I", 11) + b"ssh-ed25519" + struct.pack(">I", 32) + bytes(32)
    return "ssh-ed25519 " + base64.b64encode(blob).decode() + " bench@vmgrid"


def base_image(lab: Lab, mode: str = "idle") -> Path:
    """A boot disk of `mode` (``idle``, or ``count`` for restart-memory's counting guests) as
    the qcow2 backing file of every member."""
    raw = create_boot_disk(lab.guest_dir / f"{mode}-base.raw", mode)
    image = lab.guest_dir / f"{mode}-base.qcow2"
    if not image.exists():
        subprocess.run(
            ["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(image)],
            check=True,
            timeout=60,
        )
        shutil.chown(image, lab.guest_dir.stat().st_uid, lab.guest_dir.stat().st_gid)
    return image


def job_document(name: str, count: int, image: Path) -> dict[str, object]:
    return {
        "name": name,
        "count": count,
        "image": str(image),
        "vcpus": 1,
        "cpu_millicores": 100,
        "memory_mib": 64,
        "ssh_key": test_ssh_key(),
        "user": "bench",
        "nfs": [{"source": "fs1:/export/home", "mountpoint": "/home/shared"}],
        "placement": {"spread": True},
    }


class HaLab:
    """A lab cluster with jobs on: submit, checkpoint, kill a host, look at every host."""

    def __init__(self, lab: Lab, hosts: Sequence[LabHost], workdir: Path, *flags: str) -> None:
        domain = "kvm" if lab.kvm else "qemu"
        manager_flags = [
            *MANAGER_FLAGS,
            f"--storage-dir={lab.guest_dir}",
            f"--domain-type={domain}",
            *flags,
        ]
        self.lab = lab
        self.hosts = list(hosts)
        self.cluster = LabCluster(lab, hosts, workdir, manager_flags, report_period_s=0.5)
        self.dead: set[str] = set()

    def start(self) -> None:
        self.cluster.start()
        wait(lambda: self.cluster.connected_agents() >= len(self.hosts), 60, "agents to connect")
        time.sleep(2 * 0.5 + 0.5)  # first reports: the manager knows every node's capacity

    def stop(self) -> None:
        self.cluster.stop()

    @contextlib.contextmanager
    def stub(self) -> Iterator[cluster_pb2_grpc.ClusterServiceStub]:
        with grpc.insecure_channel(self.cluster.address) as channel:
            yield cluster_pb2_grpc.ClusterServiceStub(channel)

    def submit(self, document: dict[str, object]) -> common_pb2.Job:
        spec = jobs_codec.encode_document(document)
        with self.stub() as stub:
            return stub.SubmitJob(cluster_pb2.SubmitJobRequest(spec=spec), timeout=180).job

    def checkpoint(self, job_id: str) -> str:
        with self.stub() as stub:
            request = cluster_pb2.TakeCheckpointRequest(job_id=job_id)
            return str(stub.TakeCheckpoint(request, timeout=120).checkpoint.name)

    def kill(self, host: str) -> None:
        """The whole host dies: its libvirtd and guests (the lab) and its agent (SIGKILL)."""
        index = [h.name for h in self.hosts].index(host)
        agent = self.cluster.agents[index]
        agent.kill()
        self.lab.kill_host(host)
        agent.wait(10)
        self.dead.add(host)

    def freeze_agent(self, host: str) -> subprocess.Popen[bytes]:
        """A partition: the host's agent stops answering (SIGSTOP), its libvirt still runs."""
        agent = self.cluster.agents[[h.name for h in self.hosts].index(host)]
        agent.send_signal(signal.SIGSTOP)
        return agent

    def running(self) -> Counter[tuple[str, str]]:
        """(guest name, host) -> running domains, read from each live host's libvirt."""
        seen: Counter[tuple[str, str]] = Counter()
        for host in self.hosts:
            if host.name in self.dead:
                continue
            with contextlib.closing(host.connect()) as conn:
                for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
                    seen[(dom.name(), host.name)] += 1
        return seen

    def copies(self, names: Sequence[str]) -> dict[str, int]:
        placement = self.running()
        return {n: sum(c for (g, _), c in placement.items() if g == n) for n in names}


def wait(check: Callable[[], bool], timeout_s: float, what: str, period_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(period_s)
    raise TimeoutError(f"timed out after {timeout_s:g} s waiting for {what}")


def kill_and_measure(ha: HaLab, job: common_pb2.Job, timeout_s: float) -> dict[str, object]:
    """Kill the host of the job's first member; time until its members run elsewhere."""
    placement = jobs_codec.placement_of(job.message)
    members = sorted(placement)
    victim = placement[members[0]]
    moved = [m for m in members if placement[m] == victim]
    print(f"killing {victim} (members {', '.join(moved)})", file=sys.stderr)
    t0 = time.monotonic()
    ha.kill(victim)

    def restarted() -> bool:
        where = ha.running()
        return all(any(g == m for (g, _h) in where) for m in moved)

    wait(restarted, timeout_s, f"{', '.join(moved)} to run on another host")
    failover_s = time.monotonic() - t0
    print(f"all members of {victim} run elsewhere after {failover_s:.1f} s", file=sys.stderr)
    time.sleep(2)  # a late second start would show now
    counts = ha.copies(members)
    return {
        "failover_s": round(failover_s, 2),
        "restarted": len(moved),
        "lost_vms": sum(1 for c in counts.values() if c == 0),
        "duplicated_vms": sum(1 for c in counts.values() if c > 1),
        "killed_host": victim,
        "placement_after": {f"{g}@{h}": c for (g, h), c in sorted(ha.running().items())},
    }


@contextlib.contextmanager
def ha_lab(
    hosts: int,
    work_dir: str | None,
    prefix: str,
    manager_flags: Callable[[Lab], Sequence[str]] = lambda lab: (),
) -> Iterator[tuple[Lab, HaLab]]:
    """A lab of `hosts` hosts with an HA manager (with `manager_flags(lab)` added to its
    flags) and its agents, in `work_dir` or a new temporary directory (removed after);
    stopped on leaving. ValueError when the machine runs neither KVM nor TCG."""
    require_hypervisor()
    base = bench_dir(work_dir, prefix)
    lab = Lab(base / "lab")
    ha: HaLab | None = None
    try:
        print(f"starting a {hosts}-host lab in {base}", file=sys.stderr)
        started = lab.start(hosts)
        ha = HaLab(lab, started, base / "procs", *manager_flags(lab))
        ha.start()
        yield lab, ha
    finally:
        if ha is not None:
            ha.stop()
        lab.stop()
        if not work_dir:
            shutil.rmtree(base, ignore_errors=True)


def run(args: argparse.Namespace) -> dict[str, object]:
    if args.hosts < 2:
        raise ValueError(f"--hosts {args.hosts}: need at least 2")
    with ha_lab(args.hosts, args.dir, "vmgrid-failover-") as (lab, ha):
        job = ha.submit(job_document("fo", args.hosts, base_image(lab)))
        if job.state != common_pb2.JOB_STATE_RUNNING:
            raise RuntimeError(f"job did not start: {job.message}")
        print(f"job {job.job_id}: {job.message}", file=sys.stderr)
        checkpoint = ha.checkpoint(job.job_id)
        print(f"checkpoint {checkpoint} taken", file=sys.stderr)
        result = kill_and_measure(ha, job, args.timeout_s)
        return {
            **result,
            "hosts": args.hosts,
            "checkpoint": checkpoint,
            "heartbeat_timeout_ms": HEARTBEAT_TIMEOUT_MS,
            "domain_type": "kvm" if lab.kvm else "qemu (TCG)",
            "job": json.loads(json.dumps({"id": job.job_id, "message": job.message})),
        }
