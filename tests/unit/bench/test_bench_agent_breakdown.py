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


def test_this_process_breakdown_adds_up_to_its_rss() -> None:
    smaps = Path("/proc/self/smaps").read_text()
    rss_mib = sum(rss_by_mapping_mb(smaps, top=1000).values())
    status = Path("/proc/self/status").read_text()
    vm_rss_kib = int(next(ln for ln in status.splitlines() if ln.startswith("VmRSS:")).split()[1])
    # the two reads are a moment apart and the figures are rounded to 0.1 MiB per mapping
    assert abs(rss_mib - vm_rss_kib / 1024) < 5
