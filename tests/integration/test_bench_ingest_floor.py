"""`vmgrid-bench ingest --floor` end to end, small: the bare gRPC server takes the agents'
streams, counts the reports it reads, and the line says it was the floor."""

from __future__ import annotations

import argparse

from vmgrid.bench import ingest


def _args(*flags: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    ingest.add_arguments(parser)
    return parser.parse_args(
        ["--agents", "6", "--period", "0.5", "--seconds", "2", "--warmup", "0.5", *flags]
    )


def test_the_floor_reads_every_agents_reports_and_has_no_manager_figures() -> None:
    result = ingest.run(_args("--floor"))
    assert result["floor"] is True
    # six agents at two reports a second: the bare server read about twelve a second
    assert 8 <= result["reports_per_s"] <= 16
    assert result["sent_per_s"] > 0 and result["not_applied"] <= 6
    assert result["p99_ms"] == 0 and result["decisions"] == 0
    assert 0 < result["manager_cpu_cores"] < 1.5
    assert result["manager_rss_mb"] > 10
