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
        # RSS = private + shared pages; the breakdown accounts for all of it
        assert result["uss_mb"] + result["shared_file_mb"] <= result["rss_mb"] + 0.2
        breakdown = result["rss_by_mapping_mb"]
        assert any(name.startswith("cygrpc") for name in breakdown)
        assert abs(sum(breakdown.values()) - result["rss_mb"]) < 1.5
    # the agent runs the floor's libraries plus its own code: never less
    assert real["rss_mb"] > floor["rss_mb"]
