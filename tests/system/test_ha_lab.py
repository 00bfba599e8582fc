"""Issue #7 on the real lab: host failure, group submission with its seed ISO, partition.

A real `vmgrid-cluster` (jobs on, storage in the lab's guest directory that every host reads)
and one `vmgrid-agent` per lab host. Each test starts its own manager and agents and stops
them; the lab itself is the session fixture. Placement is read from each host's libvirt.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest
from vmgrid.agents.jobmodel import codec as jobs_codec
from vmgrid.agents.jobmodel.seed import read_seed_iso
from vmgrid.bench.failover import HaLab, base_image, job_document, kill_and_measure, wait
from vmgrid.lab import Lab
from vmgrid.v1 import common_pb2

pytestmark = [pytest.mark.system, pytest.mark.slow]


@pytest.fixture
def ha_lab(lab: Lab, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[HaLab]:
    flags: tuple[str, ...] = getattr(request, "param", ())
    ha = HaLab(lab, lab.hosts(), tmp_path / "procs", *flags)
    ha.start()
    try:
        yield ha
    finally:
        ha.stop()
        for host in ha.dead:
            lab.restart_host(host)
        _remove_domains(lab)


def _remove_domains(lab: Lab) -> None:
    for host in lab.hosts():
        with contextlib.closing(host.connect()) as conn:
            for dom in conn.listAllDomains():
                if not dom.name().startswith(("ha", "grp", "part")):
                    continue
                with contextlib.suppress(libvirt.libvirtError):
                    if dom.isActive():
                        dom.destroy()
                with contextlib.suppress(libvirt.libvirtError):
                    dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)


def _job_dir(lab: Lab, job: common_pb2.Job) -> Path:
    return lab.guest_dir / f"job-{job.job_id}"


def test_a_killed_hosts_guests_run_elsewhere_from_their_checkpoint(lab: Lab, ha_lab: HaLab) -> None:
    job = ha_lab.submit(job_document("ha", len(ha_lab.hosts), base_image(lab)))
    assert job.state == common_pb2.JOB_STATE_RUNNING, job.message
    checkpoint = ha_lab.checkpoint(job.job_id)

    result = kill_and_measure(ha_lab, job, timeout_s=60)

    assert result["restarted"] == 1
    assert result["lost_vms"] == 0 and result["duplicated_vms"] == 0
    moved = next(
        m for m, h in jobs_codec.placement_of(job.message).items() if h == result["killed_host"]
    )
    overlay = _job_dir(lab, job) / f"{moved}.qcow2"
    listing = subprocess.run(
        ["qemu-img", "snapshot", "-U", "-l", str(overlay)], capture_output=True, text=True
    )
    assert checkpoint in listing.stdout  # the shared disk it rebooted from holds the checkpoint


def test_a_group_lands_in_one_cluster_configured_by_its_seed_iso(lab: Lab, ha_lab: HaLab) -> None:
    job = ha_lab.submit(job_document("grp", 2, base_image(lab)))
    assert job.state == common_pb2.JOB_STATE_RUNNING, job.message
    placement = jobs_codec.placement_of(job.message)
    assert len(set(placement.values())) == 2  # spread
    running = ha_lab.running()
    for member, host in placement.items():
        assert running[(member, host)] == 1
        seed = read_seed_iso(_job_dir(lab, job) / f"{member}.iso")
        assert seed.volume_id.lower() == "cidata"
        config = seed.cloud_config()
        assert config["hostname"] == member
        user = config["users"][0]
        assert user["name"] == "bench" and user["ssh_authorized_keys"][0].startswith("ssh-ed25519")
        assert any("/home/shared" in mount for mount in config["mounts"])


@pytest.mark.parametrize("ha_lab", [("--fence-command=false",)], indirect=True)
def test_a_partitioned_host_without_fencing_restarts_nothing(lab: Lab, ha_lab: HaLab) -> None:
    job = ha_lab.submit(job_document("part", len(ha_lab.hosts), base_image(lab)))
    assert job.state == common_pb2.JOB_STATE_RUNNING, job.message
    placement = jobs_codec.placement_of(job.message)
    victim = placement["part-0"]
    agent = ha_lab.freeze_agent(victim)
    try:
        time.sleep(3.0 + 5.0)  # heartbeat timeout, then several failure-handling passes
        copies = ha_lab.copies(sorted(placement))
        assert copies == {m: 1 for m in placement}
        assert ha_lab.running()[("part-0", victim)] == 1  # still where it was, only there
    finally:
        agent.send_signal(signal.SIGCONT)
    wait(lambda: ha_lab.copies(sorted(placement)) == {m: 1 for m in placement}, 10, "steady")
