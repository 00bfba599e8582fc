"""The importer reads the challenge's format and names the first bad value."""

from __future__ import annotations

import re

import numpy as np
import pytest
from roadef_cases import TINY_MODEL, tiny
from vmgrid.solver.roadef.instance import (
    RoadefError,
    format_assignment,
    parse_assignment,
    parse_model,
)


def test_model_fields_land_in_their_arrays() -> None:
    instance, initial = tiny()
    assert (instance.resources, instance.machines, instance.services, instance.processes) == (
        2,
        3,
        2,
        4,
    )
    assert instance.transient.tolist() == [False, True]
    assert instance.capacity[0].tolist() == [10, 8]
    assert instance.safety[1].tolist() == [5, 10]
    assert instance.machine_move_cost[1].tolist() == [1, 0, 3]
    assert instance.dependencies == ((), (0,))
    assert instance.requirement[3].tolist() == [5, 3]
    assert instance.balances[0].target == 2
    assert (
        instance.weight_process_move,
        instance.weight_service_move,
        instance.weight_machine_move,
    ) == (1, 10, 100)
    assert initial.tolist() == [0, 1, 0, 1]


def _swap_token(text: str, index: int, value: str) -> str:
    words = text.split()
    words[index] = value
    return " ".join(words)


@pytest.mark.parametrize(
    ("index", "value", "message"),
    [
        (1, "2", "resource 0 transient flag is 2, expected 0 or 1"),
        (5, "0", "machine count is 0"),
        (6, "x", "machine 0 neighborhood is 'x', expected a non-negative integer"),
        (8, "-3", "machine 0 capacity[0] is -3, expected >= 0"),
        (10, "11", "machine 0 safety capacity[0] is 11, above its capacity 10"),
        (12, "4", "machine 0 move cost to itself is 4, expected 0"),
        (38, "5", "service 1 dependency[0] is 5, expected 0..1"),
        (40, "2", "process 0 service is 2, expected 0..1"),
        (58, "2", "balance 0 resource r2 is 2, expected 0..1"),
    ],
)
def test_bad_model_value_is_named(index: int, value: str, message: str) -> None:
    with pytest.raises(RoadefError, match=re.escape(message)):
        parse_model(_swap_token(TINY_MODEL, index, value))


def test_truncated_model_names_what_was_being_read() -> None:
    words = TINY_MODEL.split()
    with pytest.raises(RoadefError, match=r"file ended while reading machine move weight"):
        parse_model(" ".join(words[:-1]))


def test_trailing_values_in_model_are_rejected() -> None:
    with pytest.raises(RoadefError, match=r"1 unexpected values after the end, first '9'"):
        parse_model(TINY_MODEL + " 9")


def test_assignment_with_unknown_machine_names_the_process() -> None:
    instance, _ = tiny()
    with pytest.raises(RoadefError, match=r"machine of process 2 is 3, expected 0..2"):
        parse_assignment("0 1 3 1", instance)


def test_assignment_of_the_wrong_length_is_rejected() -> None:
    instance, _ = tiny()
    with pytest.raises(RoadefError, match=r"file ended while reading machine of process 3"):
        parse_assignment("0 1 0", instance)
    with pytest.raises(RoadefError, match=r"unexpected values"):
        parse_assignment("0 1 0 1 2", instance)


def test_written_assignment_reads_back() -> None:
    instance, initial = tiny()
    text = format_assignment(np.array([2, 1, 0, 1]))
    assert text == "2 1 0 1\n"
    assert parse_assignment(text, instance).tolist() == [2, 1, 0, 1]
    assert parse_assignment(format_assignment(initial), instance).tolist() == initial.tolist()
