"""The Kubernetes agent: sizes workloads for the demand it forecasts, through the executor.

Each run, for each integration of type ``kubernetes`` (see :mod:`.kubernetes_client`): read the
Deployments and StatefulSets, their HPAs and requests, and their pods' usage; store one sample per
workload (:class:`~app.models.kubernetes.WorkloadSample`, kept :data:`KEEP_DAYS`); forecast each
workload's CPU demand over the next hours from its history by hour of week
(:mod:`.kubernetes_forecast`); and propose scale changes and right-sized requests
(:mod:`.kubernetes_proposals`). It never changes the cluster itself: its proposals are ``http``
steps that the decider, the approvals and the executor handle like any playbook's, with rollback
steps that restore the previous values.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from importlib.util import find_spec
from typing import Any

from ..db import in_transaction
from ..models import WorkloadSample
from .base import AgentAction, AgentEvent, AgentSettings
from .kubernetes_client import Cluster, ClusterUnavailable, Usage, Workload, usage_of
from .kubernetes_forecast import peak
from .kubernetes_proposals import Target, proposals, threshold

logger = logging.getLogger(__name__)

#: History read for a forecast: four weeks of the same hour, and a day more.
HISTORY_DAYS = 29
#: Samples older than this are deleted by the run that finds them.
KEEP_DAYS = 35
#: A token the executor can send: a secret reference, resolved only when the step runs.
_SECRET_TOKEN = re.compile(r"\s*{{\s*secret\.\w+\s*}}\s*")


def integrations_of(config: AgentSettings) -> list[Mapping[str, Any]]:
    return [i for i in config.integrations if i.get("type") == "kubernetes"]


def target_of(integration: Mapping[str, Any], host: str) -> Target:
    """Where the proposed steps send their PATCHes: the API server, with the integration's token secret."""
    token = integration.get("token")
    return Target(host=str(integration.get("api_server") or host).rstrip("/"),
                  token=token.strip() if isinstance(token, str) and _SECRET_TOKEN.fullmatch(token) else None,
                  verify_tls=integration.get("verify_tls", True) is not False)  # fmt: skip


def _problem(integration: Mapping[str, Any]) -> str | None:
    """Why an integration cannot work here, found without calling the cluster (None: it looks usable)."""
    name = integration.get("name") or "kubernetes"
    if integration.get("in_cluster") is True:
        if not os.environ.get("KUBERNETES_SERVICE_HOST"):
            return f"{name}: in_cluster is set but this process runs outside a cluster"
    else:
        reference = integration.get("kubeconfig")
        if not (isinstance(reference, dict) and set(reference) == {"file"}):
            return f'{name}: give kubeconfig as {{"file": "/path"}} or in_cluster: true'
        if not os.access(str(reference["file"]), os.R_OK):
            return f"{name}: the kubeconfig {reference['file']} cannot be read here"
    token = integration.get("token")
    if token is not None and not (isinstance(token, str) and _SECRET_TOKEN.fullmatch(token)):
        return f'{name}: token is a "{{{{ secret.NAME }}}}" reference, which the executor sends to the API server'
    return None


class KubernetesAgent:
    """The ``kubernetes`` kind (:data:`app.agents.base.IMPLEMENTATIONS`)."""

    def __init__(self, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.now = now

    def status(self, config: AgentSettings) -> Mapping[str, Any]:
        """Ready when the client is installed and every kubernetes integration looks usable (no cluster call)."""
        if find_spec("kubernetes") is None:
            return {"ready": False, "reason": "the kubernetes Python client is not installed"}
        integrations = integrations_of(config)
        if not integrations:
            return {"ready": False, "reason": "no integration of type kubernetes is configured"}
        problems = [p for p in map(_problem, integrations) if p]
        clusters = [str(i.get("name") or "kubernetes") for i in integrations]
        if problems:
            return {"ready": False, "reason": "; ".join(problems), "clusters": clusters}
        return {"ready": True, "clusters": clusters}

    def run(self, config: AgentSettings) -> Sequence[AgentAction | AgentEvent]:
        integrations = integrations_of(config)
        if not integrations:
            raise ClusterUnavailable("no integration of type kubernetes is configured")
        found: list[AgentAction | AgentEvent] = []
        for integration in integrations:
            found += self._run_cluster(config, integration)
        return found

    def _run_cluster(self, config: AgentSettings, integration: Mapping[str, Any]) -> list[AgentAction | AgentEvent]:
        cluster = Cluster(integration)
        try:
            workloads = cluster.workloads()
            metrics = cluster.pod_metrics()
        finally:
            cluster.close()
        usage = usage_of(workloads, metrics) if metrics is not None else {}
        now = self.now()
        histories = in_transaction(lambda: _record(cluster.name, workloads, usage, now))
        target = target_of(integration, cluster.host)
        horizon = int(threshold(config.thresholds, "horizon_hours"))
        found: list[AgentAction | AgentEvent] = []
        for workload in workloads:
            samples = histories.get(workload.key, [])
            cpu = [(s.at, s.cpu_m) for s in samples if s.cpu_m is not None]
            demand = peak(cpu, now, horizon_hours=horizon)
            found += proposals(workload, demand, [s.containers for s in samples if s.containers], config.thresholds,
                               target)  # fmt: skip
        logger.info("Kubernetes agent %r read %d workloads of %r (%s): %d proposals.", config.name, len(workloads),
                    cluster.name, "with usage" if metrics is not None else "no metrics API", len(found))  # fmt: skip
        if metrics is None:
            found.append(AgentEvent(
                event_type="k8s_metrics_unavailable", severity="low", resource=f"k8s:{cluster.name}",
                title=f"Cluster {cluster.name} serves no metrics API: the Kubernetes agent cannot forecast its load",
            ))  # fmt: skip
        return found


def _record(cluster: str, workloads: list[Workload], usage: Mapping[str, Usage],
            now: datetime) -> dict[str, list[WorkloadSample]]:  # fmt: skip
    """Store this run's sample of each workload, drop expired ones, and read each workload's history (oldest first)."""
    rows = []
    for w in workloads:
        seen = usage.get(w.key)
        rows.append({"cluster": cluster, "workload": w.key, "at": now, "replicas": w.replicas,
                     "cpu_m": seen.cpu_m if seen else None, "memory_bytes": seen.memory_bytes if seen else None,
                     "containers": seen.containers if seen else {}})  # fmt: skip
    if rows:
        WorkloadSample.insert_many(rows).execute()
    WorkloadSample.delete().where(WorkloadSample.cluster == cluster,
                                  WorkloadSample.at < now - timedelta(days=KEEP_DAYS)).execute()  # fmt: skip
    histories: dict[str, list[WorkloadSample]] = {}
    query = (WorkloadSample.select()
             .where(WorkloadSample.cluster == cluster, WorkloadSample.workload.in_([w.key for w in workloads]),
                    WorkloadSample.at >= now - timedelta(days=HISTORY_DAYS))
             .order_by(WorkloadSample.at))  # fmt: skip
    for sample in query:
        histories.setdefault(sample.workload, []).append(sample)
    return histories
