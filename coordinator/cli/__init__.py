"""vmgridctl, the operator command line.

gRPC's core logs to stderr on its own (a bad certificate gives seven lines); vmgridctl reports
every failure in one line of its own, so that logging is off unless GRPC_VERBOSITY is set. It
is set here, before any sub-command imports grpc.
"""

import os

os.environ.setdefault("GRPC_VERBOSITY", "NONE")
