"""A local stand-in for a Kubernetes API server: the paths the Kubernetes agent reads and its steps patch.

It keeps Deployments, StatefulSets and HorizontalPodAutoscalers as the real server shows them
(``kind``, ``apiVersion``, ``metadata``, ``spec``, ``status``), serves PodMetrics as metrics-server
does, and applies PATCHes as the real server does for the content types used: a JSON merge patch on
the ``scale`` subresource and on HPAs, a strategic merge patch on a workload's pod template
(containers merged by name). Like the real one, it answers a PATCH sent as plain ``application/json``
with 415, and a request without the expected bearer token with 401. Every request is recorded.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

PLURALS = {"deployments": ("Deployment", "apps/v1"), "statefulsets": ("StatefulSet", "apps/v1"),
           "horizontalpodautoscalers": ("HorizontalPodAutoscaler", "autoscaling/v2")}  # fmt: skip
_OBJECT = re.compile(r"/apis/(apps/v1|autoscaling/v2)/namespaces/([^/]+)/(\w+)/([^/]+)(/scale)?")
_LIST = re.compile(r"/apis/(apps/v1|autoscaling/v2|metrics\.k8s\.io/v1beta1)(?:/namespaces/([^/]+))?/(\w+)")


def _merge(into: dict[str, Any], patch: dict[str, Any], *, strategic: bool) -> None:
    """RFC 7386 merge; with ``strategic``, lists of containers merge by name as the API server's patch does."""
    for key, value in patch.items():
        if value is None:
            into.pop(key, None)
        elif strategic and key == "containers" and isinstance(value, list):
            by_name = {c["name"]: c for c in into.setdefault(key, [])}
            for item in value:
                if item["name"] in by_name:
                    _merge(by_name[item["name"]], item, strategic=True)
                else:
                    into[key].append(item)
        elif isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value, strategic=strategic)
        else:
            into[key] = value


class KubernetesApi:
    """The server's state and what it received: ``.url``, ``.requests``, ``.patches``, ``.replicas(...)``."""

    def __init__(self, *, token: str | None = None) -> None:
        self.token = token
        self.url = ""
        self.lock = threading.Lock()
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.pods: list[dict[str, Any]] = []
        self.metrics_served = True
        self.requests: list[dict[str, Any]] = []

    def workload(self, plural: str, namespace: str, name: str, *, replicas: int, cpu: str = "500m",
                 memory: str = "512Mi", container: str = "app") -> dict[str, Any]:  # fmt: skip
        kind, version = PLURALS[plural]
        labels = {"app": name}
        body = {
            "kind": kind, "apiVersion": version,
            "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{namespace}-{name}", "generation": 1,
                         "resourceVersion": "1000", "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                         {"name": container, "image": f"registry.example/{name}:1.4.2",
                          "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                          "resources": {"requests": {"cpu": cpu, "memory": memory},
                                        "limits": {"memory": "1Gi"}}}]}}},
            "status": {"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas,
                       "observedGeneration": 1},
        }  # fmt: skip
        if plural == "statefulsets":
            body["spec"]["serviceName"] = name
        with self.lock:
            self.objects[(plural, namespace, name)] = body
        return body

    def autoscaler(self, namespace: str, name: str, *, target: str, min_replicas: int, max_replicas: int) -> None:
        body = {
            "kind": "HorizontalPodAutoscaler", "apiVersion": "autoscaling/v2",
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": "2000"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                     "minReplicas": min_replicas, "maxReplicas": max_replicas,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                         "type": "Utilization", "averageUtilization": 70}}}]},
            "status": {"currentReplicas": min_replicas, "desiredReplicas": min_replicas},
        }  # fmt: skip
        with self.lock:
            self.objects[("horizontalpodautoscalers", namespace, name)] = body

    def usage(self, namespace: str, app: str, pods: list[tuple[str, str]], *, container: str = "app") -> None:
        """Pods of ``app`` using ``(cpu, memory)`` each, as metrics-server reports them."""
        with self.lock:
            self.pods = [p for p in self.pods if p["metadata"]["labels"].get("app") != app or
                         p["metadata"]["namespace"] != namespace]  # fmt: skip
            for i, (cpu, memory) in enumerate(pods):
                self.pods.append({
                    "metadata": {"name": f"{app}-7d9f8c6b5-{i:05d}", "namespace": namespace,
                                 "creationTimestamp": "2026-12-07T03:00:00Z",
                                 "labels": {"app": app, "pod-template-hash": "7d9f8c6b5"}},
                    "timestamp": "2026-12-07T03:00:00Z", "window": "15s",
                    "containers": [{"name": container, "usage": {"cpu": cpu, "memory": memory}}],
                })  # fmt: skip

    def replicas(self, plural: str, namespace: str, name: str) -> int:
        with self.lock:
            return int(self.objects[(plural, namespace, name)]["spec"]["replicas"])

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        with self.lock:
            return json.loads(json.dumps(self.objects[(plural, namespace, name)]))

    @property
    def patches(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["method"] == "PATCH"]

    def kubeconfig(self, directory: Path, *, token: str = "reader-token") -> Path:
        """A kubeconfig (JSON is YAML) whose current context reaches this server with ``token``."""
        path = directory / "kubeconfig"
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "test", "preferences": {},
            "clusters": [{"name": "test", "cluster": {"server": self.url}}],
            "users": [{"name": "reader", "user": {"token": token}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "reader"}}],
        }))  # fmt: skip
        return path

    # --- answering ----------------------------------------------------------------------------------

    def answer(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.requests.append({"method": method, "path": path, "headers": headers, "json": body})
            if self.token and headers.get("authorization") != f"Bearer {self.token}":
                return 401, _status(401, "Unauthorized", "Unauthorized")
            path = path.split("?")[0]
            if method == "GET" and (found := _LIST.fullmatch(path)):
                return self._list(*found.groups())
            found = _OBJECT.fullmatch(path)
            if found is None or (found.group(3), found.group(2), found.group(4)) not in self.objects:
                return 404, _status(404, "NotFound", f"the server could not find the requested resource ({path})")
            obj = self.objects[(found.group(3), found.group(2), found.group(4))]
            scale = bool(found.group(5))
            if method == "PATCH":
                kind = headers.get("content-type", "").split(";")[0].strip()
                if kind not in ("application/merge-patch+json", "application/strategic-merge-patch+json") or (
                    scale and kind != "application/merge-patch+json"):  # fmt: skip
                    return 415, _status(
                        415, "UnsupportedMediaType", f"the body of the request was in an unknown format: {kind}"
                    )
                _merge(
                    obj, {"spec": body["spec"]} if scale else body, strategic=kind.startswith("application/strategic")
                )
                obj["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)
            elif method != "GET":
                return 405, _status(405, "MethodNotAllowed", f"{method} is not supported here")
            return 200, _scale(obj) if scale else obj

    def _list(self, group: str, namespace: str | None, plural: str) -> tuple[int, dict[str, Any]]:
        if group.startswith("metrics"):
            if not self.metrics_served or plural != "pods":
                return 404, _status(404, "NotFound", "the server could not find the requested resource")
            items = [p for p in self.pods if namespace in (None, p["metadata"]["namespace"])]
            return 200, {"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {},
                         "items": items}  # fmt: skip
        if plural not in PLURALS:
            return 404, _status(404, "NotFound", "the server could not find the requested resource")
        items = [o for (p, ns, _), o in self.objects.items() if p == plural and namespace in (None, ns)]
        kind, version = PLURALS[plural]
        return 200, {"kind": f"{kind}List", "apiVersion": version, "metadata": {"resourceVersion": "5000"},
                     "items": items}  # fmt: skip


def _scale(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"], "resourceVersion": meta["resourceVersion"]},
            "spec": {"replicas": obj["spec"]["replicas"]},
            "status": {"replicas": obj["status"]["replicas"], "selector": f"app={meta['name']}"}}  # fmt: skip


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}  # fmt: skip


@contextmanager
def kubernetes_api(*, token: str | None = None) -> Iterator[KubernetesApi]:
    """A :class:`KubernetesApi` served on 127.0.0.1 (a real threaded HTTP server) while the block runs."""
    api = KubernetesApi(token=token)

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, payload = api.answer(
                self.command,
                self.path,
                {k.lower(): v for k, v in self.headers.items()},
                json.loads(raw) if raw else None,
            )
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PATCH = do_POST = do_PUT = do_DELETE = _handle  # noqa: N815 - http.server's naming

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
