"""Reading BtrPlace instances: the committed issue-100 file, and bad files named precisely."""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from btrplace_docs import Doc
from vmgrid.solver.btrplace import (
    Among,
    BtrPlaceError,
    Online,
    Preserve,
    ResourceCapacity,
    Spread,
    load_instance,
    parse_instance,
)
from vmgrid.solver.model import NodeState, VMState

DATA = Path(__file__).parents[2] / "data" / "btrplace"


def small() -> Doc:
    return (
        Doc().node(1, cpu=8).node(2, cpu=8).node(3, online=False).vm(10, 1).vm(11, 2).vm(12, None)
    )


def test_issue_100_reads_every_node_vm_and_constraint() -> None:
    inst = load_instance(DATA / "std-perf-issue-100.json.gz")
    assert inst.name == "std-perf-issue-100"
    assert len(inst.source.nodes) == 32
    assert len(inst.source.vms) == 6688
    assert inst.of_type(ResourceCapacity) == [
        ResourceCapacity(("2",), "cpu", 569, False),
        ResourceCapacity(("1",), "cpu", 572, False),
        ResourceCapacity(("0",), "cpu", 640, False),
    ]
    assert set(inst.source.resources) == {"cpu", "mem", "storage-cache", "storage-cpu"}
    assert inst.objective == "minimizeMTTR"


def test_mapping_states_hosts_and_capacities_are_read() -> None:
    inst = parse_instance(small().build())
    src = inst.source
    assert src.nodes["3"].state is NodeState.OFFLINE
    assert src.nodes["1"].cap("cpu") == 8
    assert src.vms["10"].host == "1"
    assert src.vms["12"].state is VMState.READY
    assert src.vms["12"].host is None


def test_plain_json_file_reads_like_gzip(tmp_path: Path) -> None:
    doc = small().build()
    plain = tmp_path / "a.json"
    plain.write_text(json.dumps(doc))
    packed = tmp_path / "b.json.gz"
    packed.write_bytes(gzip.compress(json.dumps(doc).encode()))
    assert load_instance(plain).source == load_instance(packed).source


def test_duplicated_constraints_are_kept_once() -> None:
    doc = small().constraint("online", node=1).constraint("online", node=1).build()
    assert parse_instance(doc).constraints == (Online("1"),)


def test_preserve_raises_the_new_demand_only() -> None:
    doc = small().constraint("preserve", vm=10, rc="cpu", amount=5).build()
    inst = parse_instance(doc)
    assert inst.target_demand("10") == {"cpu": 5, "mem": 1}
    assert inst.source.vms["10"].demand == {"cpu": 1, "mem": 1}
    assert inst.target_demand("11") == {"cpu": 1, "mem": 1}
    assert inst.of_type(Preserve) == [Preserve("10", "cpu", 5)]


def test_spread_and_among_keep_their_continuity() -> None:
    doc = (
        small()
        .constraint("spread", vms=[10, 11], continuous=True)
        .constraint("among", vms=[10, 11], parts=[[1], [2, 3]], continuous=False)
        .build()
    )
    spread, among = parse_instance(doc).constraints
    assert spread == Spread(("10", "11"), True)
    assert among == Among(("10", "11"), (frozenset({"1"}), frozenset({"2", "3"})), False)


def test_duration_attributes_feed_the_model() -> None:
    doc = Doc().node(1, boot=7).vm(10, 1, migrate=3, boot=4).build()
    src = parse_instance(doc).source
    assert src.vms["10"].duration_s("migrate") == 3
    assert src.nodes["1"].duration_s("boot") == 7
    assert src.nodes["1"].duration_s("shutdown") == 1


def _bad(edit: Any) -> dict[str, Any]:
    doc = copy.deepcopy(small().build())
    edit(doc)
    return doc


BAD_FILES = [
    (
        "unknown VM in a constraint",
        lambda d: d["constraints"].append({"id": "spread", "vms": [10, 99]}),
        "constraints[0] (spread): unknown VM 99",
    ),
    (
        "unknown node in a constraint",
        lambda d: d["constraints"].append({"id": "offline", "node": 42}),
        "constraints[0] (offline).node: unknown node 42",
    ),
    (
        "unknown constraint",
        lambda d: d["constraints"].append({"id": "teleport", "vm": 10}),
        "constraints[0]: unknown constraint 'teleport'; accepted: among",
    ),
    (
        "negative capacity",
        lambda d: d["model"]["views"][0]["nodes"].update({"2": -4}),
        "model.views[cpu].nodes[2]: capacity: -4 is negative",
    ),
    (
        "negative consumption",
        lambda d: d["model"]["views"][1]["vms"].update({"10": -1}),
        "model.views[mem].vms[10]: consumption: -1 is negative",
    ),
    (
        "unknown resource in preserve",
        lambda d: d["constraints"].append({"id": "preserve", "vm": 10, "rc": "gpu", "amount": 1}),
        "constraints[0] (preserve).rc: unknown resource 'gpu'",
    ),
    (
        "VM listed twice",
        lambda d: d["model"]["mapping"]["readyVMs"].append(10),
        "model.mapping.readyVMs: VM 10 is listed twice",
    ),
    (
        "node both online and offline",
        lambda d: d["model"]["mapping"]["offlineNodes"].append(1),
        "node 1 is listed twice",
    ),
    (
        "VM in a view but not in the mapping",
        lambda d: d["model"]["views"][0]["vms"].update({"77": 1}),
        "model.views[cpu].vms: unknown VM 77",
    ),
    (
        "non-integer id",
        lambda d: d["constraints"].append({"id": "running", "vm": "web"}),
        "constraints[0] (running).vm: id 'web' is not an integer",
    ),
    (
        "negative duration",
        lambda d: d["model"]["attributes"]["vms"].update({"10": {"migrate": -2}}),
        "model.attributes.vms[10].migrate: duration: -2 is negative",
    ),
    ("no model", lambda d: d.pop("model"), "model: expected a JSON object, got NoneType"),
    (
        "empty among",
        lambda d: d["constraints"].append({"id": "among", "vms": [10], "parts": []}),
        "constraints[0] (among).parts: empty",
    ),
]


@pytest.mark.parametrize(
    ("edit", "message"), [b[1:] for b in BAD_FILES], ids=[b[0] for b in BAD_FILES]
)
def test_bad_file_names_the_element(edit: Any, message: str) -> None:
    with pytest.raises(BtrPlaceError) as caught:
        parse_instance(_bad(edit), "bad")
    text = str(caught.value)
    assert message in text
    assert text.startswith("bad: ")
    assert "\n" not in text


def test_invalid_json_is_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"model": ')
    with pytest.raises(BtrPlaceError, match="broken.json: not valid JSON"):
        load_instance(path)


def test_truncated_gzip_and_missing_file_are_one_line_errors(tmp_path: Path) -> None:
    cut = tmp_path / "cut.json.gz"
    cut.write_bytes((DATA / "std-perf-issue-100.json.gz").read_bytes()[:1000])
    with pytest.raises(BtrPlaceError, match="cut.json.gz: not a complete gzip file"):
        load_instance(cut)
    with pytest.raises(BtrPlaceError, match="nowhere.json: cannot read: No such file"):
        load_instance(tmp_path / "nowhere.json")
