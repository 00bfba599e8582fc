"""A short replay of real traces (8 VMs, one hour) through every policy, and the benchmark."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from vmgrid.bench.main import main as bench_main
from vmgrid.solver.replay import POLICY_NAMES, ReplayError, load_day, make_policy, replay_day

TINY = Path(__file__).resolve().parents[2] / "data" / "planetlab" / "tiny"


def test_tiny_trace_loads_in_sorted_order_with_a_repeated_last_sample() -> None:
    day = load_day(TINY)
    assert day.vm_count == 8
    assert list(day.vm_names) == sorted(day.vm_names)
    assert day.utilisation.shape == (8, 13)
    assert (day.utilisation[:, 12] == day.utilisation[:, 11]).all()


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_every_policy_replays_an_hour(name: str) -> None:
    result = replay_day(TINY, make_policy(name), hosts=6)
    assert result.vms == 8 and result.hosts == 6
    assert 0 < result.energy_kwh < 6 * 135 * 3600 / 3.6e6
    assert 0 <= result.slatah <= 1 and 0 <= result.pdm <= 1
    assert result.esv == pytest.approx(result.energy_kwh * result.slatah * result.pdm)
    # Every policy reports the CPU its VMs asked for and did not get.
    assert result.demand_cpu_s > 0
    assert 0 <= result.unmet_migration_cpu_s <= result.unmet_cpu_s < result.demand_cpu_s
    assert result.unmet_share == pytest.approx(result.unmet_cpu_s / result.demand_cpu_s)


def test_vmgrid_uses_no_more_energy_than_no_consolidation() -> None:
    assert (
        replay_day(TINY, make_policy("vmgrid"), hosts=6).energy_kwh
        < replay_day(TINY, make_policy("dvfs"), hosts=6).energy_kwh
    )


def test_unknown_policy_is_one_clear_error() -> None:
    with pytest.raises(ReplayError, match="unknown policy 'thr-9'; expected one of: vmgrid"):
        make_policy("thr-9")


def test_bench_prints_the_issue_fields_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["replay", "--trace", str(TINY), "--policy", "lr-mmt-1.2", "--hosts", "6", "--json"]
    assert bench_main(argv) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert list(json.loads(line)) == [
        "trace",
        "policy",
        "vms",
        "hosts",
        "energy_kwh",
        "slatah",
        "pdm",
        "slav",
        "esv",
        "migrations",
        "replay_s",
        "sample_s",
        "demand_cpu_s",
        "unmet_cpu_s",
        "unmet_share",
        "unmet_migration_cpu_s",
        "machine",
    ]


def test_bench_rejects_a_bad_sampling_period_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["replay", "--trace", str(TINY), "--hosts", "6", "--sample-s", "0", "--json"]
    assert bench_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("vmgrid-bench replay: unmet-demand sampling period 0.0 s")


def test_bench_rejects_a_missing_trace_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_main(["replay", "--trace", "/nonexistent/day", "--json"]) == 2
    assert "does not exist" in capsys.readouterr().err
