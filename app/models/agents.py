"""The agents' tables: their configuration (the design's AgentConfig), their processes' heartbeats,
and the resource leases that keep two executions from acting on one resource at once."""

from __future__ import annotations

import peewee

from ..db import BaseModel, JSONField, TimestampField
from ..timeutil import now


class AgentConfig(BaseModel):
    """One agent: the design's ``AgentConfig``, plus its schedule and whether an operator stopped it."""

    id = peewee.BigAutoField()
    name = peewee.CharField(max_length=63, unique=True)
    #: orchestrator | terraform | kubernetes | cost (the design's ``type``).
    kind = peewee.CharField(max_length=20)
    enabled = peewee.BooleanField(default=False)
    #: manual | semi-auto | full-auto: caps what the decider runs alone for this agent's actions.
    automation_level = peewee.CharField(max_length=20, default="manual")
    #: ``{name: number}``, read by the agent's own logic (e.g. ``cpu_target``).
    thresholds = JSONField(default=dict)
    #: Every proposal of this agent waits for a human, whatever the automation level.
    approval_required = peewee.BooleanField(default=True)
    #: ``[{"type": ..., "name": ..., ...}]``: secrets only by reference (env, file, ``{{ secret.NAME }}``).
    integrations = JSONField(default=list)
    #: Seconds between two scheduled runs (the clock sends ``run`` messages).
    interval_s = peewee.IntegerField(default=300)
    #: When an operator stopped it (None: started): its schedule and its queue's work pause.
    stopped_at = TimestampField(null=True)
    stopped_by = peewee.CharField(max_length=200, null=True)
    #: Since when it counts as expected to heartbeat (enabled or started), for the first down check.
    expected_since = TimestampField(default=now)
    #: When the clock last sent its scheduled run.
    last_scheduled_at = TimestampField(null=True)
    #: When its down state was paged (None: up, or not yet found down).
    down_since = TimestampField(null=True)
    #: Its last run: when it ended, what it produced (``{"proposed": n, "events": n}``), its error if it failed.
    last_run_at = TimestampField(null=True)
    last_result = JSONField(null=True)
    last_error = peewee.TextField(null=True)
    #: ``[{"matchers": [...]}]``: events any route takes in (silences' matchers) send it a run (:mod:`app.agents.routing`).
    routes = JSONField(default=list)
    #: When a routed run was sent that has not started yet (a storm of matching events sends one).
    route_pending_at = TimestampField(null=True)
    created_at = TimestampField(default=now)
    updated_at = TimestampField(default=now)
    updated_by = peewee.CharField(max_length=200, null=True)

    class Meta:
        schema = "ops"
        table_name = "agents"


class AgentHeartbeat(BaseModel):
    """One process serving an agent kind, upserted every ``AGENT_HEARTBEAT_SECONDS`` by that process."""

    id = peewee.BigAutoField()
    #: ``<hostname>:<pid>:<start in ms>:<kind>``: a process is one row per kind it serves, for its life.
    process = peewee.CharField(max_length=300, unique=True)
    kind = peewee.CharField(max_length=20, index=True)
    hostname = peewee.CharField(max_length=255)
    pid = peewee.IntegerField()
    started_at = TimestampField()
    beat_at = TimestampField(index=True)
    #: Seconds between beats: three missed ones make the process count as gone.
    interval_s = peewee.FloatField()

    class Meta:
        schema = "ops"
        table_name = "agent_heartbeats"


class ResourceLease(BaseModel):
    """Who may act on a resource now: one row per resource, the unique key settles races.

    A lease is held while its execution runs (status ``running`` or ``rolling_back``) and the
    execution's own lease (``heartbeat_at``, renewed by the worker running it) is current: it ends
    with the execution, when it waits for an approval, and when its worker dies.
    """

    #: ``host:<name>``, ``k8s:<namespace>/<kind>/<name>``, ``tf:<workspace>:<address>``.
    resource = peewee.CharField(max_length=500, primary_key=True)
    execution_id = peewee.UUIDField(index=True)
    #: Higher wins: 4 incident response, 3 scaling, 2 cost, 1 drift.
    priority = peewee.IntegerField()
    purpose = peewee.CharField(max_length=20)
    acquired_at = TimestampField(default=now)

    class Meta:
        schema = "autonomous"
        table_name = "resource_leases"


class ResourceLeaseWait(BaseModel):
    """An execution waiting for a resource; the highest priority waiting (then the oldest) goes next."""

    id = peewee.BigAutoField()
    resource = peewee.CharField(max_length=500)
    execution_id = peewee.UUIDField()
    priority = peewee.IntegerField()
    purpose = peewee.CharField(max_length=20)
    since = TimestampField(default=now)
    #: Last time the waiter asked again: a waiter that stopped asking is passed over.
    seen_at = TimestampField(default=now)
    #: Last time the wait was written to the execution's log, and what it said (a new reason is logged at once).
    logged_at = TimestampField(default=now)
    reason = peewee.TextField(null=True)

    class Meta:
        schema = "autonomous"
        table_name = "resource_lease_waits"
        indexes = ((("resource", "execution_id"), True),)
