"""Pure parts of the lab's guest network, NFS server and Linux guests."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from vmgrid.lab import LabError
from vmgrid.lab.host import qemu_conf
from vmgrid.lab.linux import BUILD_SCRIPT, guest_image, make_key
from vmgrid.lab.network import GuestNetwork, helper_path
from vmgrid.lab.nfs import ganesha_conf


def test_network_addresses_and_what_members_join(tmp_path: Path) -> None:
    net = GuestNetwork("vmglb0123abcd", "10.213.7.0/24", str(tmp_path))
    assert net.host_address == "10.213.7.1"
    assert net.domain_network == "bridge:vmglb0123abcd"
    assert net.to_json()["leases"] == str(tmp_path / "leases")


def test_leases_map_macs_to_addresses_and_skip_broken_lines(tmp_path: Path) -> None:
    net = GuestNetwork("vmglb0123abcd", "10.213.7.0/24", str(tmp_path))
    assert net.leases() == {}  # no lease file yet
    net.leases_file.write_text(
        "1796275437 52:54:00:3C:C8:24 10.213.7.79 sub-1 01:52:54:00:3c:c8:24\n"
        "garbage\n"
        "1796275437 52:54:00:89:46:75 10.213.7.72 * *\n"
    )
    assert net.leases() == {"52:54:00:3c:c8:24": "10.213.7.79", "52:54:00:89:46:75": "10.213.7.72"}


def test_hosts_use_the_labs_bridge_helper() -> None:
    helper = helper_path(Path("/tmp/lab"))
    conf = qemu_conf(49200, 49215, helper)
    assert 'bridge_helper = "/tmp/lab/network/qemu-bridge-helper"' in conf
    assert "bridge_helper" not in qemu_conf(49200, 49215)


def test_ganesha_serves_the_bridge_address_and_subnet_only() -> None:
    conf = ganesha_conf("10.213.7.1", "10.213.7.0/24", Path("/l/nfs/export"), Path("/l/rec"))
    assert "Bind_addr = 10.213.7.1;" in conf
    assert "Clients = 10.213.7.0/24;" in conf
    assert "Access_Type = None;" in conf  # default for anyone not in the CLIENT block
    assert 'Path = "/l/nfs/export";' in conf and "Pseudo = /export;" in conf
    assert "Graceless = true;" in conf and "Only_Numeric_Owners = true;" in conf
    assert conf.count("{") == conf.count("}")


def test_guest_image_path_is_named_by_the_recipe_hash() -> None:
    printed = subprocess.run(
        [str(BUILD_SCRIPT), "--print-path"], capture_output=True, text=True, check=True
    ).stdout.strip()
    name = Path(printed).name
    assert name.startswith("debian-") and name.endswith(".qcow2")
    assert len(name.removeprefix("debian-").removesuffix(".qcow2")) == 12
    if Path(printed).is_file():
        assert guest_image() == Path(printed)
    else:
        with pytest.raises(LabError, match="make guest-image"):
            guest_image()


def test_build_script_refuses_an_unknown_argument() -> None:
    result = subprocess.run(
        [str(BUILD_SCRIPT), "--fast"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "unknown argument '--fast'" in result.stderr


def test_made_keys_are_an_ed25519_pair(tmp_path: Path) -> None:
    private, public = make_key(tmp_path)
    assert private.is_file() and public.startswith("ssh-ed25519 ")
