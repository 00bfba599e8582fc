"""vmgridctl, the operator command line."""
