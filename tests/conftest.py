"""Suite-wide setup that must happen before any test module imports gRPC."""

import os

# The cluster manager forks its decision process; gRPC's fork handlers must be off for that
# (vmgrid.agents.cluster sets this too, but a test module may import grpc first).
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")

# Hypothesis fails an example that takes over 200 ms by default: a timing assertion, which
# on a shared 2-core machine under load fails tests whose behaviour is right. Speed is
# measured by the benchmarks, never asserted by tests.
from hypothesis import settings  # noqa: E402

settings.register_profile("vmgrid", deadline=None)
settings.load_profile("vmgrid")
