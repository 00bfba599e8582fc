"""Every `vmgrid-bench` line carries the machine it ran on, measured in the same run."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from vmgrid.bench.context import MachineContext, calibrate, calibration_loop, cpu_model
from vmgrid.bench.main import main

TINY = Path(__file__).resolve().parents[2] / "data" / "planetlab" / "tiny"
MACHINE_KEYS = {
    "command",
    "at",
    "cores",
    "cpu_model",
    "mem_total_mib",
    "python",
    "calibration_s",
    "calibration_after_s",
    "load_1m_before",
    "load_1m_after",
}


def _clock(readings: list[float]) -> Iterator[float]:
    yield from readings


def test_calibration_keeps_the_least_disturbed_timing() -> None:
    # Three loops taking 0.5 s, 0.2 s and 0.9 s: the machine's speed is the fastest one.
    ticks = _clock([0.0, 0.5, 1.0, 1.2, 2.0, 2.9])
    assert calibrate(3, loop=lambda: 0, clock=lambda: next(ticks)) == 0.2


def test_calibration_rejects_no_repeats() -> None:
    with pytest.raises(ValueError, match="calibration repeats 0 is not positive"):
        calibrate(0)


def test_calibration_loop_is_a_fixed_workload() -> None:
    assert calibration_loop(5000) == calibration_loop(5000)
    assert calibration_loop(5000) != calibration_loop(5001)


def test_cpu_model_is_read_from_cpuinfo(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: X\nmodel name\t: Example CPU @ 2.0GHz\n")
    assert cpu_model(info) == "Example CPU @ 2.0GHz"
    assert cpu_model(tmp_path / "missing") != ""


def test_finish_before_start_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="before start"):
        MachineContext(["grid"]).finish()


@pytest.mark.parametrize(
    "argv",
    [
        ["replay", "--trace", str(TINY), "--hosts", "6", "--steps", "3", "--json"],
        ["grid", "--clusters", "2", "--nodes-per-cluster", "2", "--vms-per-node", "2", "--json"],
        ["solver", "--generate", "nodes=4,vms=8,seed=1", "--timeout", "2", "--json"],
    ],
)
def test_every_result_line_ends_with_the_machine(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert list(result)[-1] == "machine"
    machine = result["machine"]
    assert set(machine) == MACHINE_KEYS
    assert machine["command"] == "vmgrid-bench " + " ".join(argv)
    assert machine["cores"] == os.cpu_count()
    assert machine["cpu_model"]
    assert machine["calibration_s"] > 0 and machine["calibration_after_s"] > 0
    assert machine["at"].endswith("Z")
