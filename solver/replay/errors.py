"""The replay's one root exception: every error a user can cause while replaying a trace."""

from __future__ import annotations


class ReplayError(ValueError):
    """Bad input to the trace replay (a missing day, an unknown policy, a bad host count)."""
