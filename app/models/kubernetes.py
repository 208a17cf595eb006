"""The Kubernetes agent's history: a workload's size and usage by the hour, for its forecasts."""

from __future__ import annotations

import peewee

from ..db import BaseModel, JSONField, TimestampField


class WorkloadSample(BaseModel):
    """The most a workload had and used in an hour (one row per workload per hour, see
    :mod:`app.agents.kubernetes_history`).

    Usage comes from the metrics API (``metrics.k8s.io``), summed over the workload's pods; the
    forecast reads ``cpu_m`` by hour of week, right-sizing reads ``containers``.
    """

    id = peewee.BigAutoField()
    #: The integration's ``name``: the cluster it runs on.
    cluster = peewee.CharField(max_length=100)
    #: ``<namespace>/<kind>/<name>`` (kind lower case: ``deployment``, ``statefulset``).
    workload = peewee.CharField(max_length=400)
    #: The start of the hour.
    at = TimestampField()
    replicas = peewee.IntegerField()
    #: CPU used by all its pods together, in millicores (None: no metrics for it).
    cpu_m = peewee.FloatField(null=True)
    #: Memory used by all its pods together, in bytes.
    memory_bytes = peewee.FloatField(null=True)
    #: Per container: ``{"name": {"cpu_m": per pod, "memory_bytes": largest pod}}`` as used then.
    containers = JSONField(default=dict)

    class Meta:
        schema = "ops"
        table_name = "k8s_workload_samples"
        indexes = ((("cluster", "workload", "at"), True),)
