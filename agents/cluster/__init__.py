"""The cluster manager.

Two gRPC settings are made here, before this process initialises gRPC (gRPC reads them once,
when it is first imported), each unless the environment already says otherwise:

- Decisions run in a forked child process (forked.py). gRPC core's own fork handlers are meant
  for children that use gRPC; ours never do, and with those handlers active a child forked
  while gRPC threads are busy can crash: ``GRPC_ENABLE_FORK_SUPPORT=0``.
- The manager's server receives one message per agent per report period. gRPC's EventEngine
  listener (the default since gRPC 1.6x) reads each connection on its own threads and hands
  every message across to the completion queue; the older listener reads connections in the
  thread that polls that queue. Under 2,000 agents reporting each second the older one costs
  about 0.07 core less (docs/control.md, "gRPC's listener"): ``GRPC_EXPERIMENTS=
  -event_engine_listener``. An operator who sets ``GRPC_EXPERIMENTS`` keeps exactly that.
"""

import os as _os
import sys as _sys

GRPC_DEFAULTS = {"GRPC_ENABLE_FORK_SUPPORT": "0", "GRPC_EXPERIMENTS": "-event_engine_listener"}
"""The environment this package gives gRPC when it is the first to load it."""

if "grpc" not in _sys.modules:
    for _name, _value in GRPC_DEFAULTS.items():
        _os.environ.setdefault(_name, _value)
