"""The cluster manager.

Decisions run in a forked child process (forked.py). gRPC core's own fork handlers are meant
for children that use gRPC; ours never do, and with those handlers active a child forked while
gRPC threads are busy can crash. They are turned off here, before this process initialises
gRPC, unless the environment already says otherwise.
"""

import os as _os
import sys as _sys

if "grpc" not in _sys.modules:
    _os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")
