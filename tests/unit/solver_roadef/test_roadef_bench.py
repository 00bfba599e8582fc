"""`vmgrid-bench roadef` end to end on committed instances."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from roadef_cases import TINY_INITIAL, TINY_MODEL
from vmgrid.bench.main import main
from vmgrid.solver.roadef.checker import check
from vmgrid.solver.roadef.instance import parse_assignment, parse_model
from vmgrid.solver.roadef.solve import RoadefOptions
from vmgrid.solver.roadef.walk import available as walk_available

DATA = Path(__file__).parents[2] / "data" / "roadef"


def _write_tiny(tmp_path: Path) -> tuple[Path, Path]:
    model = tmp_path / "model_tiny.txt"
    model.write_text(TINY_MODEL)
    assignment = tmp_path / "assignment_tiny.txt"
    assignment.write_text(TINY_INITIAL)
    return model, assignment


def test_json_line_reports_the_checked_cost_and_the_reference_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, assignment = _write_tiny(tmp_path)
    (tmp_path / "reference.csv").write_text(
        "instance,lower_bound,best_known,best_known_source\ntiny,40,50,by hand\n"
    )
    out = tmp_path / "new.txt"
    code = main(["roadef", str(model), str(assignment), "--timeout", "3", "--out", str(out)])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert list(result) == [
        "instance", "processes", "machines", "status", "cost", "original_cost",
        "lower_bound", "best_known", "gap_to_best_known", "wall_s", "max_rss_mb", "valid", "machine",
    ]  # fmt: skip
    instance = parse_model(TINY_MODEL)
    initial = parse_assignment(TINY_INITIAL, instance)
    written = parse_assignment(out.read_text(), instance)
    report = check(instance, initial, written)
    assert result["valid"] is report.valid is True
    assert result["cost"] == report.cost.total <= result["original_cost"] == 66
    assert (result["instance"], result["processes"], result["machines"]) == ("tiny", 4, 3)
    assert (result["lower_bound"], result["best_known"]) == (40, 50)
    assert result["gap_to_best_known"] == pytest.approx((result["cost"] - 50) / 50)


def test_gzip_challenge_files_without_a_reference_table_give_null_bounds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "a1_1.txt"
    args = ["roadef", str(DATA / "model_a1_1.txt.gz"), str(DATA / "assignment_a1_1.txt.gz")]
    assert main([*args, "--timeout", "3", "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["instance"] == "a1_1"
    assert result["status"] == "improved" and result["valid"] is True
    assert result["lower_bound"] is None and result["gap_to_best_known"] is None
    assert len(out.read_text().split()) == 100


@pytest.mark.parametrize(("choice", "said"), [("walk", "compiled walks"), ("python", "Python")])
def test_first_search_is_chosen_and_named_in_the_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], choice: str, said: str
) -> None:
    if choice == "walk" and not walk_available():
        pytest.skip("no C compiler for the walk")
    args = ["roadef", str(DATA / "model_a1_1.txt.gz"), str(DATA / "assignment_a1_1.txt.gz")]
    assert main([*args, "--timeout", "3", "--first-search", choice, "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out.strip().splitlines()[-1])["valid"] is True
    assert f"local search done ({said}," in captured.err


@pytest.mark.parametrize(
    ("extra", "assignment_text", "message"),
    [
        (["--timeout", "0"], TINY_INITIAL, "--timeout is 0.0, expected a positive number"),
        ([], "0 1 0 9", "machine of process 3 is 9, expected 0..2"),
        (["--walk-chains", "1.5"], TINY_INITIAL, "--walk-chains is 1.5, expected a share from 0"),
        (["--walk-threads", "0"], TINY_INITIAL, "--walk-threads is 0, expected at least 1"),
        (["--descent-threads", "0"], TINY_INITIAL, "--descent-threads is 0, expected at least 1"),
        (
            ["--locked-descent-threads", "0"],
            TINY_INITIAL,
            "--locked-descent-threads is 0, expected at least 1",
        ),
        (["--first-share", "0.6"], TINY_INITIAL, "--first-share is 0.6, expected a share from 0"),
        (["--first-share", "-1"], TINY_INITIAL, "--first-share is -1.0, expected a share from 0"),
        (["--reference", "/nonexistent.csv"], TINY_INITIAL, "reference table /nonexistent.csv"),
    ],
)
def test_bad_input_exits_2_with_one_line_naming_it(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    assignment_text: str,
    message: str,
) -> None:
    model, assignment = _write_tiny(tmp_path)
    assignment.write_text(assignment_text)
    assert main(["roadef", str(model), str(assignment), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1]


def test_unknown_first_search_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, assignment = _write_tiny(tmp_path)
    with pytest.raises(SystemExit) as ended:
        main(["roadef", str(model), str(assignment), "--first-search", "C"])
    assert ended.value.code == 2
    assert "argument --first-search: invalid choice: 'C'" in capsys.readouterr().err


def test_missing_model_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["roadef", str(tmp_path / "nope.txt"), str(tmp_path / "a.txt")]) == 2
    err = capsys.readouterr().err
    assert "cannot read" in err and "nope.txt" in err


def _record_options(monkeypatch: pytest.MonkeyPatch) -> list[RoadefOptions]:
    """The options each bench run hands the solver (which still runs)."""
    import vmgrid.bench.roadef as bench_roadef

    seen: list[RoadefOptions] = []
    real = bench_roadef.solve_roadef

    def recording(instance, initial, budget, options, progress):  # type: ignore[no-untyped-def]
        seen.append(options)
        return real(instance, initial, budget, options, progress)

    monkeypatch.setattr(bench_roadef, "solve_roadef", recording)
    return seen


@pytest.mark.parametrize(
    ("extra", "counts"),
    [
        ([], (2, None, None, 0.0)),
        (
            ["--walk-threads", "3", "--descent-threads", "4", "--locked-descent-threads", "5"],
            (3, 4, 5, 0.0),
        ),
        (["--descent-threads", "1", "--first-share", "0.1"], (2, 1, None, 0.1)),
    ],
)
def test_thread_flags_reach_the_solver_and_unset_descents_are_left_to_it(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    extra: list[str],
    counts: tuple[int, int | None, int | None, float],
) -> None:
    """Each thread flag (and --first-share) sets its option; descents not named stay None,
    for the solver to choose by instance (solve.descents_for), and the help says which
    default applies."""
    seen = _record_options(monkeypatch)
    model, assignment = _write_tiny(tmp_path)
    assert main(["roadef", str(model), str(assignment), "--timeout", "2", *extra, "--json"]) == 0
    (options,) = seen
    assert (
        options.walk_threads,
        options.descent_threads,
        options.locked_descent_threads,
        options.first_share,
    ) == counts
    with pytest.raises(SystemExit):
        main(["roadef", "--help"])
    said = " ".join(capsys.readouterr().out.split())
    assert "the lowest kept (default 2 on an instance with a transient resource, else 1)" in said
    assert "which instances with a transient resource have (default 2)" in said
    assert "the cheapest end kept (default 0: one search)" in said


@pytest.mark.parametrize(
    ("extra", "locks"),
    [
        ([], RoadefOptions().locks),
        (["--locks", "1,0.7,0.5"], (1.0, 0.7, 0.5)),
        (["--locks", " 2.5 "], (2.5,)),
        (["--locks", "none"], ()),
    ],
)
def test_locks_flag_reaches_the_solver(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    extra: list[str],
    locks: tuple[float, ...],
) -> None:
    seen = _record_options(monkeypatch)
    model, assignment = _write_tiny(tmp_path)
    assert main(["roadef", str(model), str(assignment), "--timeout", "2", *extra, "--json"]) == 0
    assert [options.locks for options in seen] == [locks]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1,abc", "'abc' in '1,abc' is not a number; give weights such as 1,0.5,0.25 or none"),
        ("1,,0.5", "'' in '1,,0.5' is not a number"),
        ("0.5,0", "0 in '0.5,0' is not a weight above 0 and at most 10"),
        ("11", "11 in '11' is not a weight above 0 and at most 10"),
        ("-1", "-1 in '-1' is not a weight above 0"),
    ],
)
def test_bad_locks_exit_2_naming_the_weight(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, message: str
) -> None:
    model, assignment = _write_tiny(tmp_path)
    with pytest.raises(SystemExit) as ended:
        main(["roadef", str(model), str(assignment), f"--locks={value}"])
    assert ended.value.code == 2
    assert f"argument --locks: {message}" in capsys.readouterr().err
