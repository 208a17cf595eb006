"""A flapping link whose repeats de-duplication folds (issue #13): its incident reopens, is marked flapping and says so.

The normalizer folds a linkDown (or linkUp) repeated within its window into the stored one and
hands that event's id on again; these tests store the traps as it does (:func:`store_batch`, the
default 300 s window) and correlate each batch, on both databases (PostgreSQL decides under the lock).
"""

from __future__ import annotations

import pytest

from app.correlation import store as correlation_store
from app.correlation.grouping import GroupingSettings
from app.correlation.store import correlate_batch
from app.events.store import store_batch
from app.incidents.timeline import timeline
from app.models import Incident, IncidentActivity, ProcessedEvent
from tests.correlation_items import LINK_DOWN, LINK_UP
from tests.correlation_items import trap as switch_trap

SWITCH = "10.0.0.7"
CFG = GroupingSettings(flap_changes=3)


@pytest.fixture(autouse=True)
def fresh_topology():
    correlation_store._topology = None
    yield
    correlation_store._topology = None


def deliver(item: dict) -> list[str]:
    """Store one trap as the normalizer does and correlate the event ids it hands on; returns them."""
    ids = store_batch([item], window_s=300).event_ids
    correlate_batch(ids, cfg=CFG)
    return ids


def flap(cycles: int, *, redeliver: bool = False) -> Incident:
    """The switch's interface 3 goes down and up ``cycles`` times, a minute apart; returns its incident."""
    for k in range(cycles):
        for oid, t in ((LINK_DOWN, k * 120), (LINK_UP, k * 120 + 60)):
            ids = deliver(switch_trap(SWITCH, oid, t, if_index=3))
            if redeliver:
                correlate_batch(ids, cfg=CFG)  # the same message again (a redelivery): no flap counted twice
    assert ProcessedEvent.select().count() == 2  # every repeat was folded into the first linkDown and linkUp
    (incident,) = Incident.select()
    return incident


def test_a_link_that_keeps_flapping_within_the_dedup_window_marks_its_incident_flapping(any_db):
    incident = flap(4)
    down = ProcessedEvent.get(ProcessedEvent.event_type != "connectivity_restored")
    assert down.occurrences == 4 and str(down.correlation_id) == str(incident.id)
    # Its cause returned three times after its linkUp closed it: the third return marks it flapping,
    # and the linkUps after that leave it flapping (until an operator resolves it or it stays quiet).
    assert incident.status == "flapping" and incident.closed_at is None
    up = ProcessedEvent.get(ProcessedEvent.event_type == "connectivity_restored")
    assert incident.last_event_at == up.last_seen_at  # the link's last message still finds it
    returns = IncidentActivity.select().where(IncidentActivity.incident_id == incident.id).order_by(IncidentActivity.at)
    assert [(a.from_status, a.to_status, a.details["returns"]) for a in returns] == [
        ("closed", "open", 1), ("closed", "open", 2), ("closed", "flapping", 3)
    ]  # fmt: skip
    summaries = [e["summary"] for e in timeline(str(incident.id))["entries"] if e["kind"] == "status"]
    assert any(s.startswith("Flapping: ") and s.endswith("(3 times in 30 minutes): flapping") for s in summaries)


def test_a_link_that_went_down_twice_reopens_and_ends_closed_by_its_last_link_up(any_db):
    incident = flap(2)
    up = ProcessedEvent.get(ProcessedEvent.event_type == "connectivity_restored")
    assert incident.status == "closed" and str(incident.closed_by_event_id) == str(up.id)
    assert incident.closed_at == up.last_seen_at  # closed by the linkUp's last occurrence, not its first
    (reopened,) = IncidentActivity.select().where(IncidentActivity.incident_id == incident.id)
    assert (reopened.from_status, reopened.to_status) == ("closed", "open")


def test_redelivered_folded_events_count_no_flap_twice(any_db):
    incident = flap(3, redeliver=True)
    # Two returns of its cause, each counted once: not yet flapping, closed by the last linkUp.
    assert incident.status == "closed"
    returns = IncidentActivity.select().where(IncidentActivity.incident_id == incident.id)
    assert sorted(a.details["returns"] for a in returns) == [1, 2]
    # Delivering every event again, after the fact, changes nothing either.
    correlate_batch([str(e.id) for e in ProcessedEvent.select()], cfg=CFG)
    assert Incident.get_by_id(incident.id).status == "closed" and returns.count() == 2
