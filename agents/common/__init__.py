"""Pieces shared by the cluster manager and the grid coordinator (and, for the node link's
codec ``node_codec``, by the node agent).

Both servers load config the same way, run the same in-process event fan-out and set up
their gRPC servers and link streams alike; the shared logic lives here once, below both
``vmgrid.agents.cluster`` and ``vmgrid.coordinator`` in the layering.
"""
