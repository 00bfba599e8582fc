"""Operator mistakes get one line naming the bad value and what is accepted, and exit code 2.

Nothing here needs a server: each bad value is refused by the parser or before the first RPC.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from vmgrid.agents.cluster.service.main import main as cluster_main
from vmgrid.coordinator.cli import grid_cmd
from vmgrid.coordinator.cli.main import main as ctl_main
from vmgrid.coordinator.main import main as coordinator_main
from vmgrid.lab.main import main as lab_main

NOWHERE = "127.0.0.1:1"
TO_CLUSTER = ["--insecure", "--cluster", NOWHERE]
TO_GRID = ["--insecure", "--coordinator", NOWHERE]


def exit_code_and_stderr(
    main: object, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    """Run a program's main; an argparse refusal (SystemExit) counts as its exit code."""
    try:
        code = main(argv)  # type: ignore[operator]
    except SystemExit as stop:
        code = stop.code
    err = capsys.readouterr().err
    return int(code), err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["nodes", *TO_CLUSTER, "--timeout", "-1"], ["'-1'", "seconds > 0"]),
        (["nodes", *TO_CLUSTER, "--timeout", "0"], ["'0'", "seconds > 0"]),
        (["clusters", *TO_GRID, "--timeout", "abc"], ["'abc'", "seconds > 0"]),
        (["events", *TO_CLUSTER, "--duration", "0"], ["--duration", "'0'", "seconds > 0"]),
        (["events", *TO_CLUSTER, "--count", "-1"], ["--count", "'-1'", "integer >= 0"]),
        (["plans", *TO_CLUSTER, "--limit", "-1"], ["--limit", "'-1'", "integer >= 0"]),
        (["plan", *TO_CLUSTER, "--time-limit-s", "-3"], ["--time-limit-s", "'-3'", ">= 0"]),
        (
            ["migrate", "vm1", "--cluster", "c2", *TO_GRID, "--bandwidth-mbps", "-5"],
            ["--bandwidth-mbps", "'-5'", "integer >= 0"],
        ),
    ],
)
def test_vmgridctl_refuses_bad_numbers_naming_the_value(
    argv: list[str], expected: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = exit_code_and_stderr(ctl_main, argv, capsys)
    assert code == 2
    for part in expected:
        assert part in err


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("missing.toml", None, ["missing.toml", "No such file or directory", ".toml or .json"]),
        ("job.yaml", "name: x\n", ["job.yaml", "suffix '.yaml'", "accepted: .toml or .json"]),
        ("job.toml", "name = \n", ["job.toml", "accepted: valid TOML or JSON"]),
        ("job.json", "[1, 2]", ["job.json", "accepted: a table / JSON object"]),
    ],
)
@pytest.mark.parametrize("route", [TO_GRID, TO_CLUSTER], ids=["grid", "cluster"])
def test_submit_names_a_bad_job_file_without_a_traceback(
    tmp_path: Path,
    name: str,
    content: str | None,
    expected: list[str],
    route: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    code, err = exit_code_and_stderr(ctl_main, ["submit", "-f", str(path), *route], capsys)
    assert code == 2
    assert err.startswith("vmgridctl submit: ") and err.count("\n") == 1
    assert "Traceback" not in err
    for part in expected:
        assert part in err


@pytest.mark.parametrize(
    ("main", "argv"),
    [
        (cluster_main, ["--insecure", "--log-level", "bogus"]),
        (coordinator_main, ["--insecure", "--log-level", "bogus"]),
    ],
    ids=["vmgrid-cluster", "vmgrid-coordinator"],
)
def test_daemons_refuse_an_unknown_log_level_listing_the_accepted_ones(
    main: object, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = exit_code_and_stderr(main, argv, capsys)
    assert code == 2
    assert "'BOGUS'" in err and "DEBUG" in err and "ERROR" in err


def test_daemons_accept_a_lower_case_log_level() -> None:
    from vmgrid.agents.cluster.service.main import build_parser

    assert build_parser().parse_args(["--log-level", "debug"]).log_level == "DEBUG"


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--memory-mib", "0"], ["--memory-mib 0", "memory >= 1 MiB"]),
        (["--bandwidth-mib-s", "-1"], ["--bandwidth-mib-s -1", "bandwidth >= 0 MiB/s"]),
        (["--rounds", "0"], ["--rounds 0", "accepted: 1 or more"]),
    ],
)
def test_lab_probe_refuses_bad_values_before_touching_hosts(
    tmp_path: Path, flags: list[str], expected: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = exit_code_and_stderr(lab_main, ["probe", "--dir", str(tmp_path), *flags], capsys)
    assert code == 2
    for part in expected:
        assert part in err


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ({"used": 3, "capacity": 12}, "used 3, capacity 12"),
        (True, "yes"),
        (False, "no"),
        ([], "-"),
        (["c1", "c2"], "c1, c2"),
        (4, "4"),
    ],
)
def test_grid_status_shows_values_as_the_cluster_status_does(value: object, shown: str) -> None:
    assert grid_cmd._shown(value) == shown


def test_grid_event_lines_in_json_are_json() -> None:
    from vmgrid.coordinator.cli import move_cmd
    from vmgrid.v1 import common_pb2

    event = common_pb2.Event(kind=common_pb2.EVENT_KIND_CLUSTER_JOINED, cluster_id="c2")
    assert json.loads(move_cmd._event_line(event, "json"))["cluster_id"] == "c2"
    assert "cluster_joined" in move_cmd._event_line(event, "table")
