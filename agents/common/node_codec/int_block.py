"""The manager's side of a report's integer block (``VmColumns.int_block``, #17).

The block is little-endian int64, column after column in ``BLOCK_FIELDS`` order, one value
per VM in each (the agent writes it with ``columns.encode_int_block``, without numpy). The
manager checks it and hands the history its sampled columns as a view of the block, so a
report's values never become Python integers on the ingest path; rows (``VmRows``) convert
the block when someone reads them.

The bound check ("every value in [0, 2**50]") looks at bytes first: a little-endian int64
whose top byte is 0 and next byte below 4 is in [0, 2**50), which two byte-string operations
in C confirm for the whole block; only a block that fails them (a value of exactly 2**50, or
a bad one) is read as numbers, to accept it or to name the first bad value.

This module imports numpy and is imported only by the manager's decoder, when a report first
carries a block.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from vmgrid.agents.common.node_codec.report_errors import (
    BLOCK_FIELDS,
    VM_INT_FIELDS,
    VM_MIGRATION_FIELDS,
    VM_SAMPLED_FIELDS,
)
from vmgrid.agents.errors import MalformedMessage
from vmgrid.agents.model import VmUsage
from vmgrid.agents.wire_limits import MAX_CAPACITY

BASE_COLUMNS = len(VM_INT_FIELDS)
ALL_COLUMNS = BASE_COLUMNS + len(VM_MIGRATION_FIELDS)
_SAMPLED = len(VM_SAMPLED_FIELDS)
_ROW_ORDER = [BLOCK_FIELDS.index(name) for name in (*VM_INT_FIELDS, *VM_MIGRATION_FIELDS)]
"""Block columns in VmRow's order (its integers before ``simulated``, then after)."""
_BELOW_TOP = bytes(range(MAX_CAPACITY >> 48))
"""Values of a little-endian int64's seventh byte that keep it below 2**50 (top byte 0)."""

assert MAX_CAPACITY == 1 << 50, "the byte check assumes the bound is 2**50"


def decode(blob: bytes, n: int, path: str) -> npt.NDArray[np.int64]:
    """The checked block of `n` VMs as columns x VMs (a view of `blob`); MalformedMessage
    names the column and the VM of the first value out of bounds."""
    size = len(blob)
    if size == 8 * BASE_COLUMNS * n:
        columns = BASE_COLUMNS
    elif size == 8 * ALL_COLUMNS * n:
        columns = ALL_COLUMNS
    else:
        raise MalformedMessage(
            path,
            f"{size} bytes for {n} VMs; give 8 x {BASE_COLUMNS} x {n} or "
            f"8 x {ALL_COLUMNS} x {n} (little-endian int64, column after column)",
        )
    values = np.frombuffer(blob, dtype="<i8").reshape(columns, n)
    if blob[7::8].strip(b"\0") or blob[6::8].translate(None, _BELOW_TOP):
        _check_numbers(values, n, path)
    return values


def sampled(values: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The history's columns of a checked block (cpu, memory, rx, tx x VMs): a view."""
    return values[:_SAMPLED]


_ROW_INDEX = {
    i: BLOCK_FIELDS.index(name)
    for i, name in enumerate(VmUsage.__dataclass_fields__)
    if name in BLOCK_FIELDS
}
"""VmRow index (VmUsage's field order) of each field in the block -> its column there."""


def row_column(values: npt.NDArray[np.int64], index: int) -> list[int] | None:
    """The integer column of VmRow index `index` as Python integers (zeros for a migration
    column the block does not carry), or None for a field not in the block."""
    at = _ROW_INDEX.get(index)
    if at is None:
        return None
    if at >= values.shape[0]:
        return [0] * values.shape[1]
    column: list[int] = values[at].tolist()
    return column


def rows_columns(
    values: npt.NDArray[np.int64],
) -> tuple[list[Sequence[int]], list[Sequence[int]]]:
    """The block's columns as Python integers: (the integer columns before ``simulated``, the
    migration columns after it, zeros when the block has none), as a VmRow takes them."""
    columns: list[Sequence[int]] = values.tolist()
    if len(columns) == BASE_COLUMNS:
        columns += [(0,) * values.shape[1]] * len(VM_MIGRATION_FIELDS)
    ordered = [columns[i] for i in _ROW_ORDER]
    return ordered[:BASE_COLUMNS], ordered[BASE_COLUMNS:]


def _check_numbers(values: npt.NDArray[np.int64], n: int, path: str) -> None:
    bad = (values < 0) | (values > MAX_CAPACITY)
    if not bad.any():
        return  # a value of exactly 2**50
    first = int(np.argmax(bad.reshape(-1)))
    value = int(values.reshape(-1)[first])
    where = f"{path}.{BLOCK_FIELDS[first // n]}[{first % n}]"
    if value < 0:
        raise MalformedMessage(where, f"negative value {value}; must be >= 0")
    raise MalformedMessage(where, f"{value} is above the largest accepted, {MAX_CAPACITY} (2**50)")
