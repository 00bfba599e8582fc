"""Decoding with repeated `among` parts shared: the same document, the same instance, less work."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from btrplace_docs import Doc
from vmgrid.bench.btrplace_c100 import build
from vmgrid.solver.btrplace import Among, Spread, load_instance, parse_instance
from vmgrid.solver.btrplace.shared_json import loads


def _doc() -> Doc:
    doc = Doc()
    for n in range(1, 7):
        doc.node(n, cpu=8)
    doc.vm(10, 1).vm(11, 2).vm(12, 4).vm(13, 5)
    parts = [[1, 2, 3], [4, 5, 6]]
    doc.constraint("among", vms=[10, 11], parts=parts, continuous=True)
    doc.constraint("among", vms=[12, 13], parts=parts, continuous=False)
    doc.constraint("among", vms=[10], parts=[[1, 2], [3, 4, 5, 6]])
    return doc


def test_repeated_parts_decode_to_the_same_document_and_share_one_list() -> None:
    raw = json.dumps(_doc().build()).encode()
    decoded = loads(raw)
    assert decoded == json.loads(raw)
    first, second, third = (c["parts"] for c in decoded["constraints"])
    assert first is second
    assert third is not first and third == [[1, 2], [3, 4, 5, 6]]


def test_compact_and_spaced_writers_are_both_recognised() -> None:
    doc = _doc().build()
    for raw in (json.dumps(doc, separators=(",", ":")), json.dumps(doc, indent=2)):
        decoded = loads(raw.encode())
        assert decoded == doc
        assert decoded["constraints"][0]["parts"] is decoded["constraints"][1]["parts"]


def test_a_document_already_using_the_marker_key_is_decoded_plainly() -> None:
    doc = _doc().build()
    doc["model"]["attributes"]["nodes"]["1"] = {"$vmgrid.shared-parts": 0}
    raw = json.dumps(doc).encode()
    assert loads(raw) == doc


def test_the_instance_read_from_a_file_has_the_rules_of_the_document(tmp_path: Path) -> None:
    path = tmp_path / "three-amongs.json.gz"
    path.write_bytes(gzip.compress(json.dumps(_doc().build()).encode()))
    from_file = load_instance(path)
    assert from_file.constraints == parse_instance(_doc().build()).constraints
    one, two, _ = from_file.of_type(Among)
    assert one.parts == (frozenset({"1", "2", "3"}), frozenset({"4", "5", "6"}))
    assert one.parts[0] is two.parts[0]


def _tiered() -> Doc:
    """Two applications of two tiers each; c1 is already constrained, c2 is not."""
    doc = Doc()
    for n in range(1, 9):
        doc.node(n, cpu=8)
    layout = {  # vm: (host, app, number, template)
        20: (1, "c1", 1, "a"),
        21: (2, "c1", 2, "a"),
        22: (3, "c1", 3, "b"),
        30: (5, "c2", 1, "a"),
        31: (6, "c2", 2, "a"),
        32: (7, "c2", 3, "b"),
        33: (8, "c2", 4, "b"),
    }
    for vm, (host, app, number, template) in layout.items():
        doc.vm(vm, host, entropy_id=f"clients.{app}.VM{number}", template=template)
    parts = [[1, 2, 3, 4], [5, 6, 7, 8]]
    doc.constraint("spread", vms=[20, 21], continuous=True)
    doc.constraint("among", vms=[22], parts=parts, continuous=True)
    return doc


def test_c100_variant_constrains_every_tier_of_the_unconstrained_applications() -> None:
    variant, counts = build(_tiered().build())
    assert counts == {"spread": 2, "among": 1, "skipped_spread": 0, "skipped_among": 0, "apps": 1}
    inst = parse_instance(variant)
    assert Spread(("30", "31"), True) in inst.constraints
    assert Spread(("32", "33"), True) in inst.constraints
    groups = (frozenset({"1", "2", "3", "4"}), frozenset({"5", "6", "7", "8"}))
    assert Among(("32", "33"), groups, True) in inst.constraints
    assert len(inst.of_type(Spread)) == 3


def test_c100_variant_skips_a_tier_that_already_shares_a_node() -> None:
    doc = _tiered()
    doc.online[8]["runningVMs"].remove(33)
    doc.online[7]["runningVMs"].append(33)
    _, counts = build(doc.build())
    assert counts["spread"] == 1 and counts["skipped_spread"] == 1
