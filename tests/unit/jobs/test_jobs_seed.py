"""The cloud-init seed ISO read back holds the key, the user, the NFS mounts and the hostname."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from jobs_builders import job, ssh_key
from vmgrid.agents.jobmodel import JobSpec, SeedError, parse_job
from vmgrid.agents.jobmodel.seed import (
    cdrom_disk_xml,
    domain_xml,
    read_seed_iso,
    seed_iso_bytes,
    write_seed_iso,
)


def spec(**overrides: object) -> JobSpec:
    base: dict[str, object] = {
        "image": "/img/base.qcow2",
        "nfs": [{"source": "fs1:/export/home", "mountpoint": "/home/shared"}],
    }
    return parse_job(job(**{**base, **overrides}))


def test_the_seed_read_back_has_key_user_nfs_and_hostname(tmp_path: Path) -> None:
    path = write_seed_iso(spec(), "mpi-1", "job42-mpi-1", tmp_path / "seed.iso")
    content = read_seed_iso(path)
    assert content.volume_id == "cidata"
    assert set(content.files) == {"user-data", "meta-data"}
    config = content.cloud_config()
    assert config["hostname"] == "mpi-1"
    (user,) = config["users"]
    assert user["name"] == "alice" and user["ssh_authorized_keys"] == [ssh_key()]
    assert config["mounts"] == [
        ["fs1:/export/home", "/home/shared", "nfs", "defaults,_netdev", "0", "0"]
    ]
    assert config["packages"] == ["nfs-common"]
    assert "instance-id: job42-mpi-1" in content.files["meta-data"]
    assert "local-hostname: mpi-1" in content.files["meta-data"]


def test_without_nfs_no_mounts_nor_packages() -> None:
    config = read_seed_iso(seed_iso_bytes(spec(nfs=[]), "mpi-0", "i")).cloud_config()
    assert "mounts" not in config and "packages" not in config


def test_garbage_is_not_a_seed() -> None:
    with pytest.raises(SeedError):
        read_seed_iso(b"\0" * 4096)


def test_cdrom_xml_attaches_the_iso_read_only() -> None:
    disk = ET.fromstring(cdrom_disk_xml("/var/lib/vmgrid/seeds/a.iso"))
    assert disk.get("device") == "cdrom"
    assert disk.find("source").get("file") == "/var/lib/vmgrid/seeds/a.iso"  # type: ignore[union-attr]
    assert disk.find("readonly") is not None


@pytest.mark.parametrize("domain_type", ["kvm", "test"])
def test_domain_xml_has_overlay_on_backing_file_and_seed(domain_type: str) -> None:
    xml = domain_xml(
        spec(memory_mib=512, vcpus=2),
        "mpi-0",
        overlay_path="/o/mpi-0.qcow2",
        seed_path="/s/mpi-0.iso",
        domain_type=domain_type,
    )
    dom = ET.fromstring(xml)
    assert dom.get("type") == domain_type
    assert dom.findtext("name") == "mpi-0" and dom.findtext("vcpu") == "2"
    assert dom.findtext("memory") == "512"
    disk = dom.find("devices/disk[@device='disk']")
    assert disk is not None
    assert disk.find("source").get("file") == "/o/mpi-0.qcow2"  # type: ignore[union-attr]
    assert disk.find("backingStore/source").get("file") == "/img/base.qcow2"  # type: ignore[union-attr]
    assert dom.find("devices/disk[@device='cdrom']/source").get("file") == "/s/mpi-0.iso"  # type: ignore[union-attr]
    logs = [log.get("file") for log in dom.iterfind("devices/serial/log")]
    assert logs == ([] if domain_type == "test" else ["/o/mpi-0.console.log"])


def test_domain_xml_refuses_a_non_member_and_an_unknown_type() -> None:
    with pytest.raises(SeedError, match="not a member"):
        domain_xml(spec(), "other", overlay_path="/o", seed_path="/s")
    with pytest.raises(SeedError, match="domain type 'xen'"):
        domain_xml(spec(), "mpi-0", overlay_path="/o", seed_path="/s", domain_type="xen")


@pytest.mark.parametrize(
    ("network", "kind", "attribute", "value"),
    [("default", "network", "network", "default"), ("bridge:br0", "bridge", "bridge", "br0")],
)
def test_domain_xml_joins_a_libvirt_network_or_a_host_bridge(
    network: str, kind: str, attribute: str, value: str
) -> None:
    xml = domain_xml(spec(), "mpi-0", overlay_path="/o", seed_path="/s", network=network)
    nics = ET.fromstring(xml).findall("devices/interface")
    assert [nic.get("type") for nic in nics] == [kind]
    assert nics[0].find("source").get(attribute) == value  # type: ignore[union-attr]
    assert nics[0].find("model").get("type") == "virtio"  # type: ignore[union-attr]


def test_domain_xml_without_network_has_no_nic_and_refuses_an_empty_bridge() -> None:
    xml = domain_xml(spec(), "mpi-0", overlay_path="/o", seed_path="/s")
    assert ET.fromstring(xml).findall("devices/interface") == []
    with pytest.raises(SeedError, match="'bridge:'"):
        domain_xml(spec(), "mpi-0", overlay_path="/o", seed_path="/s", network="bridge:")
