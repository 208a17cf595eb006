"""Tables of the topology (``events`` schema): its versions, and the current version's nodes and edges.

Every change is a new :class:`TopologyVersion` holding the whole map as the operator's JSON
document (like ``rules.response_template_versions``), with who made it, when and how. The current
version is also kept row by row in :class:`TopologyNode` and :class:`TopologyEdge`, so the map can
be queried in SQL (``SELECT * FROM events.topology_edges WHERE target = 'sw-1'``); a change rewrites
only the rows that differ. ``events.topology`` (:class:`app.models.events.TopologyLink`) is the
older one-upstream-per-host map: the release migrates it into a first version and leaves it as it was.
"""

from __future__ import annotations

import peewee

from ..db import BaseModel, JSONField, TimestampField
from ..timeutil import now


class TopologyVersion(BaseModel):
    """One version of the whole map: the document, who wrote it, when, and a summary of the change."""

    version = peewee.IntegerField(primary_key=True)
    #: ``{"nodes": [...], "edges": [...], "resolutions": {...}}`` as ``GET /api/v1/topology`` answers it.
    document = JSONField()
    created_at = TimestampField(default=now)
    created_by = peewee.CharField(max_length=200)
    #: How the version came: replaced | patched | imported | migrated.
    change = peewee.CharField(max_length=20)
    #: Counts of the version and of what changed (``added_nodes``, ``removed_edges``, ``format``...).
    summary = JSONField(null=True)

    class Meta:
        schema = "events"
        table_name = "topology_versions"


class TopologyNode(BaseModel):
    """A node of the current version."""

    name = peewee.CharField(max_length=255, unique=True)
    kind = peewee.CharField(max_length=20)
    criticality = peewee.CharField(max_length=20, null=True)

    class Meta:
        schema = "events"
        table_name = "topology_nodes"


class TopologyEdge(BaseModel):
    """An edge of the current version: ``source`` depends on ``target``."""

    id = peewee.AutoField()
    source = peewee.CharField(max_length=255)
    target = peewee.CharField(max_length=255, index=True)
    kind = peewee.CharField(max_length=20)

    class Meta:
        schema = "events"
        table_name = "topology_edges"
        indexes = ((("source", "target", "kind"), True),)
