"""Pressure-stall information on the node link: node.proto Pressure <-> model.Pressure.

A stall the agent could not read travels with ``available = false`` and decodes to None, so
"unknown" never turns into "no pressure". Decoding checks that every avg10 is a percentage.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from vmgrid.agents import model as m
from vmgrid.agents.errors import MalformedMessage
from vmgrid.agents.wire_limits import MAX_ID_CHARS, MAX_ITEMS, shown
from vmgrid.v1 import node_pb2

_RESOURCES = ("cpu", "memory", "io")


def encode_pressure(pressure: m.Pressure, msg: node_pb2.Pressure) -> None:
    """Fill `msg` from `pressure` (only the stalls that are available)."""
    for name in _RESOURCES:
        stall = getattr(pressure, name)
        if stall is None:
            continue
        wire = getattr(msg, name)
        wire.available = True
        wire.some_avg10 = stall.some_avg10
        wire.full_avg10 = stall.full_avg10
        wire.some_total_us = stall.some_total_us
        wire.full_total_us = stall.full_total_us


def decode_pressure(path: str, msg: node_pb2.Pressure) -> m.Pressure:
    """The pressure in `msg`; MalformedMessage names `path`.<resource>.<field> when an avg10
    is not a percentage."""
    stalls: dict[str, m.PressureStall | None] = {}
    for name in _RESOURCES:
        wire = getattr(msg, name)
        if not wire.available:
            stalls[name] = None
            continue
        for field in ("some_avg10", "full_avg10"):
            value = getattr(wire, field)
            if not (math.isfinite(value) and 0.0 <= value <= 100.0):
                raise MalformedMessage(
                    f"{path}.{name}.{field}", f"{value!r} is not a percentage in [0, 100]"
                )
        stalls[name] = m.PressureStall(
            wire.some_avg10, wire.full_avg10, wire.some_total_us, wire.full_total_us
        )
    if not any(stalls.values()):
        return m.NO_PRESSURE
    return m.Pressure(**stalls)


def decode_vm_pressure(rows: Iterable[node_pb2.VmPressure]) -> tuple[m.VmPressure, ...]:
    """The report's per-VM pressure rows; a row without a uuid (or with one longer than
    MAX_ID_CHARS), or more than MAX_ITEMS rows, is refused."""
    out = []
    for i, row in enumerate(rows):
        if i >= MAX_ITEMS:
            raise MalformedMessage("report.vm_pressure", f"more than {MAX_ITEMS} rows")
        if not row.uuid:
            raise MalformedMessage(f"report.vm_pressure[{i}].uuid", "missing VM uuid")
        if len(row.uuid) > MAX_ID_CHARS:
            raise MalformedMessage(
                f"report.vm_pressure[{i}].uuid", f"{shown(row.uuid)} is longer than {MAX_ID_CHARS}"
            )
        out.append(
            m.VmPressure(
                row.uuid, decode_pressure(f"report.vm_pressure[{i}].pressure", row.pressure)
            )
        )
    return tuple(out)


def encode_vm_pressure(rows: Iterable[m.VmPressure], out: object) -> None:
    """Append the rows to a repeated VmPressure field."""
    for row in rows:
        wire = out.add(uuid=row.uuid)  # type: ignore[attr-defined]
        encode_pressure(row.pressure, wire.pressure)
