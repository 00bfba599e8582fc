"""Monitor, first half: the agents' streams. Node sessions and heartbeats, report ingestion into
the state, commands sent to nodes and their results awaited (``manager``) and ingest counters
(``stats``). The node link's codec, shared with the node agent, is
``vmgrid.agents.common.node_codec``."""
