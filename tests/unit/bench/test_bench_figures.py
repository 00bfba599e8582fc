"""The figures the ingest, agent and reaction benchmarks derive from what they sample."""

from __future__ import annotations

import argparse

import pytest
from vmgrid.bench import agent, ingest, reaction


def test_agent_rss_slope_is_the_least_squares_trend_per_second() -> None:
    flat = [(t * 10.0, 50.0 + (0.3 if t % 2 else -0.3)) for t in range(20)]
    assert agent._slope(flat) == pytest.approx(0.0, abs=0.003)
    growing = [(t * 10.0, 50.0 + t * 0.5) for t in range(20)]  # 0.5 MiB per 10 s
    assert agent._slope(growing) == pytest.approx(0.05)
    assert agent._slope(growing[:1]) == 0.0


def test_relief_is_the_first_observation_and_only_counts_when_the_hosts_show_it() -> None:
    assert reaction.relief_s(8.97, 5.94) == 5.94  # the listing waited behind the job's lock
    assert reaction.relief_s(5.02, 7.02) == 5.02  # the result waited for the source's clean-up
    assert reaction.relief_s(6.0, None) == 6.0
    assert reaction.relief_s(None, 5.0) is None  # not relieved within the timeout


def test_reaction_stage_spread_is_p50_and_max_of_the_runs_that_measured_it() -> None:
    assert reaction._spread([3.0, 1.0, 2.0, 10.0]) == {"p50": 2.5, "max": 10.0, "n": 4}
    assert reaction._spread([]) == {"p50": None, "max": None, "n": 0}


def test_ingest_names_a_bad_count() -> None:
    parser = argparse.ArgumentParser()
    ingest.add_arguments(parser)
    with pytest.raises(ValueError, match="--agents: 0 must be >= 1"):
        ingest._check(parser.parse_args(["--agents", "0"]))


def test_ingest_window_reads_the_loop_thread_and_page_faults_of_a_process() -> None:
    import os
    import time

    pid = os.getpid()
    own, _, loop_thread, driver_cpu, faults = ingest._window(pid, [])
    assert driver_cpu == 0.0
    assert 0.0 <= loop_thread <= own + 0.02  # the main thread is part of the process
    fresh = bytearray(16 * 2**20)  # 4,096 pages, each faulted in at its first write
    fresh[::4096] = b"\x01" * (len(fresh) // 4096)
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:  # burn CPU on this (the main) thread
        pass
    after = ingest._window(pid, [pid])
    assert after[4] - faults >= 4096 // 2
    assert after[2] > loop_thread
    assert after[3] == pytest.approx(sum(after[:2]), abs=0.02)  # this process as a driver
