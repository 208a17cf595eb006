"""Dramatiq middleware of OpsConductor (variants of Dramatiq's own, as ``dramatiq.middleware`` keeps them)."""

from __future__ import annotations

from .outage import Outage, OutageRetries

__all__ = ["Outage", "OutageRetries"]
