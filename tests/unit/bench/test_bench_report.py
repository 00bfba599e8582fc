"""docs/benchmarks.md and the README's results table, from result lines (no benchmark run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from vmgrid.bench.bench_report import figures, main, merge, read_lines, readme_table


def line(command: str, **fields: object) -> dict[str, object]:
    return {
        **fields,
        "machine": {
            "command": command,
            "at": "2026-01-01T10:00:00Z",
            "cores": 2,
            "cpu_model": "AMD EPYC",
            "calibration_s": 0.045,
            "calibration_after_s": 0.047,
            "load_1m_before": 1.5,
            "load_1m_after": 1.7,
        },
    }


GRID = "vmgrid-bench grid --clusters 100 --json"
AGENT = "vmgrid-bench agent --vms 50 --seconds 30 --json"


def test_merge_replaces_a_commands_line_and_appends_new_commands() -> None:
    old = [line(GRID, plan_s=0.9), line(AGENT, rss_mb=60.0)]
    new = [line(AGENT, rss_mb=48.0), line("vmgrid-bench makespan --json", gain=0.3)]
    merged = merge(old, new)
    assert [m.get("plan_s", m.get("rss_mb", m.get("gain"))) for m in merged] == [0.9, 48.0, 0.3]


def test_figures_show_the_headline_fields_or_the_first_scalars() -> None:
    agent = line(AGENT, rss_mb=48.04, peak_rss_mb=50.0, cpu_percent=0.4, vms=50, target={"x": 1})
    assert figures(agent) == "vms 50, rss_mb 48.04, peak_rss_mb 50, cpu_percent 0.4"
    other = line("vmgrid-bench roadef --instance a1_1 --json", cost=123, wall_s=4.5)
    assert figures(other) == "cost 123, wall_s 4.5"


def test_readme_table_gives_command_target_figures_and_machine() -> None:
    text = readme_table([line(GRID, plan_s=0.78, moves=5641, link_oversubscribed=0)])
    row = text.splitlines()[2]
    assert row.startswith(f"| `{GRID}` | ≤ 2 s, no oversubscribed link | plan_s 0.78, moves 5641")
    assert "2 cores, AMD EPYC; calibration 0.045 → 0.047 s; load 1.5 → 1.7" in row
    # Benchmarks without a line say so instead of showing an old figure.
    assert "| `vmgrid-bench ingest ...` |" in text and "not in this run" in text


def test_main_merges_and_rewrites_both_pages(tmp_path: Path) -> None:
    results, new = tmp_path / "results.jsonl", tmp_path / "new.jsonl"
    results.write_text(json.dumps(line(GRID, plan_s=0.9)) + "\n")
    new.write_text(json.dumps(line(GRID, plan_s=0.7)) + "\n\n")
    readme = tmp_path / "README.md"
    readme.write_text(
        "# x\n<!-- generated:bench-results (by y) -->\nstale figure\n<!-- end generated:bench-results -->\n"
    )
    argv = ["--results", str(results), "--merge", str(new), "--docs", str(tmp_path)]
    assert main([*argv, "--readme", str(readme)]) == 0
    assert [r["plan_s"] for r in read_lines(results)] == [0.7]
    assert "plan_s 0.7" in readme.read_text() and "stale figure" not in readme.read_text()
    page = (tmp_path / "benchmarks.md").read_text()
    assert f"## `{GRID}`" in page and "calibration 0.045 → 0.047 s" in page


def test_a_bad_result_line_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results.jsonl"
    results.write_text('{"a": 1}\nnot json\n')
    assert main(["--results", str(results), "--docs", str(tmp_path)]) == 2
    assert f"{results}:2 is not a JSON result line" in capsys.readouterr().err
