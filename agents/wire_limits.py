"""Bounds on every wire message, in one place, and the check that applies them.

Every server decodes what it receives through ``check_message`` (see
``vmgrid.agents.common.wire_guard``) before any codec sees it, so a 1 MB node id, a year-9999
timestamp or a capacity of 2**63-1 is refused with INVALID_ARGUMENT naming the field, whatever
the method. The codecs add the checks that need meaning (signs, capacities, enums, ids); they
take their bounds from here too. A refusal is a ``MalformedMessage`` (an ``InvalidArgument``,
under the root ``VmgridError``) whose message names the dotted field and shows the value,
truncated.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from vmgrid.agents.errors import MalformedMessage

MAX_ID_CHARS = 256
"""Ids and names: node, VM, cluster, plan, command, rule, job, snapshot ids and names."""
MAX_LINE_CHARS = 1024
"""Short free strings: URIs, paths, endpoints, labels, versions."""
MAX_TEXT_CHARS = 4096
"""Human text: reasons, messages, details, descriptions."""
MAX_DOCUMENT_BYTES = 1 << 20
"""Documents: a job document, rule parameters, a domain XML, a seed ISO."""
MAX_JSON_DEPTH = 32
"""Nesting of a JSON document (objects and arrays)."""
MAX_ITEMS = 10_000
"""Entries of any repeated field (VMs per report, nodes, rules, ids in a filter...)."""
MAX_CLUSTER_VMS = 100_000
"""Entries of a cluster summary's VM lists (movable VMs, inter-cluster traffic)."""
MAX_NODES = 10_000
"""Nodes one cluster manager keeps (a hello beyond them is refused, RESOURCE_EXHAUSTED)."""
MAX_CLUSTERS = 1_000
"""Clusters one coordinator registers."""
MAX_RULES = 2_000
"""Placement rules of one cluster (so that ListRules stays well under gRPC's 4 MB)."""
MAX_MESSAGE_DEPTH = 16
"""Nesting of protobuf messages inside one another."""
MAX_QUANTITY = 1 << 53
"""Any int64 on the wire, in magnitude (exact in a double, so JSON and the dashboard agree)."""
MAX_CAPACITY = 1 << 50
"""One node's or VM's capacity or usage: 1 PiB of memory, 2**50 millicores or bit/s."""
MAX_UNIX_SECONDS = 4_102_444_800
"""Latest timestamp accepted: 2100-01-01T00:00:00Z; the earliest is the epoch."""
MAX_SHOWN_CHARS = 60
"""How much of a refused value an error message shows."""

_TEXT_FIELDS = frozenset(
    {"message", "detail", "reason", "degraded_reason", "description", "summary"}
)
_DOCUMENT_FIELDS = frozenset({"document_json", "parameters_json", "domain_xml", "seed_iso"})
_ID_SUFFIXES = ("_id", "_ids", "uuid", "uuids", "name", "_names", "_prefix", "kind", "_a", "_b")


def shown(value: object) -> str:
    """``repr(value)`` cut to MAX_SHOWN_CHARS, saying how long it was when cut."""
    text = repr(value)
    if len(text) <= MAX_SHOWN_CHARS:
        return text
    size = len(value) if isinstance(value, str | bytes) else len(text)
    return f"{text[:MAX_SHOWN_CHARS]}... ({size} long)"


def string_limit(field_name: str) -> int:
    """The longest value accepted for a string or bytes field of that name."""
    if field_name in _DOCUMENT_FIELDS:
        return MAX_DOCUMENT_BYTES
    if field_name in _TEXT_FIELDS:
        return MAX_TEXT_CHARS
    if field_name.endswith(_ID_SUFFIXES):
        return MAX_ID_CHARS
    return MAX_LINE_CHARS


def check_length(path: str, value: str | bytes, limit: int) -> None:
    if len(value) > limit:
        raise MalformedMessage(path, f"{shown(value)} is longer than {limit}")


def check_range(path: str, value: int, low: int, high: int) -> int:
    if not low <= value <= high:
        raise MalformedMessage(path, f"{shown(value)} is not in [{low}, {high}]")
    return value


def clamped(value: int) -> int:
    """A Python int sum brought into [0, MAX_QUANTITY] before it is encoded into an int64
    (a sum of many node capacities may exceed what the wire carries or peers accept)."""
    return min(max(value, 0), MAX_QUANTITY)


def check_unix_ns(path: str, seconds: int, nanos: int) -> int:
    """A Timestamp's (seconds, nanos) as Unix nanoseconds, between the epoch and 2100."""
    if not (0 <= seconds <= MAX_UNIX_SECONDS and 0 <= nanos < 1_000_000_000):
        raise MalformedMessage(
            path,
            f"{seconds}s {nanos}ns is not a time between 1970 and 2100 "
            f"(seconds in [0, {MAX_UNIX_SECONDS}], nanos in [0, 999999999])",
        )
    return seconds * 1_000_000_000 + nanos


def json_depth(value: object) -> int:
    """Nesting depth of a parsed JSON value, iteratively (a deep document cannot recurse)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in item)
    return deepest


def parse_json(path: str, text: str | bytes) -> Any:
    """Parse a JSON document no larger than MAX_DOCUMENT_BYTES and nested at most
    MAX_JSON_DEPTH deep; MalformedMessage names ``path`` otherwise (never a RecursionError)."""
    import json  # here: the node agent imports this module and never parses JSON

    check_length(path, text, MAX_DOCUMENT_BYTES)
    try:
        data = json.loads(text)
    except RecursionError:
        raise MalformedMessage(path, f"JSON nested too deep; at most {MAX_JSON_DEPTH}") from None
    except ValueError as exc:
        raise MalformedMessage(path, f"is not valid JSON ({exc}): {shown(text)}") from None
    depth = json_depth(data)
    if depth > MAX_JSON_DEPTH:
        raise MalformedMessage(path, f"JSON nested {depth} deep; at most {MAX_JSON_DEPTH}")
    return data


# ---- the generic check of a whole message, driven by its descriptor ------------------------

Check = Callable[[str, Any, int], None]

_INT64 = frozenset(
    {
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED64,
    }
)
_FLOATS = frozenset({FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT})
_STRINGS = frozenset({FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES})

ITEMS_BY_FIELD = {
    "vmgrid.v1.ClusterSummary.movable_vms": MAX_CLUSTER_VMS,
    "vmgrid.v1.ClusterSummary.inter_cluster_traffic": MAX_CLUSTER_VMS,
    "vmgrid.v1.ClusterSummary.external_flows": MAX_CLUSTER_VMS,
    "vmgrid.v1.ClusterSummary.vm_addresses": MAX_CLUSTER_VMS,
}
"""Repeated fields allowed more than MAX_ITEMS entries."""

CODEC_CHECKED = frozenset({"vmgrid.v1.NodeLinkServiceConnectRequest.report"})
"""Fields left wholly to their codec: a node's report is checked by ``decode_report`` (each
field read once on the ingest hot path, every bound above applied), which answers a bad one
with a StreamError and keeps the agent's stream open."""


def check_message(message: Message, path: str = "") -> None:
    """Refuse any value of ``message`` outside the bounds above; MalformedMessage names it."""
    _checker(message.DESCRIPTOR)(path or message.DESCRIPTOR.name, message, 0)


def _scalar_check(field: FieldDescriptor) -> Check | None:
    if field.type in _STRINGS:
        limit = string_limit(field.name)

        def string(path: str, value: Any, depth: int) -> None:
            if len(value) > limit:
                raise MalformedMessage(path, f"{shown(value)} is longer than {limit}")

        return string
    if field.type in _INT64:

        def int64(path: str, value: Any, depth: int) -> None:
            if not -MAX_QUANTITY <= value <= MAX_QUANTITY:
                raise MalformedMessage(path, f"{value} is not in [-2**53, 2**53]")

        return int64
    if field.type in _FLOATS:

        def floating(path: str, value: Any, depth: int) -> None:
            if not math.isfinite(value):
                raise MalformedMessage(path, f"{value} is not a finite number")

        return floating
    return None


def _timestamp(path: str, value: Any, depth: int) -> None:
    check_unix_ns(path, value.seconds, value.nanos)


def _field_check(field: FieldDescriptor) -> Check | None:
    if field.message_type is None:
        return _scalar_check(field)
    if field.message_type.full_name == "google.protobuf.Timestamp":
        return _timestamp
    descriptor = field.message_type

    def nested(path: str, value: Any, depth: int) -> None:
        if depth >= MAX_MESSAGE_DEPTH:
            raise MalformedMessage(path, f"messages nested deeper than {MAX_MESSAGE_DEPTH}")
        _checker(descriptor)(path, value, depth + 1)

    return nested


def _map_check(field: FieldDescriptor) -> Check:
    entry = field.message_type
    assert entry is not None  # a map field's entries are messages
    key_check = _field_check(entry.fields_by_name["key"])
    value_check = _field_check(entry.fields_by_name["value"])

    def mapping(path: str, value: Any, depth: int) -> None:
        for key in value:
            if key_check is not None:
                key_check(f"{path}[{shown(key)}]", key, depth)
            if value_check is not None:
                value_check(f"{path}[{shown(key)}]", value[key], depth)

    return mapping


def _repeated_check(field: FieldDescriptor) -> Check:
    element = _field_check(field)
    limit = ITEMS_BY_FIELD.get(field.full_name, MAX_ITEMS)

    def repeated(path: str, value: Any, depth: int) -> None:
        if len(value) > limit:
            raise MalformedMessage(path, f"{len(value)} entries; at most {limit}")
        if element is not None:
            for i, item in enumerate(value):
                element(f"{path}[{i}]", item, depth)

    return repeated


@functools.cache
def _checker(descriptor: Descriptor) -> Check:
    checks: dict[str, Check] = {}
    for field in descriptor.fields:
        check: Check | None
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            check = _map_check(field)
        elif field.is_repeated:
            check = _repeated_check(field)
        else:
            check = _field_check(field)
        if check is not None and field.full_name not in CODEC_CHECKED:
            checks[field.name] = check

    def check_fields(path: str, message: Any, depth: int) -> None:
        for field, value in message.ListFields():
            check = checks.get(field.name)
            if check is not None:
                check(f"{path}.{field.name}", value, depth)

    return check_fields
