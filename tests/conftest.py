"""Suite-wide setup that must happen before any test module imports gRPC."""

import os

# The cluster manager forks its decision process; gRPC's fork handlers must be off for that
# (vmgrid.agents.cluster sets this too, but a test module may import grpc first).
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")
