"""Load sources of test-driver nodes: profiles, traces and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from vmgrid.agents.errors import ConfigError
from vmgrid.agents.node.load import (
    BYTES_PER_SECOND_PER_MBPS,
    LoadSource,
    RandomWalk,
    Sine,
    Step,
    Trace,
    parse_profile,
    read_trace,
)

TRACE = (
    Path(__file__).parents[2]
    / "data"
    / "planetlab"
    / "146-179_surfsnel_dsl_internl_net_colostate_557"
)


def test_sine_peaks_a_quarter_period_in() -> None:
    sine = Sine(mean=50, amplitude=20, period_s=400)
    assert sine.value_at(0) == pytest.approx(50)
    assert sine.value_at(100) == pytest.approx(70)
    assert sine.value_at(300) == pytest.approx(30)


def test_step_switches_at_its_time() -> None:
    step = Step(before=10, after=90, at_s=60)
    assert [step.value_at(t) for t in (0, 59.9, 60, 600)] == [10, 10, 90, 90]


def test_random_walk_is_replayable_and_bounded() -> None:
    first = RandomWalk(start=50, step=30, interval_s=1, seed=7)
    second = RandomWalk(start=50, step=30, interval_s=1, seed=7)
    forward = [first.value_at(t) for t in range(200)]
    assert forward == [second.value_at(t) for t in range(200)]
    assert all(0 <= v <= 100 for v in forward)
    assert len(set(forward)) > 10
    assert first.value_at(5) == forward[5]  # going back in time replays from the seed


def test_random_walks_with_other_seeds_differ() -> None:
    a = RandomWalk(start=50, step=10, interval_s=1, seed=1)
    b = RandomWalk(start=50, step=10, interval_s=1, seed=2)
    assert [a.value_at(t) for t in range(20)] != [b.value_at(t) for t in range(20)]


def test_planetlab_trace_steps_every_300_s_and_wraps() -> None:
    values = read_trace(TRACE)
    assert len(values) == 288
    trace = Trace(values)
    assert trace.value_at(0) == values[0]
    assert trace.value_at(299) == values[0]
    assert trace.value_at(300) == values[1]
    assert trace.value_at(288 * 300) == values[0]


def test_trace_with_a_bad_line_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "trace"
    bad.write_text("10\n20\nfoo\n")
    with pytest.raises(ConfigError, match="line 3: 'foo' is not an integer 0-100"):
        read_trace(bad)


def test_load_source_scales_cpu_by_vcpus_and_network_to_bytes() -> None:
    source = LoadSource(
        default={"cpu": 25, "net_rx": {"kind": "constant", "value": 8}},
        per_vm={"big": {"cpu": {"kind": "constant", "value": 100}}},
    )
    small = source.figures("small", vcpus=2, elapsed_s=0)
    assert small.cpu_millicores == 500
    assert small.net_rx_bytes_per_second == 8 * BYTES_PER_SECOND_PER_MBPS
    assert small.net_tx_bytes_per_second == 0
    assert source.figures("big", vcpus=4, elapsed_s=0).cpu_millicores == 4000


def test_load_source_clamps_cpu_to_the_vm_size() -> None:
    source = LoadSource(
        default={"cpu": {"kind": "sine", "mean": 90, "amplitude": 50, "period_s": 4}}
    )
    assert source.figures("vm", vcpus=1, elapsed_s=1).cpu_millicores == 1000


def test_load_source_resolves_trace_paths_against_its_base_dir() -> None:
    source = LoadSource(
        per_vm={"vm": {"cpu": {"kind": "trace", "path": TRACE.name}}}, base_dir=TRACE.parent
    )
    assert source.figures("vm", vcpus=1, elapsed_s=0).cpu_millicores == 24 * 10


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"kind": "square"}, "'square' is not a load profile; accepted: constant, sine"),
        ({"kind": "sine", "mean": 1, "amplitude": 1, "period_s": 0}, "period_s: 0.0 must be"),
        ({"kind": "constant"}, r"cpu\.value is missing; expected a number"),
        ({"kind": "step", "before": "x", "after": 1, "at_s": 1}, "before: 'x' is not a number"),
        ({"kind": "trace"}, "path is missing"),
        ("high", "'high' is not a number or a table"),
    ],
)
def test_bad_profiles_name_the_value(spec: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_profile(spec, "load.default.cpu", seed=0, base_dir=Path("."))


def test_unknown_dimension_is_rejected_up_front() -> None:
    with pytest.raises(ConfigError, match="unknown key 'disk'; accepted: cpu, net_rx, net_tx"):
        LoadSource(default={"disk": 5})
