"""JSON decoding that parses a repeated node-group list once.

BtrPlace writes the full ``parts`` list (every node of every group) into each ``among``
constraint; in the TDSC workloads that is the same 5,000 node ids repeated in every one of up to
1,722 constraints, most of the file. `loads` finds the ``"parts": [[...], ...]`` literals of
integers, decodes each distinct one once, and hands the same list to every constraint that
repeats it; everything else goes through the standard decoder unchanged.
"""

from __future__ import annotations

import json
import re
from typing import Any

_PARTS = re.compile(rb'"parts"\s*:\s*(\[\s*(?:\[[\d\s,-]*\]\s*(?:,\s*)?)*\])')
_KEY = "$vmgrid.shared-parts"


def loads(raw: bytes) -> Any:
    """`json.loads(raw)`, with identical ``parts`` literals decoded once and shared."""
    if raw.count(b'"parts"') < 2 or _KEY.encode() in raw:
        return json.loads(raw)
    index: dict[bytes, int] = {}
    pieces: list[bytes] = []
    last = 0
    for match in _PARTS.finditer(raw):
        literal = match.group(1)
        number = index.setdefault(literal, len(index))
        pieces += [raw[last : match.start(1)], b'{"%s": %d}' % (_KEY.encode(), number)]
        last = match.end(1)
    if not index:
        return json.loads(raw)
    pieces.append(raw[last:])
    shared = [json.loads(literal) for literal in index]

    def restore(obj: dict[str, Any]) -> Any:
        if len(obj) == 1 and _KEY in obj:
            return shared[obj[_KEY]]
        return obj

    return json.loads(b"".join(pieces), object_hook=restore)
