"""Fixtures for system tests on the real KVM lab (see docs/lab.md).

`lab` is one 3-host lab for the whole session, always stopped at the end, even on failure.
`lab_guests` starts tiny guests on it and destroys and undefines them after each test.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import libvirt
import pytest
from vmgrid.lab import (
    Lab,
    LabHost,
    create_boot_disk,
    define_and_start,
    hypervisor_unavailable_reason,
    kvm_works,
    make_guest_xml,
)

LAB_HOSTS = 3

GuestFactory = Callable[..., libvirt.virDomain]


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    reason = hypervisor_unavailable_reason()
    if reason is not None:
        pytest.skip(f"no KVM and no TCG here: {reason}")
    directory = Path(tempfile.mkdtemp(prefix="vmgrid-lab-test-", dir="/tmp"))
    directory.chmod(0o755)
    the_lab = Lab(directory)
    try:
        the_lab.start(LAB_HOSTS)
        if kvm_works() and not the_lab.kvm:
            pytest.fail(
                "this machine has a working /dev/kvm but the lab's guests fell back to TCG "
                "(see the lab's warnings above: the lab user could not be given the device)"
            )
        yield the_lab
    finally:
        the_lab.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def lab_guests(lab: Lab) -> Iterator[GuestFactory]:
    """`start(host, name, mode='spin', disk=None, **xml_options)` -> running domain."""
    started: list[tuple[LabHost, str]] = []

    def start(
        host: LabHost, name: str, mode: str = "spin", disk: Path | None = None, **options: object
    ) -> libvirt.virDomain:
        if disk is None:
            disk = create_boot_disk(lab.guest_dir / f"{name}.raw", mode)
        options.setdefault("kvm", lab.kvm)
        started.append((host, name))
        return define_and_start(host, make_guest_xml(name, mode=mode, disk=disk, **options))

    yield start
    for host in lab.hosts():
        with contextlib.closing(host.connect()) as conn:
            for _, name in started:
                _remove_domain(conn, name)


def _remove_domain(conn: libvirt.virConnect, name: str) -> None:
    try:
        domain = conn.lookupByName(name)
    except libvirt.libvirtError:
        return
    with contextlib.suppress(libvirt.libvirtError):
        if domain.isActive():
            domain.destroy()
    with contextlib.suppress(libvirt.libvirtError):
        domain.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
