"""PrepareDisks on the agent: real qemu-img, idempotent by effect, one-line failures."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from vmgrid.agents import model as m
from vmgrid.agents.common import node_codec as agent_codec
from vmgrid.agents.common import node_codec as cluster_codec
from vmgrid.agents.node.disks import prepare_disks
from vmgrid.agents.node.hypervisor import HypervisorError

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="needs qemu-img")


@pytest.fixture
def base(tmp_path: Path) -> Path:
    path = tmp_path / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "16M"], check=True)
    return path


def command(tmp_path: Path, base: Path, iso: bytes = b"ISO-1") -> m.PrepareDisksCommand:
    job = tmp_path / "local" / "job-j1"
    return m.PrepareDisksCommand("c1", str(job / "a.qcow2"), str(base), str(job / "a.iso"), iso)


def test_overlay_is_backed_by_the_image_and_seed_holds_the_bytes(
    tmp_path: Path, base: Path
) -> None:
    cmd = command(tmp_path, base)
    assert "created" in prepare_disks(cmd)
    info = subprocess.run(
        ["qemu-img", "info", "--output=json", cmd.overlay_path],
        check=True,
        capture_output=True,
        text=True,
    )
    assert json.loads(info.stdout)["backing-filename"] == str(base)
    assert Path(cmd.seed_path).read_bytes() == b"ISO-1"


def test_a_second_run_keeps_the_overlay_and_rewrites_only_a_changed_seed(
    tmp_path: Path, base: Path
) -> None:
    cmd = command(tmp_path, base)
    prepare_disks(cmd)
    overlay = Path(cmd.overlay_path)
    before = overlay.stat().st_mtime_ns
    again = prepare_disks(cmd)
    assert "kept" in again and "unchanged" in again
    assert "written" in prepare_disks(command(tmp_path, base, b"ISO-2"))
    assert Path(cmd.seed_path).read_bytes() == b"ISO-2"
    assert overlay.stat().st_mtime_ns == before
    assert not list(overlay.parent.glob("*.tmp"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"overlay_path": "rel/a.qcow2"}, "overlay_path 'rel/a.qcow2' is not absolute"),
        ({"backing_file": "/nowhere/base.qcow2"}, "'/nowhere/base.qcow2' is not a file"),
        ({"seed_iso": b""}, "is empty; send the ISO bytes"),
    ],
)
def test_bad_values_fail_with_one_line_naming_them(
    tmp_path: Path, base: Path, change: dict[str, object], message: str
) -> None:
    bad = dataclasses.replace(command(tmp_path, base), **change)  # type: ignore[arg-type]
    with pytest.raises(HypervisorError, match=re.escape(message)):
        prepare_disks(bad)
    assert not Path(bad.seed_path).exists()


def test_command_crosses_both_codecs_with_its_bytes(tmp_path: Path, base: Path) -> None:
    cmd = command(tmp_path, base, bytes(range(256)))
    wire = cluster_codec.encode_command(cmd)
    assert agent_codec.command_from_wire(wire) == cmd
    assert cluster_codec.decode_command(wire) == cmd
