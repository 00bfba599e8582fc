"""Monitor, second half: what the manager knows. The mutable cache of nodes and VMs with its
immutable snapshots (``state``), compact usage history (``history``), the event bus (``events``),
and the two views deciders take of a snapshot: the solver's model (``solver_view``) and the
consolidation policy's (``policy_view``)."""
