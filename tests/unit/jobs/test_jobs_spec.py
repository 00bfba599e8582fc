"""Job spec parsing: valid jobs round-trip; every bad value is refused naming its field."""

from __future__ import annotations

from pathlib import Path

import pytest
from jobs_builders import job, ssh_key
from vmgrid.agents.jobmodel import JobSpecError, NodeSize, SpecContext, load_job, parse_job

CTX = SpecContext(
    images={"debian-12": "/var/lib/vmgrid/images/debian-12.qcow2"},
    largest_node=NodeSize(cpu_millicores=8000, memory_mib=8192, network_mbps=1000),
    known_nodes=frozenset({"n0", "n1", "n2", "n3"}),
)


def test_a_valid_group_is_parsed_with_members_and_resolved_image() -> None:
    spec = parse_job(job(ha_priority=5, snapshot={"interval": "30m", "retention": 4}), CTX)
    assert spec.members == ("mpi-0", "mpi-1", "mpi-2")
    assert spec.backing_file == "/var/lib/vmgrid/images/debian-12.qcow2"
    assert spec.cpu_millicores == 1000
    assert spec.snapshot is not None and spec.snapshot.interval_s == 1800
    assert spec.ha_priority == 5


def test_explicit_members_and_nfs_shares() -> None:
    spec = parse_job(
        job(
            count=None,
            members=["head", "w1"],
            nfs=["fs1:/export/home /home/shared", {"source": "fs2:/data", "mountpoint": "/data"}],
        ),
        CTX,
    )
    assert spec.members == ("head", "w1")
    assert [m.source for m in spec.nfs] == ["fs1:/export/home", "fs2:/data"]
    assert spec.nfs[0].mountpoint == "/home/shared"


@pytest.mark.parametrize("kind", ["ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256"])
def test_each_accepted_key_type_is_valid(kind: str) -> None:
    assert parse_job(job(ssh_key=ssh_key(kind)), CTX).ssh_key.startswith(kind)


def test_the_spec_round_trips_through_its_dict() -> None:
    spec = parse_job(
        job(placement={"spread": True, "ban": ["n3"]}, nfs=["fs:/x /mnt/x"]),
        CTX,
    )
    assert parse_job(spec.to_dict()) == spec


def test_a_single_vm_is_named_after_the_job() -> None:
    assert parse_job(job(count=1), CTX).members == ("mpi",)


BAD = [
    ("name", {"name": "Bad_Name"}),
    ("image", {"image": "ubuntu-99"}),
    ("image", {"image": "/images/disk.raw"}),
    ("memory_mib", {"memory_mib": 65536}),
    ("memory_mib", {"memory_mib": "2G"}),
    ("memory_mib", {"memory_mib": None}),
    ("vcpus", {"vcpus": 0}),
    ("cpu_millicores", {"cpu_millicores": 9000, "vcpus": 8}),
    ("bandwidth_mbps", {"bandwidth_mbps": 5000}),
    ("memory_mib", {"memory_mib": 4096, "placement": {"gather": True}}),
    ("count", {"count": 0}),
    ("members", {"members": ["a", "a"], "count": None}),
    ("members", {"members": ["a"]}),
    ("placement", {"placement": {"spread": True, "gather": True}}),
    ("placement.fence", {"placement": {"fence": ["n1"], "ban": ["n1"]}}),
    ("placement.fence", {"placement": {"spread": True, "fence": ["n0", "n1"]}}),
    ("placement.ban", {"placement": {"ban": ["n9"]}}),
    ("placement.spread", {"placement": {"spread": "yes"}}),
    ("count", {"count": 5, "placement": {"spread": True}}),
    ("ssh_key", {"ssh_key": "ssh-dss AAAAB3NzaC1kc3M= me"}),
    ("ssh_key", {"ssh_key": "ssh-ed25519 not-base64!! me"}),
    ("ssh_key", {"ssh_key": ssh_key("ssh-rsa").replace("ssh-rsa", "ssh-ed25519", 1)}),
    ("ssh_key", {"ssh_key": None}),
    ("user", {"user": "Root!"}),
    ("nfs[0].source", {"nfs": [{"source": "fs1-no-colon", "mountpoint": "/m"}]}),
    ("nfs[0].source", {"nfs": [{"source": "fs1:relative", "mountpoint": "/m"}]}),
    ("nfs[0].mountpoint", {"nfs": [{"source": "fs1:/x", "mountpoint": "relative"}]}),
    ("nfs[0]", {"nfs": ["just-one-word"]}),
    ("nfs[1].mountpoint", {"nfs": ["fs:/a /m", "fs:/b /m"]}),
    ("snapshot.interval", {"snapshot": {"interval": "10s", "retention": 2}}),
    ("snapshot.retention", {"snapshot": {"interval": "1h", "retention": 0}}),
    ("ha_priority", {"ha_priority": -1}),
    ("colour", {"colour": "blue"}),
]


@pytest.mark.parametrize(
    ("field", "overrides"), BAD, ids=[f"{f}-{i}" for i, (f, _) in enumerate(BAD)]
)
def test_a_bad_value_is_refused_naming_its_field(field: str, overrides: dict[str, object]) -> None:
    with pytest.raises(JobSpecError) as info:
        parse_job(job(**overrides), CTX)
    assert info.value.field == field
    assert repr(field) in str(info.value)
    assert "\n" not in str(info.value)


def test_a_toml_file_is_loaded(tmp_path: Path) -> None:
    path = tmp_path / "job.toml"
    path.write_text(
        'name = "web"\nimage = "/img/base.qcow2"\nmemory_mib = 512\n'
        f'ssh_key = "{ssh_key()}"\n[placement]\nfence = ["n0", "n1"]\n'
        '[[nfs]]\nsource = "fs:/srv"\nmountpoint = "/srv"\n'
    )
    spec = load_job(path, CTX)
    assert spec.members == ("web",) and spec.placement.fence == ("n0", "n1")


def test_a_broken_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "job.toml"
    path.write_text("name = ")
    with pytest.raises(JobSpecError, match="not valid TOML"):
        load_job(path, CTX)
    with pytest.raises(JobSpecError, match="accepted: a .toml or .json file"):
        load_job(tmp_path / "job.yaml", CTX)
