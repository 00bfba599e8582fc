"""The decision policy's one root exception."""

from __future__ import annotations


class DecisionError(ValueError):
    """A snapshot or configuration the policy cannot decide on (bad shapes, bad parameters)."""
