"""Node histories: VMs come and go on a node, the block grows, and every reader agrees with
a plain per-VM list of what was written."""

from __future__ import annotations

from random import Random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from vmgrid.agents.cluster.state.history import NodeHistory, cpu_matrix

NAMES = [f"vm{i}" for i in range(12)]


@settings(max_examples=60)
@given(
    st.lists(st.sets(st.sampled_from(NAMES), max_size=12), min_size=1, max_size=30),
    st.integers(1, 8),
    st.integers(1, 5000),
    st.randoms(use_true_random=False),
)
def test_readers_match_what_each_vm_was_given(
    reports: list[set[str]], window: int, cap: int, rng: Random
) -> None:
    history = NodeHistory(window, slots=2)
    written: dict[str, list[int]] = {}
    full: dict[str, list[tuple[int, ...]]] = {}
    for t, present in enumerate(reports):
        order = sorted(present)
        if rng.random() < 0.3:
            rng.shuffle(order)  # a report may list its VMs in any order
        samples: list[int] = []
        for name in order:
            cpu = 100 * t + NAMES.index(name)
            samples += (t, cpu, cpu + 1, cpu + 2, cpu + 3)
            written.setdefault(name, []).append(cpu)
            full.setdefault(name, []).append((t, cpu, cpu + 1, cpu + 2, cpu + 3))
        path = rng.random()
        # the ingest paths (one row: a list, or a report's integer block) and per-VM writes agree
        if path < 0.35:
            history.write_row(tuple(order), samples)
        elif path < 0.7:
            block = np.array(samples, dtype=np.int64).reshape(-1, 5)[:, 1:].T.copy()
            history.write_row(tuple(order), block.reshape(4, len(order)), t)
        else:
            for k, name in enumerate(order):
                history.write(history.add(name), *samples[5 * k : 5 * k + 5])
        for name in set(written) - present:
            history.remove(name)
            del written[name], full[name]
        history.advance()
    names = sorted(written)
    # rows of other nodes' VMs between this node's, a VM it does not hold and one of no node
    other = NodeHistory(window, slots=2)
    other.write(other.add("elsewhere"), 0, 7, 0, 0, 0)
    other.advance()
    rows = [(history, n) for n in names] + [(history, "gone"), (other, "elsewhere"), (None, "x")]
    rng.shuffle(rows)
    matrix, lengths = cpu_matrix([h for h, _ in rows], [n for _, n in rows], cap)
    at = {n: i for i, (_, n) in enumerate(rows)}
    assert lengths[at["elsewhere"]] == 1 and matrix[at["elsewhere"], 0] == min(7, cap)
    for name in ("gone", "x"):
        assert lengths[at[name]] == 0 and not np.any(matrix[at[name]])
    for name in names:
        row = at[name]
        newest_first = list(reversed(written[name]))[:window]
        assert [s.cpu_used_millicores for s in history.samples(name)] == newest_first[::-1]
        assert [
            (s.sent_at_unix_ns, s.cpu_used_millicores, s.memory_used_bytes,
             s.net_rx_bytes_per_second, s.net_tx_bytes_per_second)
            for s in history.samples(name)
        ] == full[name][-window:]  # fmt: skip
        assert lengths[row] == len(newest_first)
        assert matrix[row, : len(newest_first)].tolist() == [min(c, cap) for c in newest_first]
        assert not matrix[row, len(newest_first) :].any()


def test_copy_is_independent() -> None:
    history = NodeHistory(3)
    history.write(history.add("a"), 1, 10, 0, 0, 0)
    history.advance()
    copy = history.copy()
    history.write(history.add("a"), 2, 20, 0, 0, 0)
    history.advance()
    assert [x.cpu_used_millicores for x in copy.samples("a")] == [10]
    assert [x.cpu_used_millicores for x in history.samples("a")] == [10, 20]


def test_a_row_of_unchanged_vms_is_written_where_each_vm_reads_it() -> None:
    history = NodeHistory(4, slots=2)
    for t in range(6):
        vms = ("a", "b", "c") if t < 3 else ("c", "a", "b")  # same VMs, listed in a new order
        history.write_row(vms, [x for k in range(3) for x in (t, 10 * t + k, 0, 0, 0)])
        history.advance()
    assert [s.cpu_used_millicores for s in history.samples("a")] == [20, 31, 41, 51]
    assert [s.cpu_used_millicores for s in history.samples("c")] == [22, 30, 40, 50]
