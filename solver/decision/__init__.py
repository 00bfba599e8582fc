"""The cluster manager's decision policy: detect overload and underload, choose migrations.

Pure code on an immutable :class:`ClusterSnapshot`; the cluster manager's control loop and the
PlanetLab replay (``vmgrid.solver.replay``) call the same :class:`DecisionPolicy`.
"""

from vmgrid.solver.decision.errors import DecisionError
from vmgrid.solver.decision.policy import Decision, DecisionPolicy, Move, PolicyConfig
from vmgrid.solver.decision.snapshot import ClusterSnapshot

__all__ = ["ClusterSnapshot", "Decision", "DecisionError", "DecisionPolicy", "Move", "PolicyConfig"]
