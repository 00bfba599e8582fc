"""Bounds on wire messages: the generic check, the node codec's own and JSON documents."""

from __future__ import annotations

import pytest
from vmgrid.agents.common import node_codec as codec
from vmgrid.agents.common.wire_guard import Refused, safe_deserializer
from vmgrid.agents.errors import InvalidArgument, MalformedMessage, VmgridError
from vmgrid.agents.jobmodel import JobSpecError
from vmgrid.agents.jobmodel.codec import decode_document
from vmgrid.agents.wire_limits import (
    MAX_CAPACITY,
    MAX_ID_CHARS,
    MAX_ITEMS,
    MAX_JSON_DEPTH,
    check_message,
    parse_json,
    shown,
)
from vmgrid.v1 import cluster_pb2, common_pb2, grid_pb2, node_pb2


def refusal(message: object) -> str:
    with pytest.raises(MalformedMessage) as err:
        check_message(message)  # type: ignore[arg-type]
    assert isinstance(err.value, InvalidArgument) and isinstance(err.value, VmgridError)
    return str(err.value)


def test_a_megabyte_node_id_is_refused_naming_the_field_with_the_value_cut() -> None:
    message = node_pb2.NodeLinkServiceConnectRequest(hello=node_pb2.NodeHello(node_id="n" * 2**20))
    text = refusal(message)
    assert text.startswith("NodeLinkServiceConnectRequest.hello.node_id: 'nnnn")
    assert f"({2**20} long) is longer than {MAX_ID_CHARS}" in text
    assert len(text) < 200


def test_a_timestamp_in_year_9999_is_refused_not_overflowing() -> None:
    beat = node_pb2.Heartbeat()
    beat.sent_at.seconds = 253_402_300_799  # 9999-12-31T23:59:59Z
    text = refusal(node_pb2.NodeLinkServiceConnectRequest(heartbeat=beat))
    assert "heartbeat.sent_at: 253402300799s 0ns is not a time between 1970 and 2100" in text
    report = node_pb2.NodeReport()
    report.sent_at.seconds = 253_402_300_799
    check_message(node_pb2.NodeLinkServiceConnectRequest(report=report))  # left to its codec
    with pytest.raises(MalformedMessage, match=r"report.sent_at: 253402300799s"):
        codec.decode_report(report)
    summary = grid_pb2.ClusterSummary(sequence=1)
    summary.sent_at.seconds = 253_402_300_799
    with pytest.raises(MalformedMessage, match=r"summary.sent_at"):
        from vmgrid.agents import grid_codec

        grid_codec.decode_summary(summary, "c1")


def test_an_int64_beyond_2_53_anywhere_is_refused() -> None:
    request = cluster_pb2.PlanReconfigurationRequest(time_limit_ms=2**63 - 1)
    assert "time_limit_ms: 9223372036854775807 is not in [-2**53, 2**53]" in refusal(request)


def test_too_many_entries_in_a_repeated_field_are_refused() -> None:
    request = cluster_pb2.ListVmsRequest(states=[1] * (MAX_ITEMS + 1))
    assert f"ListVmsRequest.states: {MAX_ITEMS + 1} entries" in refusal(request)


def test_non_finite_doubles_are_refused() -> None:
    result = node_pb2.CommandResult(command_id="c", progress_fraction=float("nan"))
    assert "progress_fraction: nan is not a finite number" in refusal(result)


def test_values_inside_the_bounds_pass() -> None:
    hello = node_pb2.NodeHello(node_id="n1", capacity=node_pb2.NodeCapacity(cpu_millicores=4000))
    hello.started_at.seconds = 1_800_000_000
    check_message(node_pb2.NodeLinkServiceConnectRequest(hello=hello))
    check_message(common_pb2.JobSpec(document_json="{}" + " " * 100_000))


def test_a_hello_with_the_largest_int64_capacity_is_refused_by_the_codec() -> None:
    hello = node_pb2.NodeHello(
        node_id="n1", capacity=node_pb2.NodeCapacity(cpu_millicores=2**63 - 1)
    )
    with pytest.raises(
        MalformedMessage, match=r"hello.capacity.cpu_millicores: 9223372036854775807"
    ):
        codec.decode_hello(hello)
    hello.capacity.cpu_millicores = MAX_CAPACITY
    assert codec.decode_hello(hello).capacity.cpu_millicores == MAX_CAPACITY


def test_a_report_row_with_a_huge_usage_or_a_long_uuid_is_refused_naming_the_row() -> None:
    report = node_pb2.NodeReport(
        vms=[
            node_pb2.VmUsage(uuid="a", state=common_pb2.VM_STATE_RUNNING),
            node_pb2.VmUsage(uuid="b", state=common_pb2.VM_STATE_RUNNING, memory_used_bytes=2**62),
        ]
    )
    with pytest.raises(
        MalformedMessage, match=r"report.vms\[1\].memory_used_bytes: 4611686018427387904"
    ):
        codec.decode_report(report)
    report.vms[1].memory_used_bytes = 0
    report.vms[1].uuid = "u" * 1000
    with pytest.raises(MalformedMessage, match=r"report.vms\[1\].uuid: 'uuu.*\(1000 long\)"):
        codec.decode_report(report)


def test_deeply_nested_json_is_refused_with_a_clear_error_not_a_recursion_error() -> None:
    with pytest.raises(MalformedMessage, match="nested too deep"):
        parse_json("doc", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(MalformedMessage, match=f"nested 40 deep; at most {MAX_JSON_DEPTH}"):
        parse_json("doc", "[" * 40 + "]" * 40)
    with pytest.raises(JobSpecError, match="spec.document_json"):
        decode_document(common_pb2.JobSpec(document_json='{"a":' * 50_000 + "1" + "}" * 50_000))
    with pytest.raises(JobSpecError, match="longer than"):
        decode_document(common_pb2.JobSpec(document_json='{"a": "' + "x" * 2**21 + '"}'))
    assert parse_json("doc", '{"a": [1, {"b": 2}]}') == {"a": [1, {"b": 2}]}


def test_the_safe_deserializer_answers_refusals_instead_of_raising() -> None:
    parse = safe_deserializer(cluster_pb2.ListVmsRequest.FromString)
    assert isinstance(parse(b"\xff\xff\xff\x01garbage"), Refused)
    over = cluster_pb2.PlanReconfigurationRequest(time_limit_ms=2**62).SerializeToString()
    bad = safe_deserializer(cluster_pb2.PlanReconfigurationRequest.FromString)(over)
    assert isinstance(bad, Refused) and "time_limit_ms" in bad.reason
    good = cluster_pb2.ListVmsRequest(states=[1]).SerializeToString()
    assert parse(good) == cluster_pb2.ListVmsRequest(states=[1])


def test_shown_cuts_long_values() -> None:
    assert shown("abc") == "'abc'"
    assert shown("x" * 500).endswith("... (500 long)")


def test_rules_beyond_the_cap_are_refused_naming_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    from vmgrid.agents.cluster.rules import store as rule_store
    from vmgrid.solver.constraints import Spread

    monkeypatch.setattr(rule_store, "MAX_RULES", 2)
    rules = rule_store.RuleStore()
    rules.add("r1", Spread(("a", "b")))
    rules.add("r2", Spread(("c", "d")))
    with pytest.raises(InvalidArgument, match="'r3': the cluster has 2 rules, at most 2"):
        rules.add("r3", Spread(("e", "f")))
    assert rules.add("r1", Spread(("a", "b"))).rule_id == "r1"  # a retried request still passes


def test_an_agent_cuts_its_long_texts_to_the_bound_rather_than_lose_its_link() -> None:
    from vmgrid.agents import model as m
    from vmgrid.agents.wire_limits import MAX_TEXT_CHARS

    beat = codec.encode_heartbeat(m.Heartbeat(1, 1, "libvirt: " + "x" * 10_000))
    assert len(beat.degraded_reason) == MAX_TEXT_CHARS
    check_message(node_pb2.NodeLinkServiceConnectRequest(heartbeat=beat))
    result = codec.encode_command_result(
        m.CommandResult("c1", m.CommandState.FAILED, 0.0, "error: " + "y" * 10_000)
    )
    assert len(result.message) == MAX_TEXT_CHARS


def test_a_cluster_summary_may_list_more_vms_than_other_repeated_fields() -> None:
    summary = grid_pb2.ClusterSummary(movable_vms=[grid_pb2.VmDemand()] * (MAX_ITEMS + 1))
    check_message(grid_pb2.GridLinkServiceConnectRequest(summary=summary))
