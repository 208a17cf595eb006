"""The Kubernetes agent against a local API server: reading workloads, HPAs, requests and usage with the
official client, proposals with their risk, effect and rollback, and a run that keeps a history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.agents import kubernetes_history as history
from app.agents import proposals as agent_proposals
from app.agents import registry
from app.agents.base import AgentAction, AgentEvent, AgentSettings, implementation
from app.agents.kubernetes import KubernetesAgent
from app.agents.kubernetes_client import Cluster, ClusterUnavailable, Container, Usage, Workload, usage_of
from app.agents.kubernetes_forecast import Forecast
from app.agents.kubernetes_proposals import Target, rightsize, scale
from app.db import in_transaction
from app.errors import InvalidInput
from app.models import WorkloadSample
from tests.k8s_server import kubernetes_api

MONDAY_8 = datetime(2026, 12, 7, 8, tzinfo=UTC)
TARGET = Target(host="https://k8s.example:6443", token="{{ secret.K8S_TOKEN }}")


def _cluster(api, tmp_path, **extra) -> dict:
    return {"type": "kubernetes", "name": "test", "kubeconfig": {"file": str(api.kubeconfig(tmp_path))}, **extra}


def _web(replicas=3, cpu="500m", memory="512Mi", autoscaler=None) -> Workload:
    return Workload(namespace="shop", kind="deployment", name="web", replicas=replicas, selector={"app": "web"},
                    containers=(Container(name="app", cpu_request=cpu, memory_request=memory),), autoscaler=autoscaler)  # fmt: skip


def _demand(high: float, expected: float | None = None) -> Forecast:
    return Forecast(
        at=MONDAY_8, expected=expected or high * 0.8, low=high * 0.5, high=high, method="seasonal", samples=4
    )


# --- reading ----------------------------------------------------------------------------------------


def test_the_client_reads_workloads_their_autoscalers_requests_and_usage_through_a_kubeconfig(tmp_path):
    with kubernetes_api(token="reader-token") as api:
        # Given a Deployment with an HPA, a StatefulSet, and metrics-server's pod usage
        api.workload("deployments", "shop", "web", replicas=3, cpu="500m", memory="512Mi")
        api.workload("statefulsets", "shop", "db", replicas=1, cpu="2", memory="4Gi", container="postgres")
        api.autoscaler("shop", "web", target="web", min_replicas=2, max_replicas=6)
        api.usage("shop", "web", [("250m", "300Mi"), ("350000000n", "320Mi")])
        api.usage("staging", "web", [("900m", "900Mi")])  # same labels, another namespace: not shop's web
        # When the agent's client reads the cluster through the kubeconfig
        cluster = Cluster(_cluster(api, tmp_path))
        workloads = {w.key: w for w in cluster.workloads()}
        usage = usage_of(list(workloads.values()), cluster.pod_metrics() or [])
        cluster.close()
    # Then each workload has its replicas, requests in numbers, and the HPA that scales it
    web, db = workloads["shop/deployment/web"], workloads["shop/statefulset/db"]
    assert (web.replicas, web.cpu_request_m, web.containers[0].memory_request_bytes) == (3, 500.0, 512 * 2**20)
    assert web.autoscaler is not None and (web.autoscaler.min_replicas, web.autoscaler.max_replicas) == (2, 6)
    assert web.autoscaler.cpu_utilization == 0.7 and db.autoscaler is None and db.cpu_request_m == 2000.0
    # And usage sums the pods the selector matches (nanocores too), per container as a mean per pod
    assert usage["shop/deployment/web"].pods == 2 and usage["shop/deployment/web"].cpu_m == pytest.approx(600.0)
    assert usage["shop/deployment/web"].containers["app"]["cpu_m"] == pytest.approx(300.0)
    assert "shop/statefulset/db" not in usage
    # And it authenticated with the kubeconfig's token on the apps/v1, autoscaling/v2 and metrics paths
    paths = {r["path"].split("?")[0] for r in api.requests}
    assert {"/apis/apps/v1/deployments", "/apis/apps/v1/statefulsets", "/apis/autoscaling/v2/horizontalpodautoscalers",
            "/apis/metrics.k8s.io/v1beta1/pods"} == paths  # fmt: skip
    assert {r["headers"]["authorization"] for r in api.requests} == {"Bearer reader-token"}


def test_a_cluster_without_metrics_api_is_read_without_usage_and_bad_credentials_fail_the_run(tmp_path):
    with kubernetes_api(token="reader-token") as api:
        api.workload("deployments", "shop", "web", replicas=3)
        api.metrics_served = False
        cluster = Cluster(_cluster(api, tmp_path, namespaces=["shop"]))
        assert cluster.pod_metrics() is None and [w.key for w in cluster.workloads()] == ["shop/deployment/web"]
        # When the kubeconfig's token is refused, Then the read fails saying so
        (tmp_path / "bad").mkdir()
        refused = Cluster(
            {
                "type": "kubernetes",
                "name": "bad",
                "kubeconfig": {"file": str(api.kubeconfig(tmp_path / "bad", token="nope"))},
            }
        )
        with pytest.raises(ClusterUnavailable, match="HTTP 401"):
            refused.workloads()
    with pytest.raises(ClusterUnavailable, match="kubeconfig"):
        Cluster({"type": "kubernetes", "kubeconfig": "/etc/kubeconfig"})
    with pytest.raises(ClusterUnavailable, match="missing cannot be read"):
        Cluster({"type": "kubernetes", "kubeconfig": {"file": str(tmp_path / "missing")}})


# --- proposals ----------------------------------------------------------------------------------------


def test_a_forecast_above_capacity_proposes_a_scale_up_patching_the_scale_subresource_with_its_rollback():
    # Given 3 pods requesting 500m each and a forecast peak of 1800m (at 70 %: 350m per pod -> 6 pods)
    action = scale(_web(), _demand(1800.0), {}, TARGET)
    # Then replicas go 3 -> 6 by a merge patch of the scale subresource, with the bearer token reference
    assert action is not None and action.type == "scale_up" and action.estimated_impact == "replicas 3 -> 6"
    assert action.target_resources == ("k8s:shop/deployment/web",) and action.risk_level == "low"
    http = action.steps[0]["http"]
    assert (http["method"], http["url"]) == (
        "PATCH",
        "https://k8s.example:6443/apis/apps/v1/namespaces/shop/deployments/web/scale",
    )
    assert http["headers"]["Content-Type"] == "application/merge-patch+json"
    assert http["headers"]["Authorization"] == "Bearer {{ secret.K8S_TOKEN }}" and http["json"] == {
        "spec": {"replicas": 6}
    }
    # And the rollback writes the previous 3 back
    assert action.rollback_steps[0]["rolls_back"] == "scale" and action.rollback_steps[0]["http"]["json"] == {
        "spec": {"replicas": 3}
    }
    # And it is a valid proposal for the decider (validated as an operator's template)
    settings = AgentSettings(name="k8s", kind="kubernetes", automation_level="manual", approval_required=True)
    assert agent_proposals.template_of(settings, action)["actions"][0]["risk_level"] == "low"


def test_scaling_down_is_riskier_than_up_and_a_fitting_size_proposes_nothing():
    down = scale(_web(replicas=8), _demand(700.0), {}, TARGET)
    assert down is not None and down.type == "scale_down" and down.risk_level == "medium"
    assert down.estimated_impact == "replicas 8 -> 2"
    assert scale(_web(replicas=3), _demand(1000.0), {}, TARGET) is None  # 1000 / 350 -> 3
    # bounds from the thresholds hold whatever the forecast says; no CPU request, no sizing
    capped = scale(_web(replicas=3), _demand(100_000.0), {"max_replicas": 10}, TARGET)
    assert capped is not None and capped.estimated_impact == "replicas 3 -> 10" and capped.risk_level == "medium"
    assert scale(_web(cpu=None), _demand(5000.0), {}, TARGET) is None  # type: ignore[arg-type]
    assert scale(_web(replicas=0), _demand(5000.0), {}, TARGET) is None  # scaled to zero on purpose


def test_with_an_hpa_the_bounds_are_raised_instead_of_the_replicas():
    from app.agents.kubernetes_client import Autoscaler

    web = _web(autoscaler=Autoscaler(name="web", min_replicas=2, max_replicas=5, cpu_utilization=0.7))
    # the HPA's own target (70 % of 500m) sizes it, whatever the agent's cpu_target says
    action = scale(web, _demand(2400.0), {"cpu_target": 0.5}, TARGET)  # 2400 / 350 -> 7 pods
    assert action is not None and action.type == "scale_bounds"
    assert action.estimated_impact == "hpa minReplicas 2 -> 7; hpa maxReplicas 5 -> 7"
    assert action.steps[0]["http"]["url"].endswith("/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers/web")
    assert action.steps[0]["http"]["json"] == {"spec": {"minReplicas": 7, "maxReplicas": 7}}
    assert action.rollback_steps[0]["http"]["json"] == {"spec": {"minReplicas": 2, "maxReplicas": 5}}
    assert "k8s:shop/horizontalpodautoscaler/web" in action.target_resources
    # a forecast the HPA's bounds already hold proposes nothing (bounds are never lowered by the agent)
    assert scale(web, _demand(500.0), {}, TARGET) is None


def test_oversized_requests_are_right_sized_by_a_strategic_merge_patch_and_restored_on_rollback():
    # Given 30 samples where the container used 100-150m CPU and at most 200Mi of its 500m / 512Mi
    history = [{"app": {"cpu_m": 100.0 + (i % 6) * 10, "memory_bytes": (150 + i) * 2**20}} for i in range(30)]
    action = rightsize(_web(), history, {}, TARGET)
    # Then CPU goes to p95 + 20 % and memory to the largest seen + 20 %: a memory cut is high risk
    assert action is not None and action.type == "rightsize" and action.purpose == "cost"
    assert action.estimated_impact == "app cpu request 500m -> 180m; app memory request 512Mi -> 215Mi"
    assert action.risk_level == "high"
    http = action.steps[0]["http"]
    assert http["url"].endswith("/apis/apps/v1/namespaces/shop/deployments/web")
    assert http["headers"]["Content-Type"] == "application/strategic-merge-patch+json"
    assert http["json"] == {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "resources": {"requests": {"cpu": "180m", "memory": "215Mi"}}}]}}}}  # fmt: skip
    assert action.rollback_steps[0]["http"]["json"]["spec"]["template"]["spec"]["containers"] == [
        {"name": "app", "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}}}]  # fmt: skip
    # And too little history, or requests close to use, propose nothing
    assert rightsize(_web(), history[:10], {}, TARGET) is None
    assert rightsize(_web(cpu="150m", memory="200Mi"), history, {}, TARGET) is None


# --- the agent's run --------------------------------------------------------------------------------


def test_a_run_stores_a_sample_per_workload_and_sizes_from_the_history(pg_db, tmp_path):
    assert isinstance(implementation("kubernetes"), KubernetesAgent)
    seven = MONDAY_8 - timedelta(hours=1)
    with kubernetes_api() as api:
        # Given web at 3 x 500m / 512Mi: three past Mondays at 08:00 it used 2400m, and the last 30 hours
        # its container used 100m and 200Mi a pod
        api.workload("deployments", "shop", "web", replicas=3)
        api.workload("statefulsets", "shop", "db", replicas=1)
        api.usage("shop", "web", [("100m", "200Mi")] * 3)
        rows = [{"cluster": "test", "workload": "shop/deployment/web", "at": MONDAY_8 - timedelta(weeks=w),
                 "replicas": 3, "cpu_m": 2400.0, "containers": {}} for w in (1, 2, 3)]  # fmt: skip
        rows += [{"cluster": "test", "workload": "shop/deployment/web", "at": seven - timedelta(hours=h), "replicas": 3,
                  "cpu_m": 300.0, "containers": {"app": {"cpu_m": 100.0, "memory_bytes": 200 * 2**20}}}
                 for h in range(1, 31)]  # fmt: skip
        in_transaction(lambda: WorkloadSample.insert_many(rows).execute())
        settings = AgentSettings(name="k8s", kind="kubernetes", automation_level="manual", approval_required=True,
                                 integrations=(_cluster(api, tmp_path, token="{{ secret.K8S_TOKEN }}"),))  # fmt: skip
        assert KubernetesAgent().status(settings) == {"ready": True, "clusters": ["test"]}
        # When the agent runs at 07:00 (sizing two hours ahead), and again at 07:20
        first = KubernetesAgent(now=lambda: seven).run(settings)
        again = KubernetesAgent(now=lambda: seven + timedelta(minutes=20)).run(settings)
    # Then it recorded this hour's usage for each workload
    rows = in_transaction(lambda: list(WorkloadSample.select().where(WorkloadSample.at == seven)))
    assert {(r.workload, r.cpu_m) for r in rows} == {("shop/deployment/web", 300.0), ("shop/statefulset/db", None)}
    # And proposed scaling web up for the 08:00 peak (2400m at 350m a pod: 7), not db (no usage),
    # and right-sized web's requests on the first run of the hour only
    actions = [(a.type, a.estimated_impact, a.key) for a in first if isinstance(a, AgentAction)]
    assert actions == [("scale_up", "replicas 3 -> 7", "shop/deployment/web:scale"),
                       ("rightsize", "app cpu request 500m -> 120m; app memory request 512Mi -> 240Mi",
                        "shop/deployment/web:requests")]  # fmt: skip
    assert [(a.type, a.estimated_impact) for a in again] == [("scale_up", "replicas 3 -> 7")]
    assert first[0].steps[0]["http"]["url"] == f"{api.url}/apis/apps/v1/namespaces/shop/deployments/web/scale"
    assert not [r for r in first if isinstance(r, AgentEvent)]


def test_history_keeps_one_row_per_workload_and_hour_and_reads_only_the_hours_a_forecast_uses(any_db):
    web = _web()
    # Given two runs in the same hour (the second busier), and rows of past weeks and of long ago
    opened = []
    for minute, cpu in ((5, 900.0), (35, 1500.0)):
        usage = Usage(pods=3, cpu_m=cpu, memory_bytes=9e8, containers={"app": {"cpu_m": cpu / 3, "memory_bytes": 3e8}})
        at = MONDAY_8.replace(minute=minute)
        opened.append(in_transaction(lambda u=usage, at=at: history.record("test", [web], {web.key: u}, at)))
    old = [
        MONDAY_8 - timedelta(weeks=2, hours=-2),
        MONDAY_8 - timedelta(weeks=2, hours=5),
        MONDAY_8 - timedelta(days=60),
    ]
    in_transaction(lambda: WorkloadSample.insert_many([{"cluster": "test", "workload": web.key, "at": at, "replicas": 3,
                                                        "cpu_m": 100.0} for at in old]).execute())  # fmt: skip
    # When runs at 09:00 and 09:10 record (no usage) and read what a two-hour forecast from 09:00 needs
    opened += [in_transaction(lambda m=m: history.record("test", [web], {}, MONDAY_8 + timedelta(hours=1, minutes=m)))
               for m in (0, 10)]  # fmt: skip
    later = MONDAY_8 + timedelta(hours=1, minutes=10)
    cpu = in_transaction(lambda: history.demand("test", [web.key], later, horizon_hours=2))
    used = in_transaction(lambda: history.containers("test", [web.key], later))
    # Then only the first run of each hour opened its row, and the 08:00 row holds the busier run
    assert opened == [{web.key}, set(), {web.key}, set()]
    assert used == {web.key: [{"app": {"cpu_m": 500.0, "memory_bytes": 3e8}}]}
    # And the forecast reads the last day and, two weeks ago, only its own hours; the expired row is gone
    assert cpu == {web.key: [(MONDAY_8 - timedelta(weeks=2, hours=-2), 100.0), (MONDAY_8, 1500.0)]}
    assert in_transaction(lambda: WorkloadSample.select().count()) == 4


def test_status_says_why_an_integration_cannot_work_without_calling_the_cluster(tmp_path):
    agent = KubernetesAgent()

    def status(*integrations):
        return agent.status(AgentSettings(name="k", kind="kubernetes", automation_level="manual",
                                          approval_required=True, integrations=integrations))  # fmt: skip

    assert status()["reason"] == "no integration of type kubernetes is configured"
    assert "cannot be read" in status({"type": "kubernetes", "kubeconfig": {"file": str(tmp_path / "none")}})["reason"]
    assert "outside a cluster" in status({"type": "kubernetes", "in_cluster": True})["reason"]


@pytest.mark.parametrize(
    ("integration", "field"),
    [
        ({"kubeconfig": {"file": "/k"}, "tokn": "x"}, "integrations[0].tokn"),
        ({}, "integrations[0].kubeconfig"),
        ({"kubeconfig": {"file": "/k"}, "in_cluster": True}, "integrations[0].kubeconfig"),
        ({"kubeconfig": "/etc/kubeconfig"}, "integrations[0].kubeconfig"),
        ({"kubeconfig": {"file": "relative/kubeconfig"}}, "integrations[0].kubeconfig"),
        ({"in_cluster": "yes"}, "integrations[0].in_cluster"),
        ({"in_cluster": True, "namespaces": "shop"}, "integrations[0].namespaces"),
        ({"in_cluster": True, "namespaces": ["Shop_1"]}, "integrations[0].namespaces"),
        ({"in_cluster": True, "token": {"env": "K8S_TOKEN"}}, "integrations[0].token"),
        ({"in_cluster": True, "verify_tls": "no"}, "integrations[0].verify_tls"),
        ({"in_cluster": True, "api_server": "k8s.example:6443"}, "integrations[0].api_server"),
        ({"in_cluster": True, "context": 3}, "integrations[0].context"),
    ],
)
def test_a_kubernetes_integration_is_checked_when_configured_naming_the_field(integration, field):
    with pytest.raises(InvalidInput) as refused:
        registry.parse_config(
            {"name": "k8s", "type": "kubernetes", "integrations": [{"type": "kubernetes", **integration}]}
        )
    assert refused.value.field == field


def test_a_valid_kubernetes_integration_is_kept_as_given():
    given = {"type": "kubernetes", "name": "prod", "kubeconfig": {"file": "/etc/oc/kubeconfig"}, "context": "prod",
             "namespaces": ["shop"], "token": "{{ secret.K8S_TOKEN }}", "verify_tls": True,
             "api_server": "https://k8s.example:6443"}  # fmt: skip
    assert registry.parse_config({"name": "k8s", "type": "kubernetes", "integrations": [given]})["integrations"] == [
        given
    ]
