"""`vmgrid-bench agent` end to end on a small test node: the real agent, then the floor."""

from __future__ import annotations

import argparse

from vmgrid.bench import agent as bench_agent


def _args(**flags: object) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench_agent.add_arguments(parser)
    args = parser.parse_args(["--vms", "3", "--seconds", "1", "--warmup", "2"])
    for key, value in flags.items():
        setattr(args, key, value)
    return args


def test_agent_and_floor_are_measured_with_their_breakdown() -> None:
    real = bench_agent.run(_args(breakdown=True))
    floor = bench_agent.run(_args(floor=True, breakdown=True))

    assert "floor" not in real and floor["floor"] is True
    for result in (real, floor):
        assert result["rss_mb"] > 10  # a Python process with gRPC and libvirt loaded
        assert 0 < result["uss_mb"] < result["rss_mb"]  # gRPC, libvirt, libpython are shared
        # the smaps walk accounts for all the pages smaps_rollup counts (private + shared);
        # not compared with VmRSS, a cached counter off by up to 64 pages per thread
        breakdown = result["rss_by_mapping_mb"]
        assert any(name.startswith("cygrpc") for name in breakdown)
        rollup_mb = result["uss_mb"] + result["shared_file_mb"]
        assert abs(sum(breakdown.values()) - rollup_mb) < 1.5
    # the agent runs the floor's libraries plus its own code (about 4 MB of private pages)
    assert real["uss_mb"] > floor["uss_mb"] + 1


def test_the_window_starts_once_the_agent_has_connected() -> None:
    """No warmup and a short window: the figures are still a connected agent's, since the
    agent's start (seconds of imports on a loaded host) is waited for, not slept through."""
    result = bench_agent.run(_args(warmup=0.0, seconds=0.2))

    assert result["rss_mb"] > 10 and result["seconds"] == 0.2
