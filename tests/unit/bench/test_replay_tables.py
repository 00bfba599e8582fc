"""docs/replay.md's tables and summaries, from hand-made results (no replay needed)."""

from __future__ import annotations

import pytest
from vmgrid.bench import replay_tables as tables
from vmgrid.bench.markdown import replace_section, section_names
from vmgrid.bench.replay_report import machine_summary

DAY = "20110303"


def result(energy: float, slatah: float, pdm: float, migrations: int, **extra: object) -> dict:
    return {
        "energy_kwh": energy,
        "slatah": slatah,
        "pdm": pdm,
        "slav": slatah * pdm,
        "esv": energy * slatah * pdm,
        "migrations": migrations,
        "replay_s": 20.0,
        "demand_cpu_s": 1000.0,
        "unmet_cpu_s": 2.0,
        "unmet_share": 0.002,
        "unmet_migration_cpu_s": 0.5,
        **extra,
    }


def reference(energy: float, migrations: float, slav: float) -> dict[str, float]:
    return {"energy_kwh": energy, "migrations": migrations, "slav": slav, "esv": energy * slav}


@pytest.fixture
def ref() -> dict[tuple[str, str], dict[str, float]]:
    out = {(DAY, n): reference(200.0, 20000, 4e-5) for n in tables.HEURISTICS}
    out[DAY, "iqr-mmt-1.5"] = reference(190.0, 26000, 3e-5)  # the best by ESV
    return out


@pytest.fixture
def res(ref: dict[tuple[str, str], dict[str, float]]) -> dict[str, dict]:
    out = {f"{DAY}/{n}": result(200.0, 0.05, 8e-4, 20000) for n in tables.HEURISTICS}
    # Our IQR: energy 1 % high, migrations 12 % high (outside 10 %), SLAV right.
    out[f"{DAY}/iqr-mmt-1.5"] = result(191.9, 0.05, 6e-4, 29120)
    out[f"{DAY}/vmgrid"] = result(120.0, 0.015, 2.4e-4, 4000, unmet_share=0.0021, unmet_cpu_s=2.1)
    return out


def test_fidelity_covers_all_six_heuristics(res: dict, ref: dict) -> None:
    text = tables.fidelity_table([DAY], res, ref)
    for name in tables.HEURISTICS:
        assert f"| {DAY} | {name} |" in text
    assert "191.90 / 190.00 (+1.0 %)" in text


def test_fidelity_summary_names_the_worst_gaps_and_what_is_out_of_tolerance(
    res: dict, ref: dict
) -> None:
    text = tables.fidelity_summary([DAY], res, ref)
    assert text.startswith("Over all 6 (day, heuristic) pairs")
    assert "12.0 % on migrations (20110303 iqr-mmt-1.5)" in text
    assert "outside issue #8's tolerances: 20110303 iqr-mmt-1.5 migrations" in text


def test_esv_breakdown_multiplies_energy_slatah_and_pdm(res: dict, ref: dict) -> None:
    row = tables.esv_breakdown_table([DAY], res, ref).splitlines()[-1]
    # vmgrid / our iqr: energy 120/191.9, SLATAH 0.3, PDM 0.4, ESV the product.
    assert row.startswith(f"| {DAY} | iqr-mmt-1.5 | 0.63 | 0.30 | 0.40 | 0.075 | 0.14 |")
    assert "0.210 / 0.200" in row


def test_targets_are_checked_not_typed(res: dict, ref: dict) -> None:
    res[f"{DAY}/vmgrid"]["machine"] = {"calibration_s": 0.0452}
    text, summary = tables.targets_table([DAY], res, ref)
    assert text.splitlines()[-1].endswith("| 20.0 (0.045) | yes |")
    assert summary == "All four targets are met on 1 of the 1 days replayed."
    res[f"{DAY}/vmgrid"]["migrations"] = 13001  # more than half of IQR's 26000
    text, summary = tables.targets_table([DAY], res, ref)
    assert text.splitlines()[-1].endswith("| no |")
    assert summary.startswith("All four targets are met on 0 of")


def test_comparison_table_shows_unmet_demand_for_every_policy(res: dict) -> None:
    rows = tables.comparison_table([DAY], res).splitlines()[2:]
    assert len(rows) == 7
    assert all("0.200 (0.050)" in r or "0.210 (0.050)" in r for r in rows)


def test_generated_section_is_replaced_and_prose_kept() -> None:
    page = "intro\n<!-- generated:t (by x) -->\nold\n<!-- end generated:t -->\noutro\n"
    out = replace_section(page, "t", "| new |\n")
    assert out == "intro\n<!-- generated:t (by x) -->\n| new |\n<!-- end generated:t -->\noutro\n"
    assert section_names(out) == ["t"]


def test_a_section_whose_name_prefixes_another_leaves_the_other_alone() -> None:
    page = (
        "<!-- generated:t-summary (by x) -->\nA\n<!-- end generated:t-summary -->\n"
        "<!-- generated:t (by x) -->\nB\n<!-- end generated:t -->\n"
    )
    out = replace_section(replace_section(page, "t", "b"), "t-summary", "a")
    assert out == page.replace("A", "a").replace("B", "b")
    assert section_names(out) == ["t-summary", "t"]


def test_a_page_without_the_section_is_one_clear_error() -> None:
    with pytest.raises(ValueError, match="no generated section 'targets' in the page"):
        replace_section("nothing here\n", "targets", "x")


def test_machine_summary_spans_the_runs() -> None:
    machine = {"cores": 2, "cpu_model": "AMD EPYC", "calibration_s": 0.05, "load_1m_before": 1.5}
    res = {
        "a": {"machine": machine | {"at": "2026-01-01T10:00:00Z"}},
        "b": {"machine": machine | {"at": "2026-01-01T11:00:00Z", "calibration_s": 0.07}},
    }
    text = machine_summary(res)
    assert text.startswith("2 replays on 2 cores, AMD EPYC between 2026-01-01T10:00:00Z and")
    assert "calibration loop 0.050-0.070 s" in text


def test_unmet_summary_gives_each_policys_range(res: dict) -> None:
    text = tables.unmet_summary([DAY], res)
    assert "vmgrid 0.210-0.210 %" in text and "iqr-mmt-1.5 0.200-0.200 %" in text
