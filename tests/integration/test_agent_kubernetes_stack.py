"""The Kubernetes agent end to end on the real stack: gunicorn, a dramatiq worker, RabbitMQ and PostgreSQL.

An operator's ``run`` reaches the agent's actor in the worker, which reads a local Kubernetes API server
through a kubeconfig, forecasts a Monday-style peak from the stored history, and proposes a scale-up;
once approved over the API, the executor PATCHes the scale subresource with the bearer token from the
secrets store, and an operator's rollback writes the previous replicas back.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet

from app.db import in_transaction
from app.models import Execution, WorkloadSample
from tests.http import request
from tests.k8s_server import KubernetesApi, kubernetes_api
from tests.processes import wait_for

TOKEN = "k8s-operator-token-5f2c"
SCALE = "/apis/apps/v1/namespaces/shop/deployments/web/scale"


@pytest.fixture(scope="module")
def stack_env(stack_env):
    """The stack with a secrets key, so the executor can send the API server's token."""
    return {**stack_env, "OPSCONDUCTOR_SECRET_KEYS": Fernet.generate_key().decode()}


@pytest.fixture
def cluster() -> Iterator[KubernetesApi]:
    with kubernetes_api(token=TOKEN) as api:
        api.workload("deployments", "shop", "web", replicas=3, cpu="500m")
        api.usage("shop", "web", [("300m", "300Mi")] * 3)
        yield api


def test_a_forecast_peak_is_proposed_approved_applied_and_rolled_back_against_the_api_server(stack, db, cluster,
                                                                                              tmp_path):  # fmt: skip
    base, admin = stack.base, stack.admin
    # Given the API server's token in the secrets store, and a manual kubernetes agent reading through a kubeconfig
    assert (
        request("POST", f"{base}/api/v1/secrets", key=admin, json={"name": "K8S_TOKEN", "value": TOKEN}).status == 201
    )
    configured = request("POST", f"{base}/api/v1/agents/config", key=admin, json={
        "name": "k8s-shop", "type": "kubernetes", "enabled": True, "automation_level": "manual",
        "interval_seconds": 3600, "thresholds": {"cpu_target": 0.7, "horizon_hours": 2},
        "integrations": [{"type": "kubernetes", "name": "test", "namespaces": ["shop"],
                          "kubeconfig": {"file": str(cluster.kubeconfig(tmp_path, token=TOKEN))},
                          "token": "{{ secret.K8S_TOKEN }}"}],
    })  # fmt: skip
    assert configured.status == 201, configured.body
    # And three past weeks when web used 2400m at this hour of the week (350m a pod at 70 % of 500m: 7 pods)
    now = datetime.now(UTC)
    in_transaction(lambda: WorkloadSample.insert_many([
        {"cluster": "test", "workload": "shop/deployment/web", "at": now - timedelta(weeks=w), "replicas": 3,
         "cpu_m": 2400.0, "memory_bytes": 9e8, "containers": {}} for w in (1, 2, 3)]).execute())  # fmt: skip
    # When an operator runs the agent now, and the worker's agent actor reads the cluster
    assert request("POST", f"{base}/api/v1/agents/k8s-shop/run", key=admin).status == 202
    execution_id = wait_for(lambda: in_transaction(lambda: next(
        (str(e.id) for e in Execution.select().where(Execution.requested_by == "agent:k8s-shop")), None)),
        timeout=60, message="the agent's proposal")  # fmt: skip
    url = f"{base}/api/v1/autonomous/executions/{execution_id}"

    def status(wanted: str):
        body = request("GET", url, key=stack.viewer).json()
        return body if body["status"] == wanted else None

    waiting = wait_for(lambda: status("awaiting_approval"), timeout=30, message="the approval request")
    # Then the approvers see the exact PATCH and the expected effect, and the cluster was only read
    planned = waiting["approval"]["requested_actions"][0]["request"]
    assert (planned["method"], planned["url"]) == ("PATCH", f"{cluster.url}{SCALE}"), planned
    definition = in_transaction(lambda: Execution.get_by_id(execution_id).definition)
    assert definition["agent"]["estimated_impact"] == "replicas 3 -> 7" and waiting["rollback_plan"]["supported"]
    assert definition["target_resources"] == ["k8s:shop/deployment/web"] and definition["purpose"] == "scaling"
    assert cluster.patches == [] and cluster.replicas("deployments", "shop", "web") == 3
    # When an admin approves over the API
    assert request("POST", f"{url}/approve", key=admin, json={"comment": "Monday peak"}).status == 200
    wait_for(lambda: status("completed"), timeout=30, message="the approved scale-up")
    # Then the API server got one merge patch of the scale subresource, with the secret token, and has 7 replicas
    (applied,) = cluster.patches
    assert (applied["path"], applied["json"]) == (SCALE, {"spec": {"replicas": 7}})
    assert applied["headers"]["content-type"] == "application/merge-patch+json"
    assert applied["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert cluster.replicas("deployments", "shop", "web") == 7
    # When an operator rolls it back
    assert request("POST", f"{url}/rollback", key=admin, json={"reason": "peak passed"}).status == 202
    wait_for(lambda: status("rolled_back"), timeout=30, message="the rollback")
    # Then the previous replicas are written back
    assert [p["json"] for p in cluster.patches] == [{"spec": {"replicas": 7}}, {"spec": {"replicas": 3}}]
    assert cluster.replicas("deployments", "shop", "web") == 3
