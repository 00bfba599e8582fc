"""vmgrid-cluster's [fault_tolerance] table and flags -> FaultToleranceOptions."""

from __future__ import annotations

from pathlib import Path

import pytest
from vmgrid.agents.cluster.service.main import build_parser, build_settings
from vmgrid.agents.errors import ConfigError


def settings(tmp_path: Path, toml: str = "", *flags: str):  # type: ignore[no-untyped-def]
    config = tmp_path / "cluster.toml"
    config.write_text('listen = "127.0.0.1:0"\ninsecure = true\n' + toml)
    argv = ["--config", str(config), "--state-dir", str(tmp_path / "state"), *flags]
    return build_settings(build_parser().parse_args(argv))[1].fault_tolerance


def test_jobs_are_off_unless_asked(tmp_path: Path) -> None:
    assert settings(tmp_path) is None


def test_table_and_flags_give_the_options(tmp_path: Path) -> None:
    toml = (
        "[fault_tolerance]\n"
        f'storage_dir = "{tmp_path}"\nfailures_to_tolerate = 1\n'
        'fence_command = "ipmitool -H {node}-bmc power off"\n'
        "checkpoint_interval_s = 600\ncheckpoint_retention = 2\n"
        '[fault_tolerance.images]\ndebian = "/img/debian.qcow2"\n'
    )
    ft = settings(tmp_path, toml, "--fence-timeout-s", "2", "--image", "alpine=/img/a.qcow2")
    assert ft is not None
    assert ft.submission.storage_dir == str(tmp_path)
    assert ft.submission.failures_to_tolerate == 1
    assert dict(ft.submission.images) == {"debian": "/img/debian.qcow2", "alpine": "/img/a.qcow2"}
    assert ft.submission.db_path == str(tmp_path / "state" / "jobs.sqlite")
    assert ft.ha.fence_command == ("ipmitool", "-H", "{node}-bmc", "power", "off")
    assert ft.ha.fence_timeout_s == 2.0
    assert ft.default_checkpoint_policy is not None
    assert ft.default_checkpoint_policy.retention == 2


@pytest.mark.parametrize(
    ("toml", "flags", "named"),
    [
        ("[fault_tolerance]\nfailures = 1\n", (), "unknown key 'failures'"),
        ("[fault_tolerance]\nstorage_dir = 3\n", (), "storage_dir = 3"),
        ("", ("--jobs", "--domain-type", "xen"), "'xen'"),
        ("", ("--jobs", "--storage-dir", "/nonexistent/x"), "/nonexistent/x"),
        ("", ("--image", "bad"), "--image 'bad'"),
        ("", ("--jobs", "--checkpoint-interval-s", "5"), "checkpoint_interval_s"),
    ],
)
def test_bad_values_are_named(
    tmp_path: Path, toml: str, flags: tuple[str, ...], named: str
) -> None:
    with pytest.raises(ConfigError, match=named.replace("(", r"\(")):
        settings(tmp_path, toml, *flags)
