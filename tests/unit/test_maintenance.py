"""Maintenance windows: which moments and targets they cover, and their API (through the real WSGI app)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from falcon import testing
from freezegun import freeze_time

from app.auth import create_key
from app.decisions.maintenance import covering_window, window_covers
from app.http.app import Deps, create_app
from app.models import AuditLog, MaintenanceWindow
from app.publishing import DirectPublisher

NOW = datetime(2026, 11, 24, 2, 30, tzinfo=UTC)  # a Tuesday
HOUR = timedelta(hours=1)
AROUND_NOW = {"starts_at": NOW - HOUR, "ends_at": NOW + HOUR}


def window(**columns) -> MaintenanceWindow:
    return MaintenanceWindow(**{"name": "w", "scope": {}, "active": True, **columns})


def covers(w: MaintenanceWindow, *, at=NOW, host=None, service=None, tags=()) -> bool:
    return window_covers(w, at=at, host=host, service=service, tags=tags)


# The covering logic, without a database


def test_a_one_off_window_covers_its_period_only():
    w = window(**AROUND_NOW)
    assert covers(w)
    assert covers(w, at=NOW - HOUR)  # the start is inside ...
    assert not covers(w, at=NOW + HOUR)  # ... the end is not
    assert not covers(w, at=NOW + 2 * HOUR)
    assert not covers(w, at=NOW - 2 * HOUR)


def test_an_inactive_window_covers_nothing():
    assert not covers(window(active=False, **AROUND_NOW))
    assert not covers(window(active=False, schedule={"days": ["tue"], "start": "00:00", "end": "23:00"}))


def test_a_recurring_window_follows_its_time_zone_across_daylight_saving():
    # Given Tuesdays 03:00-05:00 in Paris: 02:00-04:00 UTC in November, 01:00-03:00 UTC in June
    w = window(schedule={"days": ["tue"], "start": "03:00", "end": "05:00", "timezone": "Europe/Paris"})
    assert covers(w)
    assert not covers(w, at=NOW + 2 * HOUR)
    assert not covers(w, at=NOW - 7 * 24 * HOUR + 24 * HOUR)  # a Wednesday
    june_tuesday = datetime(2026, 6, 2, 1, 30, tzinfo=UTC)
    assert covers(w, at=june_tuesday)
    assert not covers(w, at=june_tuesday + 2 * HOUR)


def test_a_recurring_window_crosses_midnight():
    # Given Monday and Tuesday nights 23:00-04:00 UTC
    night = window(schedule={"days": ["mon", "tue"], "start": "23:00", "end": "04:00", "timezone": "UTC"})
    assert covers(night)  # Tuesday 02:30
    assert covers(night, at=NOW.replace(hour=23, minute=30))  # Tuesday 23:30
    assert not covers(night, at=NOW + 12 * HOUR)  # Tuesday 14:30


def test_a_recurring_window_bounded_by_a_period_needs_both():
    w = window(schedule={"days": ["tue"], "start": "02:00", "end": "03:00"}, **AROUND_NOW)
    assert covers(w)
    assert not covers(w, at=NOW + 7 * 24 * HOUR)  # next Tuesday, after the period


def test_hosts_match_exactly_or_by_wildcard_prefix_ignoring_case():
    w = window(scope={"hosts": ["web-*", "DB-01"]}, **AROUND_NOW)
    assert covers(w, host="web-17")
    assert covers(w, host="WEB-01")
    assert covers(w, host="db-01")
    assert not covers(w, host="db-02")
    assert not covers(w, host="db-01.example")  # exact means exact
    assert not covers(w, host=None)


def test_services_and_tags_match_ignoring_case():
    nginx = window(scope={"services": ["nginx"]}, **AROUND_NOW)
    assert covers(nginx, service="NGINX")
    assert not covers(nginx, service="redis", host="web-1")
    prod = window(scope={"tags": ["prod-eu"]}, **AROUND_NOW)
    assert covers(prod, tags=["Prod-EU", "x"])
    assert not covers(prod, tags=["prod-us"])


def test_a_window_with_an_empty_scope_covers_every_target():
    assert covers(window(**AROUND_NOW), host="anything")
    assert covers(window(scope={"hosts": [], "services": [], "tags": []}, **AROUND_NOW))


# covering_window reads the table


@freeze_time(NOW)
def test_covering_window_finds_the_oldest_active_window_in_force(any_db):
    # Given an inactive window, a finished one, one for other hosts, and two that cover web-01
    MaintenanceWindow.create(name="off", scope={}, active=False, starts_at=NOW - HOUR, ends_at=NOW + HOUR)
    MaintenanceWindow.create(name="over", scope={}, starts_at=NOW - 2 * HOUR, ends_at=NOW - HOUR)
    MaintenanceWindow.create(name="db", scope={"hosts": ["db-*"]}, starts_at=NOW - HOUR, ends_at=NOW + HOUR)
    web = MaintenanceWindow.create(name="web", scope={"hosts": ["web-*"]}, schedule={"days": ["tue"]})
    MaintenanceWindow.create(name="all", scope={}, starts_at=NOW - HOUR, ends_at=NOW + HOUR)
    # Then web-01 is covered by the oldest of the two, db-01 by "db", and nothing once they are over
    assert covering_window(at=NOW, host="web-01", service=None, tags=()).id == web.id
    assert covering_window(at=NOW, host="db-01", service=None, tags=()).name == "db"
    assert covering_window(at=NOW + 24 * HOUR, host="web-01", service=None, tags=()) is None


# The API


@pytest.fixture
def client(any_db, stub_broker):
    app = create_app(Deps(publisher=DirectPublisher(stub_broker)))
    keys = {role: create_key(role=role, name=f"{role} key") for role in ("operator", "viewer")}
    yield testing.TestClient(app), keys


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def audit_of(window_id: int) -> list[AuditLog]:
    subject = f"maintenance_window:{window_id}"
    return list(AuditLog.select().where(AuditLog.subject == subject).order_by(AuditLog.id))


def test_maintenance_windows_are_managed_through_the_api(client):
    api, keys = client
    body = {"name": "patch tuesday", "scope": {"hosts": ["web-*"]},
            "starts_at": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
            "ends_at": (datetime.now(UTC) + HOUR).isoformat()}  # fmt: skip
    # Created by an operator
    created = api.simulate_post("/api/v1/maintenance", json=body, headers=auth(keys["operator"]))
    assert created.status_code == 201, created.text
    window_id = created.json["id"]
    assert created.json["active_now"] is True and created.json["scope"]["hosts"] == ["web-*"]
    assert created.json["created_by"] and created.json["created_by"] == audit_of(window_id)[0].actor
    # It blocks remediation on web-01 now
    assert covering_window(at=datetime.now(UTC), host="web-01", service=None, tags=()).id == window_id
    # Read by a viewer, alone and in lists filtered by host and time
    one = api.simulate_get(f"/api/v1/maintenance/{window_id}", headers=auth(keys["viewer"]))
    assert one.status_code == 200 and one.json == created.json
    listed = api.simulate_get("/api/v1/maintenance?active_now=true&host=web-02", headers=auth(keys["viewer"]))
    assert [w["id"] for w in listed.json["windows"]] == [window_id] and listed.json["total_count"] == 1
    assert api.simulate_get("/api/v1/maintenance?host=db-01", headers=auth(keys["viewer"])).json["windows"] == []
    # Moved to the future: no longer active now
    moved = api.simulate_put(f"/api/v1/maintenance/{window_id}", headers=auth(keys["operator"]),
                             json={**body, "starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-01-01T02:00:00Z"})  # fmt: skip
    assert moved.status_code == 200, moved.text
    assert moved.json["active_now"] is False and moved.json["starts_at"] == "2030-01-01T00:00:00Z"
    now_only = api.simulate_get("/api/v1/maintenance?active_now=true", headers=auth(keys["viewer"]))
    assert now_only.json["windows"] == []
    # Deleted
    deleted = api.simulate_delete(f"/api/v1/maintenance/{window_id}", headers=auth(keys["operator"]))
    assert deleted.status_code == 200
    assert api.simulate_get(f"/api/v1/maintenance/{window_id}", headers=auth(keys["viewer"])).status_code == 404
    assert MaintenanceWindow.get_or_none(MaintenanceWindow.id == window_id) is None
    # Each write audited with what the window was and became
    created_row, updated_row, deleted_row = audit_of(window_id)
    assert [a.action for a in audit_of(window_id)] == [
        "maintenance_window.created",
        "maintenance_window.updated",
        "maintenance_window.deleted",
    ]
    assert created_row.details["after"]["name"] == "patch tuesday"
    assert updated_row.details["before"]["starts_at"] == created.json["starts_at"]
    assert updated_row.details["after"]["starts_at"] == "2030-01-01T00:00:00Z"
    assert deleted_row.details["before"]["scope"]["hosts"] == ["web-*"]


def test_a_window_is_shown_with_every_field_and_utc_timestamps(client):
    api, keys = client
    body = {"name": "db upgrade", "description": "v16", "scope": {"services": ["postgres"]},
            "starts_at": "2030-01-01T01:00:00+01:00", "ends_at": "2030-01-01T03:00:00+01:00"}  # fmt: skip
    shown = api.simulate_post("/api/v1/maintenance", json=body, headers=auth(keys["operator"])).json
    assert set(shown) == {"id", "name", "description", "scope", "starts_at", "ends_at", "schedule", "active",
                          "active_now", "created_by", "created_at", "suppress_notifications"}  # fmt: skip
    assert shown["scope"] == {"hosts": [], "services": ["postgres"], "tags": []}
    assert (shown["starts_at"], shown["ends_at"]) == ("2030-01-01T00:00:00Z", "2030-01-01T02:00:00Z")
    assert shown["created_at"].endswith("Z") and shown["schedule"] is None and shown["active"] is True


def test_writes_need_an_operator_and_reads_a_key(client):
    api, keys = client
    body = {"name": "x", "schedule": {"days": ["sun"]}}
    assert api.simulate_post("/api/v1/maintenance", json=body).status_code == 401
    assert api.simulate_get("/api/v1/maintenance").status_code == 401
    assert api.simulate_post("/api/v1/maintenance", json=body, headers=auth(keys["viewer"])).status_code == 403
    window_id = api.simulate_post("/api/v1/maintenance", json=body, headers=auth(keys["operator"])).json["id"]
    viewer = auth(keys["viewer"])
    assert api.simulate_put(f"/api/v1/maintenance/{window_id}", json=body, headers=viewer).status_code == 403
    assert api.simulate_delete(f"/api/v1/maintenance/{window_id}", headers=viewer).status_code == 403
    assert [a.action for a in audit_of(window_id)] == ["maintenance_window.created"]


@pytest.mark.parametrize(("body", "field"), [
    ({"scope": {}}, "name"),
    ({"name": "x" * 201, "schedule": {}}, "name"),
    ({"name": "x", "description": {"a": 1}, "schedule": {}}, "description"),
    ({"name": "x"}, "starts_at"),
    ({"name": "x", "starts_at": "2030-01-01T00:00:00Z"}, "ends_at"),
    ({"name": "x", "ends_at": "2030-01-01T00:00:00Z"}, "starts_at"),
    ({"name": "x", "starts_at": "2030-01-01T02:00:00Z", "ends_at": "2030-01-01T01:00:00Z"}, "ends_at"),
    ({"name": "x", "starts_at": "yesterday", "ends_at": "2030-01-01T01:00:00Z"}, "starts_at"),
    ({"name": "x", "scope": {"hosts": "web-01"}, "schedule": {"days": ["tue"]}}, "scope.hosts"),
    ({"name": "x", "scope": {"tags": [7]}, "schedule": {"days": ["tue"]}}, "scope.tags"),
    ({"name": "x", "scope": {"racks": ["r1"]}, "schedule": {"days": ["tue"]}}, "scope"),
    ({"name": "x", "schedule": {"days": ["someday"]}}, "schedule.days"),
    ({"name": "x", "schedule": {"start": "25:00"}}, "schedule.start"),
    ({"name": "x", "schedule": {"timezone": "Mars/Olympus"}}, "schedule.timezone"),
    ({"name": "x", "schedule": {"timezone": 5}}, "schedule.timezone"),
    ({"name": "x", "schedule": {}, "active": "yes"}, "active"),
])  # fmt: skip
def test_a_bad_window_is_refused_naming_the_field(client, body, field):
    api, keys = client
    reply = api.simulate_post("/api/v1/maintenance", json=body, headers=auth(keys["operator"]))
    assert reply.status_code == 400, reply.text
    assert reply.json["field"] == field
    assert MaintenanceWindow.select().count() == 0


def test_an_unknown_window_is_not_found(client):
    api, keys = client
    body = {"name": "x", "schedule": {}}
    assert api.simulate_get("/api/v1/maintenance/999", headers=auth(keys["viewer"])).status_code == 404
    assert api.simulate_put("/api/v1/maintenance/999", json=body, headers=auth(keys["operator"])).status_code == 404
    assert api.simulate_delete("/api/v1/maintenance/999", headers=auth(keys["operator"])).status_code == 404


@freeze_time("2026-11-24 03:30:00")
def test_a_recurring_window_is_active_now_only_inside_its_hours(client):
    api, keys = client
    nightly = {"name": "nightly", "schedule": {"days": ["tue"], "start": "03:00", "end": "04:00", "timezone": "UTC"}}
    later = {"name": "later", "schedule": {"days": ["tue"], "start": "05:00", "end": "06:00", "timezone": "UTC"}}
    assert api.simulate_post("/api/v1/maintenance", json=nightly, headers=auth(keys["operator"])).json["active_now"]
    assert not api.simulate_post("/api/v1/maintenance", json=later, headers=auth(keys["operator"])).json["active_now"]
    listed = api.simulate_get("/api/v1/maintenance?active_now=true", headers=auth(keys["viewer"])).json
    assert [w["name"] for w in listed["windows"]] == ["nightly"]
