"""Monitor, first half: the agents' streams. Node sessions and heartbeats, report ingestion into
the state, commands sent to nodes and their results awaited (``manager``), the node link's codec
(``codec``) and ingest counters (``stats``)."""
