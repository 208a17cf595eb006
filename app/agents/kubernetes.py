"""The Kubernetes agent: sizes workloads for the demand it forecasts, through the executor.

Each run, for each integration of type ``kubernetes`` (see :mod:`.kubernetes_client`): read the
Deployments and StatefulSets, their HPAs and requests, and their pods' usage; keep each workload's
usage by the hour (:mod:`.kubernetes_history`); forecast its CPU demand over the next hours from
that history by hour of week (:mod:`.kubernetes_forecast`); and propose scale changes and right-sized requests
(:mod:`.kubernetes_proposals`). It never changes the cluster itself: its proposals are ``http``
steps that the decider, the approvals and the executor handle like any playbook's, with rollback
steps that restore the previous values.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from importlib.util import find_spec
from typing import Any

from ..db import in_transaction
from ..errors import InvalidInput
from . import kubernetes_history as history
from .base import AgentAction, AgentEvent, AgentSettings
from .kubernetes_client import Cluster, ClusterUnavailable, usage_of
from .kubernetes_forecast import peak
from .kubernetes_proposals import Target, proposals, threshold

logger = logging.getLogger(__name__)

#: A token the executor can send: a secret reference, resolved only when the step runs.
_SECRET_TOKEN = re.compile(r"\s*{{\s*secret\.\w+\s*}}\s*")
#: Keys of a ``kubernetes`` integration.
KEYS = frozenset({"type", "name", "kubeconfig", "in_cluster", "context", "namespaces", "token", "verify_tls",
                  "api_server"})  # fmt: skip
#: A namespace, an integration's name: a DNS label.
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def check(integration: Mapping[str, Any], where: str) -> None:
    """Raise :class:`InvalidInput` naming the field when a ``kubernetes`` integration is not valid.

    Only its shape: the kubeconfig is read where the agent runs, which need not be where it is configured.
    """
    extra = sorted(set(integration) - KEYS)
    if extra:
        raise InvalidInput(f"unknown key {extra[0]!r} (known: {', '.join(sorted(KEYS))})", field=f"{where}.{extra[0]}")
    if "name" in integration and not (isinstance(integration["name"], str) and _LABEL.fullmatch(integration["name"])):
        raise InvalidInput("name is a DNS label (lower-case letters, digits and -)", field=f"{where}.name")
    reference, in_cluster = integration.get("kubeconfig"), integration.get("in_cluster", False)
    if not isinstance(in_cluster, bool):
        raise InvalidInput("in_cluster is true or false", field=f"{where}.in_cluster")
    if in_cluster == (reference is not None):
        raise InvalidInput('give either kubeconfig {"file": "/path"} or in_cluster: true', field=f"{where}.kubeconfig")
    if reference is not None and not (isinstance(reference, dict) and set(reference) == {"file"}
                                      and isinstance(reference["file"], str) and os.path.isabs(reference["file"])):  # fmt: skip
        raise InvalidInput('kubeconfig is {"file": "/absolute/path"}', field=f"{where}.kubeconfig")
    if not isinstance(integration.get("context", ""), str):
        raise InvalidInput("context is the kubeconfig context's name", field=f"{where}.context")
    namespaces = integration.get("namespaces", [])
    if not isinstance(namespaces, list) or not all(isinstance(n, str) and _LABEL.fullmatch(n) for n in namespaces):
        raise InvalidInput("namespaces is a list of namespace names", field=f"{where}.namespaces")
    token = integration.get("token")
    if token is not None and not (isinstance(token, str) and _SECRET_TOKEN.fullmatch(token)):
        raise InvalidInput('token is a "{{ secret.NAME }}" reference: the executor sends it to the API server',
                           field=f"{where}.token")  # fmt: skip
    if not isinstance(integration.get("verify_tls", True), bool):
        raise InvalidInput("verify_tls is true or false", field=f"{where}.verify_tls")
    server = integration.get("api_server")
    if server is not None and not (isinstance(server, str) and re.fullmatch(r"https?://[^\s/?#]+/?", server)):
        raise InvalidInput("api_server is the API server's http(s)://host:port", field=f"{where}.api_server")


def integrations_of(config: AgentSettings) -> list[Mapping[str, Any]]:
    return [i for i in config.integrations if i.get("type") == "kubernetes"]


def target_of(integration: Mapping[str, Any], host: str) -> Target:
    """Where the proposed steps send their PATCHes: the API server, with the integration's token secret."""
    token = integration.get("token")
    return Target(host=str(integration.get("api_server") or host).rstrip("/"),
                  token=token.strip() if isinstance(token, str) and _SECRET_TOKEN.fullmatch(token) else None,
                  verify_tls=integration.get("verify_tls", True) is not False)  # fmt: skip


def _problem(integration: Mapping[str, Any]) -> str | None:
    """Why a (valid, see :func:`check`) integration cannot work here, found without calling the cluster."""
    name = integration.get("name") or "kubernetes"
    if integration.get("in_cluster") is True:
        if not os.environ.get("KUBERNETES_SERVICE_HOST"):
            return f"{name}: in_cluster is set but this process runs outside a cluster"
        return None
    reference = integration.get("kubeconfig")
    path = reference.get("file") if isinstance(reference, dict) else None
    if not isinstance(path, str) or not os.access(path, os.R_OK):
        return f"{name}: the kubeconfig {path} cannot be read here"
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
        horizon = int(threshold(config.thresholds, "horizon_hours"))

        def remember() -> tuple[dict[str, list[tuple[datetime, float]]], dict[str, list[dict[str, Any]]]]:
            opened = history.record(cluster.name, workloads, usage, now)
            cpu = history.demand(cluster.name, [w.key for w in workloads], now, horizon_hours=horizon)
            # requests are judged on the first run of each hour: a week of use changes little in minutes
            return cpu, history.containers(cluster.name, sorted(opened), now)

        cpu, used = in_transaction(remember)
        target = target_of(integration, cluster.host)
        found: list[AgentAction | AgentEvent] = []
        for workload in workloads:
            forecast = peak(cpu.get(workload.key, []), now, horizon_hours=horizon)
            found += proposals(workload, forecast, used.get(workload.key, []), config.thresholds, target)
        logger.info("Kubernetes agent %r read %d workloads of %r (%s): %d proposals.", config.name, len(workloads),
                    cluster.name, "with usage" if metrics is not None else "no metrics API", len(found))  # fmt: skip
        if metrics is None:
            found.append(AgentEvent(
                event_type="k8s_metrics_unavailable", severity="low", resource=f"k8s:{cluster.name}",
                title=f"Cluster {cluster.name} serves no metrics API: the Kubernetes agent cannot forecast its load",
            ))  # fmt: skip
        return found
