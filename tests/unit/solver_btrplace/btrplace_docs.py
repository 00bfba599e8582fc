"""Small fluent builder of BtrPlace instance documents for the tests of this folder."""

from __future__ import annotations

from typing import Any


class Doc:
    """`Doc().node(1, cpu=8).vm(10, host=1, cpu=2).constraint("spread", vms=[10, 11]).build()`."""

    def __init__(self) -> None:
        self.online: dict[int, dict[str, list[int]]] = {}
        self.offline: list[int] = []
        self.ready: list[int] = []
        self.caps: dict[str, dict[str, int]] = {"cpu": {}, "mem": {}}
        self.uses: dict[str, dict[str, int]] = {"cpu": {}, "mem": {}}
        self.node_attrs: dict[str, dict[str, Any]] = {}
        self.vm_attrs: dict[str, dict[str, Any]] = {}
        self.constraints: list[dict[str, Any]] = []

    def node(
        self, nid: int, cpu: int = 10, mem: int = 10, online: bool = True, **attrs: Any
    ) -> Doc:
        if online:
            self.online[nid] = {"runningVMs": [], "sleepingVMs": []}
        else:
            self.offline.append(nid)
        self.caps["cpu"][str(nid)] = cpu
        self.caps["mem"][str(nid)] = mem
        if attrs:
            self.node_attrs[str(nid)] = attrs
        return self

    def vm(self, vid: int, host: int | None, cpu: int = 1, mem: int = 1, **attrs: Any) -> Doc:
        if host is None:
            self.ready.append(vid)
        else:
            self.online[host]["runningVMs"].append(vid)
        self.uses["cpu"][str(vid)] = cpu
        self.uses["mem"][str(vid)] = mem
        if attrs:
            self.vm_attrs[str(vid)] = attrs
        return self

    def constraint(self, kind: str, **fields: Any) -> Doc:
        self.constraints.append({"id": kind, **fields})
        return self

    def build(self) -> dict[str, Any]:
        views = [
            {
                "id": "shareableResource",
                "rcId": rc,
                "defCapacity": 0,
                "defConsumption": 0,
                "nodes": self.caps[rc],
                "vms": self.uses[rc],
            }
            for rc in ("cpu", "mem")
        ]
        return {
            "model": {
                "mapping": {
                    "onlineNodes": {str(n): v for n, v in self.online.items()},
                    "offlineNodes": self.offline,
                    "readyVMs": self.ready,
                },
                "views": views,
                "attributes": {"nodes": self.node_attrs, "vms": self.vm_attrs},
            },
            "constraints": self.constraints,
            "objective": {"id": "minimizeMTTR"},
        }
