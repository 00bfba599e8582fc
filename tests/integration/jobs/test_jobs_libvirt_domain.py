"""A submitted member's domain XML is accepted and started by libvirt's test driver."""

from __future__ import annotations

import base64
import struct
from pathlib import Path

import libvirt
from vmgrid.agents.jobmodel import parse_job
from vmgrid.agents.jobmodel.seed import domain_xml, read_seed_iso, write_seed_iso


def _key() -> str:
    blob = struct.pack(">I", 11) + b"ssh-ed25519" + struct.pack(">I", 32) + bytes(32)
    return "ssh-ed25519 " + base64.b64encode(blob).decode()


def test_a_member_domain_defines_and_starts_on_the_test_driver(tmp_path: Path) -> None:
    spec = parse_job(
        {
            "name": "grp",
            "count": 2,
            "image": "/img/base.qcow2",
            "memory_mib": 256,
            "ssh_key": _key(),
            "nfs": ["fs:/export /mnt/share"],
        }
    )
    seed = write_seed_iso(spec, "grp-1", "job-grp-1", tmp_path / "grp-1.iso")
    xml = domain_xml(
        spec,
        "grp-1",
        overlay_path=tmp_path / "grp-1.qcow2",
        seed_path=seed,
        domain_type="test",
        job_id="job",
    )
    conn = libvirt.open("test:///default")
    try:
        dom = conn.defineXML(xml)
        dom.create()
        assert dom.isActive() == 1
        assert dom.maxMemory() == 256 * 1024
        assert str(seed) in dom.XMLDesc()
        dom.destroy()
        dom.undefine()
    finally:
        conn.close()
    assert read_seed_iso(seed).cloud_config()["mounts"][0][:2] == ["fs:/export", "/mnt/share"]
