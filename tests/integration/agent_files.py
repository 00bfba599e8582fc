"""A test-driver agent for integration tests: its node XML, its TOML config, its process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from vmgrid.agents.node.testnode import SimVm, node_xml

IDLE = '{ cpu = { kind = "constant", value = 5 } }'
"""Every VM at 5 % of its vCPUs."""


def idle_pair(node: str) -> list[SimVm]:
    """Two 1-vCPU, 1 GiB VMs named after the node."""
    return [SimVm(f"{node}-vm{i}", vcpus=1, memory_mib=1024) for i in range(2)]


def write_agent_config(
    workdir: Path,
    node: str,
    address: str,
    vms: list[SimVm],
    *,
    load: str = IDLE,
    report_period_s: float = 0.5,
    stem: str = "",
) -> Path:
    """`stem`.xml (a 4-CPU, 8 GiB node holding `vms`) and `stem`.toml (an agent of `node`
    reporting to `address` in plaintext, every VM with the `load` profile); `stem` defaults to
    the node id. Returns the TOML path."""
    stem = stem or node
    xml = workdir / f"{stem}.xml"
    xml.write_text(node_xml(vms, cpus=4, memory_mib=8192))
    config = workdir / f"{stem}.toml"
    config.write_text(
        f'node_id = "{node}"\nlibvirt_uri = "test://{xml.resolve()}"\nmanager = "{address}"\n'
        f"report_period_s = {report_period_s}\nheartbeat_period_s = 0.5\ninsecure = true\n"
        f"[load]\ndefault = {load}\n"
    )
    return config


def start_agent(config: Path, log: Path) -> subprocess.Popen[bytes]:
    """A `vmgrid-agent` process on `config`, its output appended to `log`."""
    with log.open("ab") as out:
        argv = [sys.executable, "-m", "vmgrid.agents.node.main", "--config", str(config)]
        return subprocess.Popen(argv, stdout=out, stderr=out)
