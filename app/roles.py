"""Roles of API keys and what each may do (no imports: the CLI reads it before gevent patches)."""

from __future__ import annotations

#: Roles and their permissions. ``ingest`` is for senders; people get the others.
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "ingest": frozenset({"ingest"}),
    "viewer": frozenset({"read"}),
    "operator": frozenset({"read", "ingest", "operate"}),
    "admin": frozenset({"read", "ingest", "operate", "admin"}),
}
ROLES = tuple(ROLE_PERMISSIONS)
