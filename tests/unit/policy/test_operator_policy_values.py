"""The operator policy's values: levels, explicit overrides, and bad values named in one line."""

from __future__ import annotations

import pytest
from vmgrid.agents.cluster.decide.operator_policy import (
    PRESETS,
    Aggressiveness,
    OperatorPolicy,
    updated,
)
from vmgrid.agents.errors import InvalidArgument


def test_the_default_policy_is_the_moderate_level() -> None:
    policy = OperatorPolicy()
    for key, value in PRESETS[Aggressiveness.MODERATE].items():
        assert getattr(policy, key) == value


def test_a_level_sets_every_field_it_is_not_overridden_for() -> None:
    policy = updated(OperatorPolicy(), {"aggressiveness": "conservative"})
    conservative = PRESETS[Aggressiveness.CONSERVATIVE]
    assert policy.cpu_high == conservative["cpu_high"]
    assert policy.migrations_per_hour == conservative["migrations_per_hour"]
    assert policy.explicit == frozenset()


def test_an_explicit_field_overrides_the_level_until_set_back_to_default() -> None:
    policy = updated(OperatorPolicy(), {"cpu_high": "0.7", "migrations_per_hour": 9})
    policy = updated(policy, {"aggressiveness": "aggressive"})
    assert policy.cpu_high == 0.7 and policy.migrations_per_hour == 9
    assert policy.cpu_low == PRESETS[Aggressiveness.AGGRESSIVE]["cpu_low"]
    policy = updated(policy, {"cpu_high": "default"})
    assert policy.cpu_high == PRESETS[Aggressiveness.AGGRESSIVE]["cpu_high"]
    assert policy.explicit == frozenset({"migrations_per_hour"})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cpu_high": "lots"}, "policy.cpu_high: 'lots' is not a number"),
        ({"cpu_high": 1.5}, "policy.cpu_high: 1.5 must be in (0, 1]"),
        ({"memory_low": 0.9}, "policy.memory_low: 0.9 must be below memory_high (0.85)"),
        ({"migrations_per_hour": "2.5"}, "policy.migrations_per_hour: '2.5' is not a whole number"),
        ({"migrations_per_cycle": -1}, "policy.migrations_per_cycle: -1 must be >= 0"),
        ({"min_move_interval_s": "nan"}, "policy.min_move_interval_s: 'nan' is not a finite"),
        ({"aggressiveness": "wild"}, "policy.aggressiveness: 'wild' is not one of conservative"),
        ({"headroom": 0.2}, "policy: unknown key 'headroom'; accepted: aggressiveness"),
        ({"return_after_s": True}, "policy.return_after_s: True is not a number"),
    ],
)
def test_bad_values_are_refused_in_one_line_naming_the_value(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        updated(OperatorPolicy(), changes)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_a_refused_change_leaves_the_policy_as_it_was() -> None:
    policy = updated(OperatorPolicy(), {"cpu_high": 0.7})
    with pytest.raises(InvalidArgument):
        updated(policy, {"cpu_high": 0.6, "cpu_low": 0.65})
    assert policy.cpu_high == 0.7 and policy.cpu_low == 0.4


def test_as_dict_lists_every_field_and_the_explicit_ones() -> None:
    shown = updated(OperatorPolicy(), {"cpu_high": 0.75}).as_dict()
    assert shown["aggressiveness"] == "moderate" and shown["cpu_high"] == 0.75
    assert shown["explicit"] == ["cpu_high"]
    assert set(shown) >= {"migrations_per_node_hour", "min_move_interval_s", "return_after_s"}
