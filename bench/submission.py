"""`vmgrid-bench submission`: from `vmgridctl submit` to every member of a group reachable
over SSH by its user, with its NFS share mounted, on the lab with the Debian guest image.

Starts a lab of `--members` hosts with its guest network (bridge + DHCP) and NFS server
(NFS-Ganesha, exported to the guest network only), one `vmgrid-agent` per host and one
`vmgrid-cluster` with jobs on (storage in the lab's guest directory, members on the lab's
bridge). A new ed25519 key is made, and a spread job of `--members` members (user, key, one
NFS mount) is written as TOML and submitted with `vmgridctl submit --cluster`. The clock
starts when vmgridctl is started; a member is ready when `ssh user@address findmnt` finds
its NFS mount (address from the lab's DHCP leases). `ready_s` is the time until the last
member is ready. Then, on every member: user name, passwordless sudo, a file written by the
host read through the share, a file written by the guest seen by the host, and a ping to
every other member.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import libvirt
from vmgrid.bench.lab_cluster import LabCluster, bench_dir, require_hypervisor
from vmgrid.lab import Lab, LabHost
from vmgrid.lab.linux import (
    guest_image,
    linux_domain_type,
    mac_addresses,
    make_key,
    ssh,
    wait_for_address,
    wait_for_ssh,
)
from vmgrid.lab.network import GuestNetwork
from vmgrid.lab.nfs import NfsServer

_BIN = Path(sys.executable).parent
USER = "alice"
MOUNTPOINT = "/srv/shared"
JOB_NAME = "sub"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--members", type=int, default=2, help="group members (default 2)")
    parser.add_argument(
        "--timeout-s", type=float, default=900.0, help="give up after this (default 900)"
    )
    parser.add_argument("--dir", help="work directory (default: a new one under /tmp)")


@dataclass
class MemberCheck:
    """What was observed on one member."""

    name: str
    host: str = ""
    address: str = ""
    ready_s: float = 0.0
    user: str = ""
    sudo_uid: str = ""
    read_from_host: str = ""
    host_sees: str = ""
    peers_reached: list[str] = field(default_factory=list)


def job_document(members: int, image: Path, public_key: str, nfs_source: str) -> dict[str, Any]:
    return {
        "name": JOB_NAME,
        "count": members,
        "image": str(image),
        "vcpus": 1,
        "cpu_millicores": 500,
        "memory_mib": 256,
        "user": USER,
        "ssh_key": public_key,
        "nfs": [{"source": nfs_source, "mountpoint": MOUNTPOINT}],
        "placement": {"spread": True},
    }


def _toml(document: dict[str, Any]) -> str:
    """The job as TOML (what a user writes for `vmgridctl submit -f job.toml`)."""
    lines = []
    tables = []
    for key, value in document.items():
        if key == "nfs":
            for mount in value:
                tables.append(
                    "\n[[nfs]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in mount.items())
                )
        elif isinstance(value, dict):
            tables.append(
                f"\n[{key}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in value.items())
            )
        else:
            lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n" + "".join(tables)


class SubmissionLab:
    """The lab's cluster set up for Linux jobs; `submit_and_reach` measures one group."""

    def __init__(
        self, lab: Lab, hosts: list[LabHost], workdir: Path, manager_flags: tuple[str, ...] = ()
    ) -> None:
        self.lab = lab
        self.hosts = hosts
        self.workdir = workdir
        self.server: NfsServer = lab.start_nfs()
        net = lab.guest_network()
        assert net is not None  # start_nfs started it
        self.net: GuestNetwork = net
        self.domain_type = linux_domain_type(lab.kvm)
        flags = [
            "--jobs",
            "--no-decisions",
            f"--storage-dir={lab.guest_dir}",
            f"--domain-type={self.domain_type}",
            f"--network={self.net.domain_network}",
            "--log-level=INFO",
            *manager_flags,
        ]
        self.cluster = LabCluster(lab, hosts, workdir / "procs", flags, report_period_s=0.5)

    def start(self) -> None:
        self.cluster.start()
        deadline = time.monotonic() + 60
        while self.cluster.connected_agents() < len(self.hosts):
            if time.monotonic() > deadline:
                raise RuntimeError("agents did not connect to the manager within 60 s")
            time.sleep(0.2)
        time.sleep(1.5)  # first reports: the manager knows every node's capacity

    def stop(self) -> None:
        self.cluster.stop()
        for host in self.hosts:
            with contextlib.closing(host.connect()) as conn:
                for dom in conn.listAllDomains():
                    if dom.name().startswith(JOB_NAME):
                        with contextlib.suppress(libvirt.libvirtError):
                            if dom.isActive():
                                dom.destroy()
                        with contextlib.suppress(libvirt.libvirtError):
                            dom.undefine()

    def submit(self, document: dict[str, Any]) -> tuple[dict[str, Any], float]:
        """`vmgridctl submit`; returns the job as JSON and the time vmgridctl took."""
        job_file = self.workdir / "job.toml"
        job_file.write_text(_toml(document))
        t0 = time.monotonic()
        result = subprocess.run(
            [str(_BIN / "vmgridctl"), "submit", "-f", str(job_file), "--cluster",
             self.cluster.address, "--insecure", "--output", "json", "--timeout", "300"],
            capture_output=True, text=True, timeout=330, check=False,
        )  # fmt: skip
        took = time.monotonic() - t0
        if result.returncode != 0:
            raise RuntimeError(f"vmgridctl submit failed ({result.returncode}): "
                               f"{result.stdout[-500:]} {result.stderr[-500:]}")  # fmt: skip
        return json.loads(result.stdout), took

    def member_domains(self, names: list[str]) -> dict[str, tuple[str, libvirt.virDomain]]:
        found: dict[str, tuple[str, libvirt.virDomain]] = {}
        for host in self.hosts:
            conn = host.connect()
            for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
                if dom.name() in names:
                    found[dom.name()] = (host.name, dom)
        return found

    def submit_and_reach(
        self,
        members: int,
        timeout_s: float,
        overrides: dict[str, Any] | None = None,
        verify: bool = True,
    ) -> dict[str, Any]:
        """Submit a job of `members` (`overrides` replace fields of the document, None drops
        one) and wait until each is reachable; `verify` also checks each member's user, sudo,
        NFS share and peers."""
        key, public = make_key(self.workdir)
        image = guest_image()
        document = job_document(members, image, public, self.server.source)
        for name, value in (overrides or {}).items():
            if value is None:
                document.pop(name, None)
            else:
                document[name] = value
        # a job of one member names its VM after the job, a group numbers them
        names = [JOB_NAME] if members == 1 else [f"{JOB_NAME}-{i}" for i in range(members)]
        t0 = time.monotonic()
        job, submit_s = self.submit(document)
        print(f"submitted in {submit_s:.1f} s: {job.get('message')}", file=sys.stderr)
        domains = self.member_domains(names)
        if sorted(domains) != sorted(names):
            raise RuntimeError(f"members running: {sorted(domains)}; expected {names}")
        checks = {name: MemberCheck(name, host=domains[name][0]) for name in names}
        deadline = t0 + timeout_s
        for name in names:
            mac = mac_addresses(domains[name][1])[0]
            checks[name].address = wait_for_address(self.net, mac, deadline - time.monotonic())
        for name in names:  # in order: the slowest member bounds the group anyway
            check = checks[name]
            wait_for_ssh(check.address, USER, key, deadline - time.monotonic(),
                         f"findmnt -n {MOUNTPOINT}")  # fmt: skip
            check.ready_s = round(time.monotonic() - t0, 1)
            print(f"{name} on {check.host} ({check.address}) ready after {check.ready_s} s",
                  file=sys.stderr)  # fmt: skip
        ready_s = max(c.ready_s for c in checks.values())
        for name in names if verify else []:
            self._check_member(checks[name], key, [checks[n].address for n in names if n != name])
        return {
            "members": members,
            "submit_s": round(submit_s, 1),
            "ready_s": ready_s,
            "domain_type": self.domain_type,
            "image_bytes": image.stat().st_size,
            "checks": [vars(c) for c in checks.values()],
        }

    def _check_member(self, check: MemberCheck, key: Path, peers: list[str]) -> None:
        def run(command: str) -> str:
            result = ssh(check.address, USER, key, command, timeout_s=60)
            return result.stdout.strip() if result.returncode == 0 else f"ERROR {result.stderr}"

        check.user = run("id -un")
        check.sudo_uid = run("sudo -n id -u")
        from_host = self.server.export_dir / f"from-host-{check.name}"
        from_host.write_text(f"host wrote this for {check.name}\n")
        check.read_from_host = run(f"cat {MOUNTPOINT}/{from_host.name}")
        wrote = run(f"echo {check.name} wrote this > {MOUNTPOINT}/from-{check.name}")
        written = self.server.export_dir / f"from-{check.name}"
        check.host_sees = written.read_text().strip() if written.exists() else wrote
        check.peers_reached = [
            p for p in peers if run(f"ping -c 1 -W 5 {p} >/dev/null && echo ok") == "ok"
        ]


def run(args: argparse.Namespace) -> dict[str, object]:
    if args.members < 1:
        raise ValueError(f"--members {args.members}: need at least 1")
    require_hypervisor()
    guest_image()  # fails early, with how to build it, when it is missing
    base = bench_dir(args.dir, "vmgrid-submit-")
    lab = Lab(base / "lab")
    sub: SubmissionLab | None = None
    try:
        hosts = lab.start(args.members)
        sub = SubmissionLab(lab, hosts, base)
        sub.start()
        return sub.submit_and_reach(args.members, args.timeout_s)
    finally:
        if sub is not None:
            sub.stop()
        lab.stop()
        if not args.dir:
            shutil.rmtree(base, ignore_errors=True)
