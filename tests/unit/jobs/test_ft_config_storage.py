"""[fault_tolerance] shared_storage: node-local disks need no directory on the manager."""

from __future__ import annotations

from pathlib import Path

import pytest
from vmgrid.agents.cluster.jobs.submission import SubmissionConfig
from vmgrid.agents.cluster.service.main import build_parser, build_settings
from vmgrid.agents.errors import ConfigError


def submission(tmp_path: Path, toml: str, *flags: str) -> SubmissionConfig:
    config = tmp_path / "cluster.toml"
    config.write_text('listen = "127.0.0.1:0"\ninsecure = true\n[fault_tolerance]\n' + toml)
    argv = ["--config", str(config), "--state-dir", str(tmp_path / "state"), *flags]
    ft = build_settings(build_parser().parse_args(argv))[1].fault_tolerance
    assert ft is not None
    return ft.submission


def test_storage_is_shared_unless_told(tmp_path: Path) -> None:
    assert submission(tmp_path, f'storage_dir = "{tmp_path}"\n').shared_storage is True


def test_node_local_storage_dir_need_not_exist_on_the_manager(tmp_path: Path) -> None:
    got = submission(tmp_path, 'storage_dir = "/var/lib/vmgrid/disks"\nshared_storage = false\n')
    assert (got.storage_dir, got.shared_storage) == ("/var/lib/vmgrid/disks", False)
    flagged = submission(tmp_path, 'storage_dir = "/srv/d"\n', "--no-shared-storage")
    assert flagged.shared_storage is False


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('storage_dir = "disks"\nshared_storage = false\n', "an absolute path on every node"),
        ('storage_dir = "/nowhere/x"\n', "'/nowhere/x' is not a directory"),
        ("shared_storage = 1\n", "must be a bool"),
    ],
)
def test_bad_storage_values_name_the_key(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        submission(tmp_path, toml)
