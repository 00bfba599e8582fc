"""The operator's way in: plans proposed, applied, approved, rejected and cancelled, one-VM
migrations and direct VM and node actions (``operations``, ``vm_commands``), dry runs
(``dry_run``), plan views (``plan_views``), ClusterService's operator RPCs (``rpc``) and their
wire views (``codec``). The CLI, the HTTP API and the dashboard all come through here."""
