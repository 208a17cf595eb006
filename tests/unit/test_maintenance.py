"""Maintenance windows: which moments and targets they cover, and their API (through the real WSGI app)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from falcon import testing
from freezegun import freeze_time

from app.auth import create_key
from app.autonomous.maintenance import covering_window, window_covers
from app.http.app import Deps, create_app
from app.models import AuditLog, MaintenanceWindow
from app.publishing import DirectPublisher

NOW = datetime(2026, 11, 24, 2, 30, tzinfo=UTC)  # a Tuesday


def window(**columns) -> MaintenanceWindow:
    return MaintenanceWindow(**{"name": "w", "scope": {}, "active": True, **columns})


def covers(w: MaintenanceWindow, *, at=NOW, host=None, service=None, tags=()) -> bool:
    return window_covers(w, at=at, host=host, service=service, tags=tags)


def test_a_one_off_window_covers_its_period_only():
    w = window(starts_at=NOW - timedelta(hours=1), ends_at=NOW + timedelta(hours=1))
    assert covers(w) and not covers(w, at=NOW + timedelta(hours=2)) and not covers(w, at=NOW - timedelta(hours=2))
    assert not covers(window(starts_at=NOW - timedelta(hours=1), ends_at=NOW + timedelta(hours=1), active=False))


def test_a_recurring_window_crosses_midnight_in_its_time_zone():
    # Tuesdays 03:00-05:00 in Paris is 02:00-04:00 UTC in November
    w = window(schedule={"days": ["tue"], "start": "03:00", "end": "05:00", "timezone": "Europe/Paris"})
    assert covers(w) and not covers(w, at=NOW + timedelta(hours=2))
    night = window(schedule={"days": ["mon", "tue"], "start": "23:00", "end": "04:00", "timezone": "UTC"})
    assert covers(night) and not covers(night, at=NOW + timedelta(hours=12))


def test_scope_by_host_wildcard_service_and_tag():
    period = {"starts_at": NOW - timedelta(hours=1), "ends_at": NOW + timedelta(hours=1)}
    hosts = window(scope={"hosts": ["web-*", "DB-01"]}, **period)
    assert covers(hosts, host="web-17") and covers(hosts, host="db-01") and not covers(hosts, host="db-02")
    assert covers(window(scope={"services": ["nginx"]}, **period), service="nginx")
    assert not covers(window(scope={"services": ["nginx"]}, **period), service="redis", host="web-1")
    assert covers(window(scope={"tags": ["prod-eu"]}, **period), tags=["prod-eu", "x"])
    assert covers(window(**period), host="anything")  # an empty scope covers everything


@pytest.fixture
def client(any_db, stub_broker):
    app = create_app(Deps(publisher=DirectPublisher(stub_broker)))
    keys = {role: create_key(role=role, name=f"{role} key") for role in ("operator", "viewer")}
    yield testing.TestClient(app), keys


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def test_maintenance_windows_are_managed_through_the_api(client):
    api, keys = client
    body = {"name": "patch tuesday", "scope": {"hosts": ["web-*"]},
            "starts_at": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
            "ends_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}  # fmt: skip
    assert api.simulate_post("/api/v1/maintenance", json=body, headers=auth(keys["viewer"])).status_code == 403
    assert api.simulate_post("/api/v1/maintenance", json=body).status_code == 401
    created = api.simulate_post("/api/v1/maintenance", json=body, headers=auth(keys["operator"]))
    assert created.status_code == 201, created.text
    window_id = created.json["id"]
    assert created.json["active_now"] is True and created.json["scope"]["hosts"] == ["web-*"]
    # It blocks remediation on web-01 now
    assert covering_window(at=datetime.now(UTC), host="web-01", service=None, tags=()).id == window_id
    listed = api.simulate_get("/api/v1/maintenance?active_now=true&host=web-02", headers=auth(keys["viewer"]))
    assert [w["id"] for w in listed.json["windows"]] == [window_id]
    assert api.simulate_get("/api/v1/maintenance?host=db-01", headers=auth(keys["viewer"])).json["windows"] == []
    # Update and delete, audited
    moved = api.simulate_put(f"/api/v1/maintenance/{window_id}", headers=auth(keys["operator"]),
                             json={**body, "starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-01-01T02:00:00Z"})  # fmt: skip
    assert moved.status_code == 200 and moved.json["active_now"] is False
    assert api.simulate_delete(f"/api/v1/maintenance/{window_id}", headers=auth(keys["operator"])).status_code == 200
    assert api.simulate_get(f"/api/v1/maintenance/{window_id}", headers=auth(keys["viewer"])).status_code == 404
    actions = [a.action for a in AuditLog.select().where(AuditLog.subject == f"maintenance_window:{window_id}")]
    assert actions == ["maintenance.created", "maintenance.updated", "maintenance.deleted"]


@pytest.mark.parametrize(("body", "field"), [
    ({"scope": {}}, "name"),
    ({"name": "x"}, "starts_at"),
    ({"name": "x", "starts_at": "2030-01-01T02:00:00Z", "ends_at": "2030-01-01T01:00:00Z"}, "ends_at"),
    ({"name": "x", "scope": {"hosts": "web-01"}, "schedule": {"days": ["tue"]}}, "scope.hosts"),
    ({"name": "x", "schedule": {"days": ["someday"]}}, "schedule.days"),
    ({"name": "x", "starts_at": "yesterday", "ends_at": "2030-01-01T01:00:00Z"}, "starts_at"),
])  # fmt: skip
def test_a_bad_window_is_refused_naming_the_field(client, body, field):
    api, keys = client
    reply = api.simulate_post("/api/v1/maintenance", json=body, headers=auth(keys["operator"]))
    assert reply.status_code == 400 and reply.json["field"] == field


@freeze_time("2026-11-24 03:30:00")
def test_a_recurring_window_is_active_now_only_inside_its_hours(client):
    api, keys = client
    body = {"name": "nightly", "schedule": {"days": ["tue"], "start": "03:00", "end": "04:00", "timezone": "UTC"}}
    created = api.simulate_post("/api/v1/maintenance", json=body, headers=auth(keys["operator"]))
    assert created.json["active_now"] is True
