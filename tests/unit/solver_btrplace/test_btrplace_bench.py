"""`vmgrid-bench solver`: the last stdout line is the documented JSON; bad input is one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from vmgrid.bench.main import main
from vmgrid.solver.validate import validate_btrplace_plan

DATA = Path(__file__).parents[2] / "data" / "btrplace"
KEYS = {
    "instance",
    "nodes",
    "vms",
    "status",
    "solve_s",
    "wall_s",
    "max_rss_mb",
    "migrations",
    "mttr",
    "valid",
    "baseline",
}


def last_json(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    lines = capsys.readouterr().out.strip().splitlines()
    return json.loads(lines[-1])


def test_generated_consolidation_reports_nodes_against_bounds(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["solver", "--generate", "nodes=10,vms=40,seed=3", "--timeout", "3", "--json"]) == 0
    out = last_json(capsys)
    assert set(out) >= KEYS
    assert out["valid"] is True
    assert out["nodes_lower_bound"] <= out["nodes_used"] <= out["baseline"]["nodes_used"]  # type: ignore[operator,index]
    assert out["baseline"]["algorithm"] == "first-fit-decreasing"  # type: ignore[index]


def test_running_cluster_consolidates_under_another_objective(
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = "nodes=12,vms=40,seed=3,running=1"
    argv = ["solver", "--generate", spec, "--objective", "consolidation>migrations"]
    assert main([*argv, "--timeout", "5", "--no-lns", "--no-baseline", "--json"]) == 0
    out = last_json(capsys)
    assert out["instance"] == "generated-n12-v40-s3-running"
    assert out["objective"] == "consolidation>migrations" and out["valid"] is True
    assert out["nodes_used"] < 12 and out["lns"] == {}  # type: ignore[operator]
    assert out["timings"]["lns_s"] == 0.0  # type: ignore[index]


@pytest.mark.slow
def test_issue_100_plan_file_is_valid(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    argv = ["solver", str(DATA / "std-perf-issue-100.json.gz"), "--timeout", "5"]
    assert main([*argv, "--plan-out", str(plan), "--json"]) == 0
    out = last_json(capsys)
    assert KEYS | {"min_migrations"} <= set(out)
    assert out["valid"] is True
    assert validate_btrplace_plan(DATA / "std-perf-issue-100.json.gz", plan) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--generate", "nodes=ten"], "--generate: bad item 'nodes=ten'"),
        (["--timeout", "0", "x.json"], "--timeout 0.0: must be a positive number"),
        ([], "give an INSTANCE file or --generate"),
        (["does-not-exist.json"], "does-not-exist.json"),
        (["--generate", "nodes=4,vms=8", "--objective", "fast"], "bad objective 'fast'"),
        (["--generate", "nodes=2,vms=90,running=1"], "90 VMs do not fit 3/4 of 2 nodes"),
    ],
)
def test_bad_arguments_fail_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["solver", *argv, "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1
