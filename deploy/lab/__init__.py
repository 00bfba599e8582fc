"""The local KVM lab: several real libvirt/QEMU hosts on one machine, for system tests and
benchmarks that need real guests and real live migration."""

from vmgrid.lab.access import hypervisor_unavailable_reason, kvm_works
from vmgrid.lab.errors import LabError
from vmgrid.lab.guests import (
    create_boot_disk,
    create_overlay,
    define_and_start,
    make_guest_xml,
)
from vmgrid.lab.host import LabHost
from vmgrid.lab.lab import Lab
from vmgrid.lab.taps import create_tap, delete_tap
from vmgrid.lab.waiting import wait_until

__all__ = [
    "Lab",
    "LabError",
    "LabHost",
    "create_boot_disk",
    "create_overlay",
    "create_tap",
    "define_and_start",
    "delete_tap",
    "hypervisor_unavailable_reason",
    "kvm_works",
    "make_guest_xml",
    "wait_until",
]
