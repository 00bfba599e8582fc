"""Suite-wide setup that must happen before any test module imports gRPC."""

# The cluster manager's gRPC settings (fork handlers off, the listener it uses) are made by
# its package before gRPC loads; a test module may import grpc first, so load it here, first.
import vmgrid.agents.cluster  # noqa: F401

# Hypothesis fails an example that takes over 200 ms by default: a timing assertion, which
# on a shared 2-core machine under load fails tests whose behaviour is right. Speed is
# measured by the benchmarks, never asserted by tests.
from hypothesis import settings  # noqa: E402

settings.register_profile("vmgrid", deadline=None)
settings.load_profile("vmgrid")
