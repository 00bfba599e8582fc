"""`vmgrid-bench grid` prints the agreed JSON line last."""

from __future__ import annotations

import json

import pytest
from vmgrid.bench import grid as grid_bench
from vmgrid.bench.main import main


def test_grid_bench_prints_the_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["grid", "--clusters", "6", "--nodes-per-cluster", "3", "--vms-per-node", "4", "--json"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert list(result) == [
        "clusters",
        "nodes",
        "vms",
        "plan_s",
        "moves",
        "link_oversubscribed",
        "machine",
    ]
    assert (result["clusters"], result["nodes"], result["vms"]) == (6, 18, 72)
    assert result["link_oversubscribed"] == 0


def test_grid_bench_rejects_a_grid_of_one_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["grid", "--clusters", "1"]) == 2
    assert "clusters 1 must be at least 2" in capsys.readouterr().err


def test_an_interrupted_bench_says_so_in_one_line_and_prints_no_figures(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(args: object) -> dict[str, object]:
        raise KeyboardInterrupt

    monkeypatch.setattr(grid_bench, "run", interrupted)
    assert main(["grid", "--clusters", "2", "--json"]) == 130
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip() == "vmgrid-bench grid: interrupted, no figures"
