"""`vmgrid-lab etcd-start` / `etcd-stop`: a detached etcd cluster for the lab and the demo,
ended by its pid files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from vmgrid.lab import etcd
from vmgrid.lab.etcd import healthy
from vmgrid.lab.main import main


def test_etcd_start_runs_members_until_etcd_stop_ends_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["etcd-start", "--members", "1", "--dir", str(tmp_path), "--json"]) == 0
    started = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    try:
        assert healthy(started["endpoints"][0])
        assert (tmp_path / "etcd" / "endpoints").read_text().strip() == started["endpoints"][0]
        assert main(["etcd-start", "--dir", str(tmp_path)]) == 2
        assert "etcd already runs in" in capsys.readouterr().err
    finally:
        assert main(["etcd-stop", "--dir", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip())["stopped"] == 1
    assert etcd.running_members(tmp_path / "etcd") == []
    assert not healthy(started["endpoints"][0])
