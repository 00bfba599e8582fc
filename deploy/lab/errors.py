"""The one exception type of the lab, so callers catch lab failures without catching bugs."""

from __future__ import annotations


class LabError(Exception):
    """A lab operation failed for a reason the operator can act on; the message says which."""
