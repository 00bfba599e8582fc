"""Node XML for libvirt's test driver: a simulated host with a few domains.

``libvirt.open("test:///abs/path/node.xml")`` gives a private in-memory hypervisor holding
what the file describes. Demos, tests and benchmarks generate such files here rather than
keep dozens of near-identical copies. Run ``python -m vmgrid.agents.node.testnode --help``.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape  # xml.sax.saxutils pulls in urllib.request and http.client
from pathlib import Path

_NAMESPACE = uuid.UUID("6f2b7c1e-0d7a-4d0e-9a5e-7d1c3b9e2a10")
_SHUTOFF = 5


@dataclass(frozen=True)
class SimVm:
    """One domain of a test node; ``running`` False defines it shut off."""

    name: str
    vcpus: int = 1
    memory_mib: int = 512
    running: bool = True

    @property
    def uuid(self) -> str:
        """Derived from the name, so that a regenerated file keeps the same UUIDs."""
        return str(uuid.uuid5(_NAMESPACE, self.name))


def domain_xml(vm: SimVm, index: int = 0) -> str:
    """Domain XML accepted by both the test driver's node file and ``defineXML``."""
    runstate = "" if vm.running else f"\n    <test:runstate>{_SHUTOFF}</test:runstate>"
    mac = f"52:54:00:{(index >> 16) & 0xFF:02x}:{(index >> 8) & 0xFF:02x}:{index & 0xFF:02x}"
    return f"""  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>{escape(vm.name)}</name>
    <uuid>{vm.uuid}</uuid>
    <memory unit='MiB'>{vm.memory_mib}</memory>
    <currentMemory unit='MiB'>{vm.memory_mib}</currentMemory>
    <vcpu>{vm.vcpus}</vcpu>
    <os><type arch='x86_64'>hvm</type></os>
    <devices>
      <interface type='network'><mac address='{mac}'/><source network='default'/></interface>
    </devices>{runstate}
  </domain>
"""


def node_xml(vms: Sequence[SimVm], cpus: int = 32, memory_mib: int = 131072) -> str:
    """A whole test-driver node: its CPU and memory, then its domains."""
    domains = "".join(domain_xml(vm, index) for index, vm in enumerate(vms))
    return f"""<node>
  <cpu>
    <nodes>1</nodes><sockets>1</sockets><cores>{cpus}</cores><threads>1</threads>
    <mhz>2400</mhz><model>x86_64</model>
  </cpu>
  <memory>{memory_mib * 1024}</memory>
{domains}</node>
"""


def generated_vms(prefix: str, count: int, stopped: int = 0) -> list[SimVm]:
    """``count`` VMs named ``<prefix>-001``...; the last ``stopped`` of them shut off."""
    return [
        SimVm(
            name=f"{prefix}-{i:03d}",
            vcpus=1 + i % 4,
            memory_mib=256 * (1 + i % 8),
            running=i <= count - stopped,
        )
        for i in range(1, count + 1)
    ]


def write_node_xml(path: Path, prefix: str, count: int, stopped: int = 0, cpus: int = 32) -> Path:
    """Write a generated node file and return its absolute path (for a test:/// URI)."""
    path = path.resolve()
    path.write_text(node_xml(generated_vms(prefix, count, stopped), cpus=cpus))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a libvirt test-driver node XML.")
    parser.add_argument("output", type=Path, help="file to write")
    parser.add_argument("--prefix", default="vm", help="VM name prefix (unique per node)")
    parser.add_argument("--vms", type=int, default=4, help="number of domains")
    parser.add_argument("--stopped", type=int, default=0, help="how many of them are shut off")
    parser.add_argument("--cpus", type=int, default=32, help="host CPUs")
    args = parser.parse_args(argv)
    if args.vms < 0 or not 0 <= args.stopped <= args.vms or args.cpus < 1:
        parser.error("--vms and --cpus must be positive and --stopped between 0 and --vms")
    path = write_node_xml(args.output, args.prefix, args.vms, args.stopped, args.cpus)
    print(f"test://{path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
