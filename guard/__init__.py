"""Teller Guard core: detection, policy, events and the reference collector (no Qt here)."""

__version__ = "0.1.0"
