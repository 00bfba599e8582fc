"""A node report in the form the cluster manager ingests it (no object per VM).

The codec decodes a report's wire message straight into a `ReportRows`; the manager's state
keeps its rows and writes its samples into the node's history in one block, and builds the
VmUsage objects of a node only when someone reads them (a snapshot, a view).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from typing import TYPE_CHECKING, Any, overload

from vmgrid.agents.model import HostUsage, NodeReport, VmPressure, VmState, VmUsage
from vmgrid.agents.traffic import TrafficMatrix

if TYPE_CHECKING:  # numpy stays out of the agent
    from numpy import int64
    from numpy.typing import NDArray

VmRow = tuple[str, str, VmState, int, int, int, int, int, int, int, int, bool, int, int, int]
"""A VM's usage as a plain tuple of VmUsage's fields, in their order (``VmUsage(*row)``)."""


class VmRows(Sequence[VmRow]):
    """A report's VM rows, zipped from its columns when first read (#17).

    The manager keeps a node's last report as its rows, but reads them only when its VMs or
    their states change, or when someone reads the node's VMs; a report in columns is applied
    without building (and, a second later, freeing) one tuple per VM. Equal to any sequence of
    the same rows.
    """

    __slots__ = ("_columns", "_rows", "_length", "_one")

    def __init__(
        self,
        columns: Sequence[Sequence[Any]] | Callable[[], Sequence[Sequence[Any]]],
        length: int,
        one: Callable[[int], Sequence[Any] | None] | None = None,
    ) -> None:
        self._columns: Sequence[Sequence[Any]] | Callable[[], Sequence[Sequence[Any]]] | None
        self._columns = columns
        """The columns, or what makes them (a report's integer block is converted only when
        its rows are read)."""
        self._rows: tuple[VmRow, ...] = ()
        self._length = length
        self._one = one
        """One column by its VmRow index while the columns are not made (None: not that one),
        so that reading one field of an integer block does not convert the whole block."""

    def _built(self) -> tuple[VmRow, ...]:
        if self._columns is not None:
            columns = self._columns() if callable(self._columns) else self._columns
            self._rows = tuple(zip(*columns, strict=True))
            self._columns = None
        return self._rows

    def column(self, index: int) -> Sequence[Any]:
        """One field of every row (a VmRow index), without zipping the rows if they are not
        built (the columns are made once and kept for the rows)."""
        if self._columns is None:
            return [row[index] for row in self._rows]
        if callable(self._columns):
            if self._one is not None and (column := self._one(index)) is not None:
                return column
            self._columns = self._columns()
        return self._columns[index]

    @overload
    def __getitem__(self, index: int) -> VmRow: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[VmRow, ...]: ...
    def __getitem__(self, index: int | slice) -> VmRow | tuple[VmRow, ...]:
        return self._built()[index]

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[VmRow]:
        return iter(self._built())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return self._built() == tuple(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"VmRows({self._built()!r})"


SAMPLE_WIDTH = 5
"""Integers per VM in ``ReportRows.samples``."""


@dataclass(frozen=True, slots=True, eq=False)
class ReportRows:
    """A report as the manager ingests it: each VM as a `VmRow` rather than a VmUsage, and
    the values its history keeps already laid out, so that applying it builds no object per
    VM (VmUsage objects are built when the state is read, not 40,000 times a second).

    ``samples`` holds `SAMPLE_WIDTH` integers per VM, in row order: sent_at (the report's, 0
    when it has none), cpu_used_millicores, memory_used_bytes, net_rx and net_tx bytes per
    second.
    """

    sent_at_unix_ns: int
    sequence: int
    host: HostUsage
    uuids: tuple[str, ...]
    states: tuple[VmState, ...]
    rows: Sequence[VmRow]
    """A tuple, or VmRows (built when first read) for a report decoded from columns."""
    samples: list[int] | NDArray[int64]
    """A list as above, or, for a report whose integers came as one block, the block's
    sampled columns (cpu, memory, rx, tx x VMs: an int64 array whose time is ``sent_at``;
    ``sample_list`` gives the list)."""
    vm_pressure: tuple[VmPressure, ...] = ()
    """Pressure of the VMs whose cgroup the agent reads (NodeReport.vm_pressure)."""
    traffic: TrafficMatrix | None = None
    """Measured VM-to-VM traffic (NodeReport.traffic)."""

    def __eq__(self, other: object) -> bool:
        """Equal fields, the samples compared as lists (a block's columns or a list)."""
        if not isinstance(other, ReportRows):
            return NotImplemented
        mine = sample_list(self.samples, self.sent_at_unix_ns)
        theirs = sample_list(other.samples, other.sent_at_unix_ns)
        return mine == theirs and all(
            getattr(self, name) == getattr(other, name)
            for name in self.__slots__
            if name != "samples"
        )

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def of(cls, report: NodeReport) -> ReportRows:
        """The same report in this form (tests, simulated agents: not the hot path)."""
        vms = report.vms
        sent = report.sent_at_unix_ns
        samples: list[int] = []
        for vm in vms:
            samples += (
                sent,
                vm.cpu_used_millicores,
                vm.memory_used_bytes,
                vm.net_rx_bytes_per_second,
                vm.net_tx_bytes_per_second,
            )
        return cls(
            sent,
            report.sequence,
            report.host,
            tuple(vm.uuid for vm in vms),
            tuple(vm.state for vm in vms),
            tuple(vm_row(vm) for vm in vms),
            samples,
            report.vm_pressure,
            report.traffic,
        )


def interleaved(sent_at: int, *columns: Sequence[int]) -> list[int]:
    """SAMPLE_WIDTH integers per VM from the sampled columns (cpu, memory, rx, tx, one value
    per VM each): `sent_at`, then the VM's value of each column."""
    return list(chain.from_iterable(zip(repeat(sent_at), *columns, strict=False)))


def sample_list(samples: list[int] | NDArray[int64], sent_at: int) -> list[int]:
    """A report's samples as a list of SAMPLE_WIDTH integers per VM (sampled columns of a block
    interleaved with `sent_at`): the form of the rare paths, a node's VMs changing."""
    if isinstance(samples, list):
        return samples
    return interleaved(sent_at, *samples.tolist())


def vm_row(vm: VmUsage) -> VmRow:
    """The VmRow of a VmUsage (``VmUsage(*vm_row(vm)) == vm``)."""
    return (
        vm.uuid,
        vm.name,
        vm.state,
        vm.vcpus,
        vm.cpu_used_millicores,
        vm.memory_used_bytes,
        vm.memory_allocated_bytes,
        vm.net_rx_bytes_per_second,
        vm.net_tx_bytes_per_second,
        vm.disk_read_bytes_per_second,
        vm.disk_write_bytes_per_second,
        vm.simulated,
        vm.memory_resident_bytes,
        vm.memory_dirty_bytes_per_second,
        vm.memory_dirty_set_bytes,
    )


def _make_vm_usage_constructor() -> Callable[..., VmUsage]:
    """A positional VmUsage constructor about 2x faster than the frozen dataclass __init__.

    It fills the slots directly (what the generated __init__ does through
    object.__setattr__); a snapshot of a large cluster builds tens of thousands of VmUsage.
    """
    new = object.__new__
    names = tuple(VmUsage.__dataclass_fields__)
    setters = tuple(getattr(VmUsage, name).__set__ for name in names)
    if len(setters) != 15:  # pragma: no cover - guards a change of VmUsage
        raise AssertionError(f"VmUsage has {len(setters)} fields; update VmRow")
    s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14 = setters
    cls = VmUsage

    def build(*v: Any) -> VmUsage:
        vm = new(cls)
        s0(vm, v[0]), s1(vm, v[1]), s2(vm, v[2]), s3(vm, v[3]), s4(vm, v[4]), s5(vm, v[5])
        s6(vm, v[6]), s7(vm, v[7]), s8(vm, v[8]), s9(vm, v[9]), s10(vm, v[10]), s11(vm, v[11])
        s12(vm, v[12]), s13(vm, v[13]), s14(vm, v[14])
        return vm  # type: ignore[no-any-return]

    return build


new_vm_usage = _make_vm_usage_constructor()
"""``new_vm_usage(*row)``: the VmUsage of a VmRow."""

_FIELD_INDEX = {name: i for i, name in enumerate(VmUsage.__dataclass_fields__)}


def column_of(rows: Sequence[VmRow], field: str) -> Sequence[Any]:
    """One VmUsage field of every row: the report's own column when its rows are `VmRows`
    (no row is zipped), else read row by row."""
    index = _FIELD_INDEX[field]
    return rows.column(index) if isinstance(rows, VmRows) else [row[index] for row in rows]
