"""The demo's operator policy: visible headroom by default, `--policy KEY=VALUE` on top."""

from __future__ import annotations

import pytest
from vmgrid.demo.main import build_parser
from vmgrid.demo.policy import DEMO_POLICY, demo_policy


def test_the_demo_keeps_a_quarter_of_each_node_free_and_moves_a_vm_once_in_ten_minutes() -> None:
    policy = demo_policy([])
    assert policy == DEMO_POLICY
    assert policy.cpu_high == 0.75 and policy.memory_high == 0.75
    assert policy.min_move_interval_s == 600 and policy.return_after_s == 1800


def test_policy_flags_change_the_demo_policy() -> None:
    args = build_parser().parse_args(
        ["--policy", "cpu_high=0.9", "--policy", "aggressiveness=aggressive"]
    )
    policy = demo_policy(args.policy)
    assert policy.cpu_high == 0.9 and policy.migrations_per_hour == 120
    assert policy.min_move_interval_s == 600  # still the demo's explicit value


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("cpu_high", "--policy 'cpu_high': expected KEY=VALUE"),
        ("cpu_high=2", "--policy: policy.cpu_high: 2.0 must be in (0, 1]"),
        ("speed=fast", "--policy: policy: unknown key 'speed'"),
    ],
)
def test_a_bad_policy_flag_is_named_in_one_line(setting: str, message: str) -> None:
    with pytest.raises(RuntimeError) as caught:
        demo_policy([setting])
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)
