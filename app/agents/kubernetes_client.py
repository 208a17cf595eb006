"""What the Kubernetes agent reads from a cluster: workloads, their HPAs and requests, and their usage.

Through the official ``kubernetes`` client, imported here only (and only when an agent runs), so no
other process pays for it. An integration of type ``kubernetes`` says how to reach the cluster::

    {"type": "kubernetes", "name": "prod", "kubeconfig": {"file": "/etc/oc/kubeconfig"}, "context": "prod",
     "namespaces": ["shop"], "token": "{{ secret.K8S_PROD_TOKEN }}", "verify_tls": true}
    {"type": "kubernetes", "name": "here", "in_cluster": true, "token": "{{ secret.K8S_TOKEN }}"}

The kubeconfig (or the pod's service account) is what the agent reads with. Changes are not made
here: they are ``http`` steps the executor sends to the same API server, authenticated by the
``token`` secret reference (see :mod:`app.agents.kubernetes_proposals`).

Read: ``apps/v1`` Deployments and StatefulSets, ``autoscaling/v2`` HorizontalPodAutoscalers, and pod
usage from the metrics API (``metrics.k8s.io/v1beta1``, through the custom objects API). A cluster
without the metrics API still has its workloads read; their usage is then unknown.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

#: Seconds one API call may take (connect and read).
REQUEST_TIMEOUT_S = 15
#: Workload kinds read, as ``(kind, URL plural)``.
KINDS = (("deployment", "deployments"), ("statefulset", "statefulsets"))
#: The client's name of each kind in its methods (``list_stateful_set_for_all_namespaces``).
_METHOD_NAMES = {"deployment": "deployment", "statefulset": "stateful_set"}


class ClusterUnavailable(Exception):
    """The cluster cannot be reached or read (configuration, network, authorization): the run fails with it."""


class _NotServed(ClusterUnavailable):
    """The API server answered 404: it serves no such API (a cluster without metrics-server)."""


@dataclass(frozen=True)
class Container:
    """A container of a workload's pod template, with its requests as written and in numbers."""

    name: str
    cpu_request: str | None = None
    memory_request: str | None = None

    @property
    def cpu_request_m(self) -> float | None:
        return None if self.cpu_request is None else cpu_millicores(self.cpu_request)

    @property
    def memory_request_bytes(self) -> float | None:
        return None if self.memory_request is None else memory_bytes(self.memory_request)


@dataclass(frozen=True)
class Autoscaler:
    """The HorizontalPodAutoscaler that scales a workload."""

    name: str
    min_replicas: int
    max_replicas: int
    #: Its CPU target, as a fraction of requests (None: it scales on something else).
    cpu_utilization: float | None = None


@dataclass(frozen=True)
class Workload:
    """A Deployment or a StatefulSet as the agent sizes it."""

    namespace: str
    kind: str
    name: str
    replicas: int
    selector: Mapping[str, str]
    containers: tuple[Container, ...]
    autoscaler: Autoscaler | None = None

    @property
    def key(self) -> str:
        """``<namespace>/<kind>/<name>``: its history's key."""
        return f"{self.namespace}/{self.kind}/{self.name}"

    @property
    def resource(self) -> str:
        """The resource its actions target (and lease): ``k8s:<namespace>/<kind>/<name>``."""
        return f"k8s:{self.key}"

    @property
    def path(self) -> str:
        """Its path on the API server."""
        return f"/apis/apps/v1/namespaces/{self.namespace}/{dict(KINDS)[self.kind]}/{self.name}"

    @property
    def cpu_request_m(self) -> float | None:
        """CPU one pod requests (all its containers), in millicores; None when a container requests none."""
        requests = [c.cpu_request_m for c in self.containers]
        return None if not requests or None in requests else sum(r for r in requests if r is not None)


@dataclass
class Usage:
    """What a workload's pods use now (metrics API), summed and per container."""

    pods: int = 0
    cpu_m: float = 0.0
    memory_bytes: float = 0.0
    #: ``{"name": {"cpu_m": mean per pod, "memory_bytes": largest pod}}``.
    containers: dict[str, dict[str, float]] = field(default_factory=dict)


def cpu_millicores(quantity: str) -> float:
    """A CPU quantity (``500m``, ``2``, ``250000000n``) in millicores."""
    from kubernetes.utils import parse_quantity

    return float(parse_quantity(quantity) * 1000)


def memory_bytes(quantity: str) -> float:
    """A memory quantity (``256Mi``, ``1G``, ``134217728``) in bytes."""
    from kubernetes.utils import parse_quantity

    return float(parse_quantity(quantity))


def format_cpu(millicores: float) -> str:
    return f"{math.ceil(millicores)}m"


def format_memory(size: float) -> str:
    return f"{math.ceil(size / 2**20)}Mi"


class Cluster:
    """One cluster reached through an integration: reads only."""

    def __init__(self, integration: Mapping[str, Any]) -> None:
        from kubernetes import client, config

        self.name = str(integration.get("name") or "kubernetes")
        configuration = client.Configuration()
        try:
            if integration.get("in_cluster") is True:
                config.load_incluster_config(client_configuration=configuration)
            else:
                reference = integration.get("kubeconfig")
                if not (isinstance(reference, dict) and set(reference) == {"file"}):
                    raise ClusterUnavailable(f'integration {self.name!r}: give kubeconfig as {{"file": "/path"}} '
                                             "or in_cluster: true")  # fmt: skip
                if not os.access(str(reference["file"]), os.R_OK):
                    raise ClusterUnavailable(
                        f"integration {self.name!r}: the kubeconfig {reference['file']} cannot be read"
                    )
                config.load_kube_config(config_file=str(reference["file"]), context=integration.get("context"),
                                        client_configuration=configuration, persist_config=False)  # fmt: skip
        except (config.ConfigException, OSError, TypeError, ValueError) as e:
            raise ClusterUnavailable(f"integration {self.name!r}: {e}") from None
        #: The API server's URL (``https://host:6443``), which the proposed steps call.
        self.host: str = configuration.host.rstrip("/")
        self.namespaces: tuple[str, ...] = tuple(integration.get("namespaces") or ())
        self._api = client.ApiClient(configuration)

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return fn(*args, _request_timeout=REQUEST_TIMEOUT_S, **kwargs)
        except ApiException as e:
            if e.status == 404:
                raise _NotServed(what) from None
            raise ClusterUnavailable(f"{self.name}: reading {what}: HTTP {e.status} {e.reason}") from None
        except HTTPError as e:
            raise ClusterUnavailable(f"{self.name}: reading {what}: {type(e).__name__}: {e}") from None

    def _list(self, api: Any, plural: str, what: str) -> list[Any]:
        if not self.namespaces:
            return list(self._call(what, getattr(api, f"list_{plural}_for_all_namespaces")).items)
        named = getattr(api, f"list_namespaced_{plural}")
        return [item for ns in self.namespaces for item in self._call(what, named, ns).items]

    def workloads(self) -> list[Workload]:
        """Its Deployments and StatefulSets, each with the HPA that targets it."""
        from kubernetes import client

        apps, autoscaling = client.AppsV1Api(self._api), client.AutoscalingV2Api(self._api)
        scalers: dict[tuple[str, str, str], Autoscaler] = {}
        for hpa in self._list(autoscaling, "horizontal_pod_autoscaler", "horizontalpodautoscalers"):
            ref = hpa.spec.scale_target_ref
            scalers[(hpa.metadata.namespace, ref.kind.lower(), ref.name)] = Autoscaler(
                name=hpa.metadata.name, min_replicas=hpa.spec.min_replicas or 1, max_replicas=hpa.spec.max_replicas,
                cpu_utilization=_cpu_target(hpa.spec.metrics or []),
            )  # fmt: skip
        found = []
        for kind, plural in KINDS:
            for item in self._list(apps, _METHOD_NAMES[kind], plural):
                meta, spec = item.metadata, item.spec
                containers = tuple(
                    Container(name=c.name, cpu_request=(c.resources.requests or {}).get("cpu") if c.resources else None,
                              memory_request=(c.resources.requests or {}).get("memory") if c.resources else None)
                    for c in spec.template.spec.containers
                )  # fmt: skip
                found.append(Workload(
                    namespace=meta.namespace, kind=kind, name=meta.name,
                    replicas=spec.replicas if spec.replicas is not None else 1,
                    selector=dict(spec.selector.match_labels or {}), containers=containers,
                    autoscaler=scalers.get((meta.namespace, kind, meta.name)),
                ))  # fmt: skip
        return found

    def pod_metrics(self) -> list[dict[str, Any]] | None:
        """The metrics API's PodMetrics items, or None when the cluster serves no metrics API."""
        from kubernetes import client

        api: Any = client.CustomObjectsApi(self._api)
        group = ("metrics.k8s.io", "v1beta1")
        try:
            if not self.namespaces:
                return list(self._call("pod metrics", api.list_cluster_custom_object, *group, "pods")["items"])
            named = api.list_namespaced_custom_object
            return [
                item for ns in self.namespaces for item in self._call("pod metrics", named, *group, ns, "pods")["items"]
            ]
        except _NotServed:
            logger.warning("Cluster %r serves no metrics API (metrics.k8s.io): usage is unknown.", self.name)
            return None

    def close(self) -> None:
        self._api.close()


def _cpu_target(metrics: list[Any]) -> float | None:
    for metric in metrics:
        resource = getattr(metric, "resource", None)
        if metric.type == "Resource" and resource is not None and resource.name == "cpu":
            utilization = resource.target.average_utilization
            return utilization / 100 if utilization else None
    return None


def usage_of(workloads: list[Workload], pod_metrics: list[dict[str, Any]]) -> dict[str, Usage]:
    """Each workload's usage (by :attr:`Workload.key`), from the pods its selector matches."""
    # PERF: workloads indexed by one label of their selector, so a pod is checked against the few that may own it
    index: dict[tuple[str, str, str], list[Workload]] = {}
    for w in workloads:
        if w.selector:
            label, value = next(iter(w.selector.items()))
            index.setdefault((w.namespace, label, value), []).append(w)
    found: dict[str, Usage] = {}
    for pod in pod_metrics:
        meta = pod.get("metadata") or {}
        labels, namespace = meta.get("labels") or {}, str(meta.get("namespace"))
        candidates = (w for label, value in labels.items() for w in index.get((namespace, label, value), ()))
        owner = next((w for w in candidates if all(labels.get(k) == v for k, v in w.selector.items())), None)
        if owner is None:
            continue
        usage = found.setdefault(owner.key, Usage())
        usage.pods += 1
        for container in pod.get("containers") or []:
            cpu = cpu_millicores(str((container.get("usage") or {}).get("cpu", "0")))
            memory = memory_bytes(str((container.get("usage") or {}).get("memory", "0")))
            usage.cpu_m += cpu
            usage.memory_bytes += memory
            seen: dict[str, float] = usage.containers.setdefault(container["name"], {"cpu_m": 0.0, "memory_bytes": 0.0})
            seen["cpu_m"] += cpu  # a sum for now: a mean per pod once every pod is counted
            seen["memory_bytes"] = max(seen["memory_bytes"], memory)
    for usage in found.values():
        for seen in usage.containers.values():
            seen["cpu_m"] /= usage.pods
    return found
