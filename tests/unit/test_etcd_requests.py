"""The JSON bodies the etcd client sends to the gateway (pure; the calls themselves are
tested against real etcd in tests/integration/replica)."""

from __future__ import annotations

import base64

import pytest
from vmgrid.agents.common.etcd import Compare, Delete, Put
from vmgrid.agents.common.etcd.client import prefix_end
from vmgrid.agents.errors import InvalidArgument


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_prefix_end_is_the_next_key_after_every_key_under_the_prefix() -> None:
    assert prefix_end("/vmgrid/plans/") == "/vmgrid/plans0"
    assert prefix_end("a") == "b"
    assert prefix_end("") == "\0"


def test_compares_name_their_target_field_and_keep_revisions_as_strings() -> None:
    assert Compare("/k", "create", 0).to_json() == {
        "key": _b64("/k"),
        "result": "EQUAL",
        "target": "CREATE",
        "create_revision": "0",
    }
    assert Compare("/k", "mod", 17).to_json()["mod_revision"] == "17"
    assert Compare("/k", "value", "v").to_json()["value"] == _b64("v")
    with pytest.raises(InvalidArgument, match="compare target 'lease': one of create, mod"):
        Compare("/k", "lease", 1).to_json()


def test_puts_carry_their_lease_and_prefix_deletes_their_range() -> None:
    assert Put("/k", "v").to_json() == {"request_put": {"key": _b64("/k"), "value": _b64("v")}}
    assert Put("/k", "v", lease=42).to_json()["request_put"]["lease"] == "42"
    assert Delete("/p/", prefix=True).to_json() == {
        "request_delete_range": {"key": _b64("/p/"), "range_end": _b64("/p0")}
    }
