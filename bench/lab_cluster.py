"""A cluster on the KVM lab as real processes: one `vmgrid-cluster`, one `vmgrid-agent` per host.

Used by the reaction benchmark and the lab tests that kill the manager. The manager listens on
a fixed loopback port and journals to a file, so a manager killed with SIGKILL and started
again is found by the same agents and resumes from the same journal. Only processes started
here are signalled, by pid. Placement is read from each lab host's libvirt directly.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import libvirt
from vmgrid.bench.ports import free_ports
from vmgrid.lab import (
    Lab,
    LabHost,
    create_boot_disk,
    hypervisor_unavailable_reason,
    make_guest_xml,
)

_BIN = Path(sys.executable).parent


class LabCluster:
    """Manager and agents over `hosts`; ``start()``, ``kill_manager()``, ``stop()``."""

    def __init__(
        self,
        lab: Lab,
        hosts: Sequence[LabHost],
        workdir: Path,
        manager_flags: Sequence[str] = (),
        cpu_millicores: int = 2000,
        report_period_s: float = 1.0,
    ) -> None:
        self.lab = lab
        self.hosts = list(hosts)
        self.workdir = workdir
        self.manager_flags = list(manager_flags)
        self.cpu_millicores = cpu_millicores
        self.report_period_s = report_period_s
        port, metrics_port = free_ports(2)  # distinct (a CI run once got the same twice)
        self.address = f"127.0.0.1:{port}"
        self.metrics_address = f"127.0.0.1:{metrics_port}"
        self.journal = workdir / "journal.sqlite"
        self.manager: subprocess.Popen[bytes] | None = None
        self.agents: list[subprocess.Popen[bytes]] = []
        self.manager_starts = 0

    def start(self, timeout_s: float = 60.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.start_manager(timeout_s)
        self.start_agents()

    def start_agents(self, managers: Sequence[str] = ()) -> None:
        """One agent per host, given `managers` (replicas' addresses; default: the manager
        started here) and a state directory where it keeps the highest term it has seen."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        for host in self.hosts:
            command = self._agent_command(host)
            if managers:
                command[command.index("--manager") + 1] = ",".join(managers)
                state = self.workdir / f"agent-{host.name}-state"
                state.mkdir(exist_ok=True)
                command += ["--state-dir", str(state)]
            self.agents.append(self._spawn(command, f"agent-{host.name}.log"))

    def start_manager(self, timeout_s: float = 60.0) -> None:
        ready = self.workdir / "manager.ready"
        ready.unlink(missing_ok=True)
        period_ms = str(int(self.report_period_s * 1000))
        command = [
            str(_BIN / "vmgrid-cluster"),
            "--insecure",
            "--listen",
            self.address,
            "--ready-file",
            str(ready),
            "--journal",
            str(self.journal),
            "--report-period-ms",
            period_ms,
            "--metrics-listen",
            self.metrics_address,
            *self.manager_flags,
        ]
        self.manager_starts += 1
        self.manager = self._spawn(command, f"manager-{self.manager_starts}.log")
        deadline = time.monotonic() + timeout_s
        while not ready.exists():
            if self.manager.poll() is not None or time.monotonic() > deadline:
                log = (self.workdir / f"manager-{self.manager_starts}.log").read_text()
                raise RuntimeError(f"vmgrid-cluster did not start: {log[-2000:]}")
            time.sleep(0.1)

    def kill_manager(self) -> None:
        """SIGKILL the manager: no clean-up, no last journal write."""
        assert self.manager is not None
        self.manager.send_signal(signal.SIGKILL)
        self.manager.wait(10)

    def _agent_command(self, host: LabHost) -> list[str]:
        return [
            str(_BIN / "vmgrid-agent"),
            "--insecure",
            "--manager",
            self.address,
            "--libvirt-uri",
            host.uri,
            "--node-id",
            host.name,
            "--period",
            str(self.report_period_s),
            "--heartbeat",
            "0.5",
            "--migration-uri",
            host.migration_uri,
            "--peer-uri",
            host.uri,
            "--cpu-millicores",
            str(self.cpu_millicores),
            "--host-cpu-from-guests",
        ]

    def _spawn(self, command: list[str], log_name: str) -> subprocess.Popen[bytes]:
        log = open(self.workdir / log_name, "ab")  # noqa: SIM115 - the child keeps it
        try:
            return subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ)
            )
        finally:
            log.close()

    def stop(self) -> None:
        """SIGTERM every process started here (SIGKILL after 10 s)."""
        processes = [p for p in (*self.agents, self.manager) if p is not None]
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        self.agents.clear()
        self.manager = None

    def connected_agents(self) -> int:
        """Agents whose log says they reached the manager since its last start."""
        count = 0
        for host in self.hosts:
            log = self.workdir / f"agent-{host.name}.log"
            text = log.read_text(errors="replace") if log.exists() else ""
            if text.count("connected to manager") >= self.manager_starts:
                count += 1
        return count

    # ---- what the lab and the journal say ---------------------------------------------------

    def running(self) -> Counter[tuple[str, str]]:
        """(guest name, host) -> count of running domains, read from every host's libvirt.

        Only domains in the running state count: the paused copy a live migration creates on
        its destination is active but does not run until the migration has completed.
        """
        seen: Counter[tuple[str, str]] = Counter()
        for host in self.hosts:
            with contextlib.closing(host.connect()) as conn:
                for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_RUNNING):
                    seen[(dom.name(), host.name)] += 1
        return seen

    def node_cpu_fraction(self, node: str) -> float | None:
        """The manager's view of a node's CPU use over its capacity (its /metrics), or None."""
        url = f"http://{self.metrics_address}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                text = response.read().decode()
        except OSError:
            return None
        values: dict[str, float] = {}
        for line in text.splitlines():
            for name in ("cpu_used_cores", "cpu_capacity_cores"):
                if line.startswith(f'vmgrid_cluster_node_{name}{{node="{node}"}}'):
                    values[name] = float(line.rsplit(" ", 1)[1])
        if values.get("cpu_capacity_cores", 0) <= 0 or "cpu_used_cores" not in values:
            return None
        return values["cpu_used_cores"] / values["cpu_capacity_cores"]

    def hosts_of(self, name: str) -> list[str]:
        return sorted(h for (n, h), c in self.running().items() if n == name for _ in range(c))

    def journal_rows(self, sql: str) -> list[tuple[object, ...]]:
        """Rows of a read-only query on the manager's journal (empty before it exists)."""
        if not self.journal.exists():
            return []
        with contextlib.closing(sqlite3.connect(f"file:{self.journal}?mode=ro", uri=True)) as db:
            try:
                return list(db.execute(sql))
            except sqlite3.OperationalError:
                return []  # tables not created yet

    def start_guest(
        self, host: LabHost, name: str, mode: str, paused: bool = False, cpuset: str | None = None
    ) -> str:
        """Define and start a tiny guest (paused: its load appears on resume); its uuid.

        `cpuset` pins the guest to those physical CPUs (see make_guest_xml)."""
        disk = create_boot_disk(self.lab.guest_dir / f"{name}.raw", mode)
        xml = make_guest_xml(
            name, mode=mode, disk=disk, memory_mib=64, kvm=self.lab.kvm, cpuset=cpuset
        )
        with contextlib.closing(host.connect()) as conn:
            dom = conn.defineXML(xml)
            dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED if paused else 0)
            return str(dom.UUIDString())

    def resume_guests(self, host: LabHost, names: Sequence[str]) -> None:
        with contextlib.closing(host.connect()) as conn:
            for name in names:
                conn.lookupByName(name).resume()

    def remove_guests(self, names: Sequence[str]) -> None:
        """Destroy and undefine `names` on every host (clean-up, errors ignored)."""
        for host in self.hosts:
            with contextlib.closing(host.connect()) as conn:
                for name in names:
                    try:
                        dom = conn.lookupByName(name)
                    except libvirt.libvirtError:
                        continue
                    with contextlib.suppress(libvirt.libvirtError):
                        if dom.isActive():
                            dom.destroy()
                    with contextlib.suppress(libvirt.libvirtError):
                        dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)


def require_hypervisor(context: str = "") -> None:
    """ValueError (its message starting with `context`) when this machine runs neither KVM
    nor TCG, so no lab can start."""
    reason = hypervisor_unavailable_reason()
    if reason is not None:
        raise ValueError(f"{context}no KVM and no TCG here: {reason}")


def bench_dir(given: str | None, prefix: str) -> Path:
    """A lab bench's work directory: `given`, else a new one under /tmp named `prefix`...;
    created and readable by the lab's unprivileged host users (0755)."""
    base = Path(given) if given else Path(tempfile.mkdtemp(prefix=prefix))
    base.mkdir(parents=True, exist_ok=True)
    base.chmod(0o755)
    return base
