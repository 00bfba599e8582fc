"""A job submitted with `vmgridctl submit` boots Debian guests that its user logs into.

The lab's guest network and NFS server, a real `vmgrid-cluster` with jobs on and one
`vmgrid-agent` per lab host (see `vmgrid.bench.submission`). A 2-member spread group with an
SSH key and an NFS mount: each member is reached over SSH with that key as that user, has
passwordless sudo, reads a file the host wrote in the export and writes one the host then
sees, and reaches the other member. Prints the measured figures as JSON.

Needs the Debian guest image (`make guest-image`); under TCG (this machine's KVM runs only
PVM guest kernels) the boots take minutes, hence the `slow` mark and the long bound.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from vmgrid.bench.submission import USER, SubmissionLab
from vmgrid.lab import Lab

pytestmark = [pytest.mark.system, pytest.mark.slow]

TIMEOUT_S = 900.0


@pytest.fixture
def submission_lab(lab: Lab, tmp_path: Path) -> Iterator[SubmissionLab]:
    sub = SubmissionLab(lab, lab.hosts(), tmp_path)
    sub.start()
    try:
        yield sub
    finally:
        sub.stop()


@pytest.mark.timeout(TIMEOUT_S + 300)
def test_a_submitted_group_is_reachable_by_its_user_with_the_nfs_share(
    submission_lab: SubmissionLab,
) -> None:
    result = submission_lab.submit_and_reach(2, TIMEOUT_S)
    print(json.dumps(result, sort_keys=True))
    checks = result["checks"]
    assert [c["name"] for c in checks] == ["sub-0", "sub-1"]
    assert len({c["host"] for c in checks}) == 2  # spread: one member per host
    for check in checks:
        assert check["user"] == USER
        assert check["sudo_uid"] == "0"
        assert check["read_from_host"] == f"host wrote this for {check['name']}"
        assert check["host_sees"] == f"{check['name']} wrote this"
        others = [c["address"] for c in checks if c is not check]
        assert check["peers_reached"] == others
    exported = sorted(p.name for p in submission_lab.server.export_dir.iterdir())
    assert "from-sub-0" in exported and "from-sub-1" in exported
    # each member's serial console is kept beside its overlay, for a guest that stops answering
    members = submission_lab.member_domains([c["name"] for c in checks])
    for name, (_host, dom) in sorted(members.items()):
        log = ET.fromstring(dom.XMLDesc()).find("devices/serial/log")
        assert log is not None, name
        console = Path(log.get("file", "")).read_text(errors="replace")
        assert f"{name} login:" in console, console[-600:]  # the guest's getty on ttyS0
