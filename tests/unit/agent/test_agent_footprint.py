"""The agent's memory settling (agents/node/footprint.py): which mappings it may release, and
that a process keeps working, with fewer resident pages, after it released them."""

from __future__ import annotations

import json
import subprocess
import sys

from vmgrid.agents.node import footprint
from vmgrid.agents.node.footprint import parse_smaps

SMAPS = """\
55d0c0000000-55d0c0100000 rw-p 00000000 00:00 0                          [heap]
Size:               1024 kB
Rss:                 800 kB
Private_Dirty:       800 kB
Anonymous:           800 kB
7f0000000000-7f0000200000 r-xp 00010000 08:01 42                         /usr/lib/libfoo.so.1
Size:               2048 kB
Rss:                1500 kB
Shared_Clean:       1500 kB
Private_Dirty:         0 kB
Anonymous:             0 kB
7f0000200000-7f0000210000 r--p 00210000 08:01 42                         /usr/lib/libfoo.so.1
Size:                 64 kB
Rss:                  64 kB
Private_Dirty:        60 kB
Anonymous:            60 kB
7f0000210000-7f0000220000 rw-p 00220000 08:01 42                         /usr/lib/libfoo.so.1
Size:                 64 kB
Rss:                   8 kB
Private_Dirty:         0 kB
Anonymous:             0 kB
7f0000300000-7f0000310000 r--p 00000000 08:01 43                         /usr/lib/libbar.so
Size:                 64 kB
Rss:                   0 kB
Private_Dirty:         0 kB
Anonymous:             0 kB
7f0000310000-7f0000320000 r--p 00010000 08:01 43                         /usr/lib/libbar.so
Size:                 64 kB
Rss:                  32 kB
Private_Dirty:         0 kB
Anonymous:             0 kB
Swap:                  8 kB
7f0000400000-7f0000500000 rw-p 00000000 00:00 0
Size:               1024 kB
Rss:                 512 kB
Anonymous:           512 kB
"""


def test_smaps_is_read_into_mappings_with_their_private_pages() -> None:
    heap, text, relro, data, untouched, swapped, anon = parse_smaps(SMAPS.splitlines(keepends=True))

    assert (heap.path, heap.perms, heap.rss_kib, heap.private_kib) == ("[heap]", "rw-p", 800, 1600)
    assert (text.start, text.end) == (0x7F0000000000, 0x7F0000200000)
    assert (text.path, text.rss_kib, text.private_kib) == ("/usr/lib/libfoo.so.1", 1500, 0)
    assert (untouched.rss_kib, anon.path) == (0, "")


def test_only_untouched_read_only_file_pages_are_releasable() -> None:
    heap, text, relro, data, untouched, swapped, anon = parse_smaps(SMAPS.splitlines(keepends=True))

    assert text.releasable  # library code: the file holds every page
    assert not relro.releasable  # relocated read-only data: its copied pages are the process's
    assert not data.releasable  # writable: the process may write it at any time
    assert not untouched.releasable  # nothing resident
    assert not swapped.releasable  # a copied page of it is in swap, not in the file
    assert not heap.releasable and not anon.releasable  # anonymous memory


SETTLED_PROGRAM = """
import asyncio, json, sys
import grpc, grpc.aio, libvirt
from vmgrid.agents.node import footprint
from vmgrid.v1 import node_pb2

def rss_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

def work(conn):
    names = sorted(dom.name() for dom in conn.listAllDomains())
    stats = len(conn.getAllDomainStats())
    hello = node_pb2.NodeHello(node_id="n1").SerializeToString()
    return names, stats, node_pb2.NodeHello.FromString(hello).node_id

async def main():
    arenas = footprint.limit_arenas()
    conn = libvirt.open("test:///default")
    channel = grpc.aio.insecure_channel("127.0.0.1:9")
    before = work(conn)
    rss_before = rss_kib()
    released = footprint.settle()
    rss_after = rss_kib()
    after = work(conn)
    await channel.close()
    print(json.dumps({"arenas": arenas, "released": released, "rss_before": rss_before,
                      "rss_after": rss_after, "before": before, "after": after}))

asyncio.run(main())
"""


def test_a_settled_process_keeps_working_with_fewer_resident_pages() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SETTLED_PROGRAM],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])

    assert result["arenas"] is True  # glibc took the cap
    assert result["after"] == result["before"]  # libvirt, protobuf and gRPC work as before
    assert result["after"][0] == ["test"]
    # gRPC's and libvirt's code pages touched by start-up alone are several MB
    assert result["released"] > 5 * 1024
    assert result["rss_after"] < result["rss_before"] - 5 * 1024


def test_without_proc_nothing_is_released() -> None:
    assert footprint.release_file_pages(footprint.Path("/nonexistent/smaps")) == 0
