"""`vmgrid-bench agent --breakdown`: the agent's RSS split by mapping, from /proc/PID/smaps."""

from __future__ import annotations

from pathlib import Path

from vmgrid.bench.agent import rss_by_mapping_mb

SMAPS = """\
55710e192000-55710e761000 rw-p 00000000 00:00 0                          [heap]
Size:               5948 kB
Rss:                2048 kB
VmFlags: rd wr mr mw me ac sd
7f51ba49a000-7f51ba800000 rw-p 00000000 00:00 0
Rss:                3072 kB
7f51bb000000-7f51bb100000 r-xp 00000000 08:01 12 /venv/grpc/_cython/cygrpc.so
Rss:                4096 kB
7f51bb100000-7f51bb200000 r--p 00100000 08:01 12 /venv/grpc/_cython/cygrpc.so
Rss:                1024 kB
7f51bc000000-7f51bc001000 r--p 00000000 08:01 13 /usr/lib/libc.so.6
Rss:                 512 kB
7f51bc001000-7f51bc002000 r--p 00000000 08:01 14 /usr/lib/my lib.so
Rss:                 100 kB
"""


def test_mappings_are_summed_by_file_name_and_ranked() -> None:
    shown = rss_by_mapping_mb(SMAPS)
    assert list(shown) == ["cygrpc.so", "[anon]", "[heap]", "libc.so.6", "my lib.so"]
    assert shown["cygrpc.so"] == 5.0  # both segments of the library
    assert shown["[anon]"] == 3.0


def test_mappings_beyond_the_top_are_summed_as_other() -> None:
    shown = rss_by_mapping_mb(SMAPS, top=2)
    assert shown == {"cygrpc.so": 5.0, "[anon]": 3.0, "other": round((2048 + 512 + 100) / 1024, 1)}


def _rollup_rss_mib() -> float:
    rollup = Path("/proc/self/smaps_rollup").read_text()
    return int(next(ln for ln in rollup.splitlines() if ln.startswith("Rss:")).split()[1]) / 1024


def test_this_process_breakdown_adds_up_to_its_rss() -> None:
    # reading smaps allocates (megabytes of text in a big process): bracket it with two reads
    # of the rollup's total (VmRSS in /proc/PID/status is a cached counter, off by up to 64
    # pages per thread, so the rollup's exact walk is the reference)
    before = _rollup_rss_mib()
    smaps = Path("/proc/self/smaps").read_text()
    after = _rollup_rss_mib()
    # few named mappings: each figure is rounded to 0.1 MiB, the "other" sum only once
    rss_mib = sum(rss_by_mapping_mb(smaps, top=3).values())
    assert before - 0.5 <= rss_mib <= after + 0.5
