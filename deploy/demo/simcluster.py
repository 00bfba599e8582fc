"""A cluster of simulated nodes: test-driver node XMLs, agent configs and agent processes.

Each VM's CPU follows a PlanetLab trace (deploy/demo/traces/<day>/, committed with its
attribution) played faster than real time: one 5-minute sample every `step_s` seconds. The same
load table is given to every agent, keyed by VM name, so a VM keeps its load when it migrates.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from vmgrid.agents.node.testnode import SimVm, domain_xml, node_xml

TRACES = Path(__file__).parent / "traces"


@dataclass(frozen=True)
class SimClusterSpec:
    cluster_id: str
    nodes: int = 4
    vms_per_node: int = 5
    node_cpus: int = 2
    node_memory_mib: int = 16384
    step_s: float = 5.0
    """Seconds of demo time per 5-minute trace sample."""
    seed: int = 1


def trace_files() -> list[Path]:
    """Committed demo traces, in a stable order; empty if none are shipped."""
    return sorted(p for p in TRACES.glob("*/*") if p.is_file() and p.suffix != ".md")


def _load_table(vms: list[SimVm], traces: list[Path], step_s: float, seed: int) -> str:
    rng = random.Random(seed)
    lines = ["[load]", f"seed = {seed}"]
    lines.append(
        'default = { cpu = { kind = "random_walk", start = 20, step = 15, interval_s = 10 } }'
    )
    for i, vm in enumerate(vms):
        lines.append(f'[load.vms."{vm.name}"]')
        if traces:
            trace = traces[i % len(traces)]
            offset = rng.randrange(0, 288)
            lines.append(
                f'cpu = {{ kind = "trace", path = "{trace}", step_s = {step_s}, '
                f"offset_steps = {offset} }}"
            )
        else:
            lines.append(
                f'cpu = {{ kind = "random_walk", start = {rng.randint(5, 60)}, step = 15, '
                f"interval_s = {step_s} }}"
            )
        lines.append(f"net_rx = {rng.randint(1, 40)}")
        lines.append(f"net_tx = {rng.randint(1, 40)}")
    return "\n".join(lines) + "\n"


class SimCluster:
    """Writes the files of a simulated cluster under `workdir` and runs its agents."""

    def __init__(self, spec: SimClusterSpec, workdir: Path) -> None:
        self.spec = spec
        self.workdir = workdir
        self.processes: list[subprocess.Popen[bytes]] = []
        workdir.mkdir(parents=True, exist_ok=True)
        rng = random.Random(spec.seed)
        self.node_vms: dict[str, list[SimVm]] = {}
        for n in range(1, spec.nodes + 1):
            node = f"{spec.cluster_id}-n{n}"
            self.node_vms[node] = [
                SimVm(
                    f"{node}-vm{i}",
                    vcpus=1,
                    memory_mib=rng.choice((512, 1024, 2048)),
                )
                for i in range(1, spec.vms_per_node + 1)
            ]
        all_vms = [vm for vms in self.node_vms.values() for vm in vms]
        self.load_table = _load_table(all_vms, trace_files(), spec.step_s, spec.seed)

    def write(self, manager: str) -> list[Path]:
        configs = []
        for node, vms in self.node_vms.items():
            xml = self.workdir / f"{node}.xml"
            xml.write_text(
                node_xml(vms, cpus=self.spec.node_cpus, memory_mib=self.spec.node_memory_mib)
            )
            config = self.workdir / f"{node}.toml"
            config.write_text(
                f'node_id = "{node}"\n'
                f'libvirt_uri = "test://{xml.resolve()}"\n'
                f'manager = "{manager}"\n'
                "report_period_s = 1.0\nheartbeat_period_s = 1.0\ninsecure = true\n"
                + self.load_table
            )
            configs.append(config)
        return configs

    def start(self, manager: str, metrics: bool = False) -> None:
        """Start one agent per node; with `metrics`, each serves /metrics on a free port."""
        for config in self.write(manager):
            self.processes.append(self._spawn(config, "127.0.0.1:0" if metrics else ""))

    def _spawn(self, config: Path, metrics_listen: str) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "vmgrid.agents.node.main", "--config", str(config)]
        if metrics_listen:
            url_file = self._metrics_url_file(config.stem)
            url_file.unlink(missing_ok=True)
            command += ["--metrics-listen", metrics_listen, "--metrics-url-file", str(url_file)]
        with (self.workdir / f"{config.stem}.log").open("ab") as log:
            return subprocess.Popen(command, stdout=log, stderr=log)

    def kill(self, node: str) -> None:
        """SIGKILL the agent of `node`: the simulated node fails (its test driver state is gone)."""
        process = self.processes[list(self.node_vms).index(node)]
        process.kill()
        process.wait()

    def restart(self, node: str, leftovers: Mapping[str, str] | None = None) -> None:
        """Start `node`'s agent again, on the metrics port it had (so its URL stays valid).

        `leftovers` (VM name -> uuid) are written into the node file as running domains: what a
        host that comes back still holds of VMs that were restarted elsewhere meanwhile.
        """
        index = list(self.node_vms).index(node)
        if self.processes[index].poll() is None:
            raise RuntimeError(f"the agent of {node} is still running; kill it first")
        xml = self.workdir / f"{node}.xml"
        vms = self.node_vms[node]
        text = node_xml(vms, cpus=self.spec.node_cpus, memory_mib=self.spec.node_memory_mib)
        for offset, (name, vm_uuid) in enumerate(sorted((leftovers or {}).items())):
            domain = domain_xml(SimVm(name), len(vms) + offset)
            text = text.replace("</node>", domain.replace(SimVm(name).uuid, vm_uuid) + "</node>")
        xml.write_text(text)
        listen = ""
        url_file = self._metrics_url_file(node)
        if url_file.exists():
            listen = f"127.0.0.1:{urlsplit(url_file.read_text().strip()).port}"
        self.processes[index] = self._spawn(self.workdir / f"{node}.toml", listen)

    def _metrics_url_file(self, node: str) -> Path:
        return self.workdir / f"{node}.metrics-url"

    async def metrics_urls(self, timeout_s: float = 30.0) -> list[str]:
        """Each agent's /metrics URL, waiting for agents started with ``metrics=True``."""
        deadline = time.monotonic() + timeout_s
        files = [self._metrics_url_file(node) for node in self.node_vms]
        while not all(f.exists() for f in files):
            if time.monotonic() > deadline:
                missing = [f.name for f in files if not f.exists()]
                raise RuntimeError(f"agents did not report their metrics URL: {missing}")
            await asyncio.sleep(0.1)
        return [f.read_text().strip() for f in files]

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
