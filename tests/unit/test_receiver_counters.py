"""Receivers' counters in the database: one row per process, stale after three missed reports, forgotten after a day,
and a report that never raises when the database is away."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from falcon import testing
from freezegun import freeze_time

from app.db import init_database
from app.http.app import Deps, create_app
from app.models import ReceiverStat
from app.publishing import DirectPublisher
from app.receivers.counters import Identity, drops, read, save, totals
from app.receivers.reporter import Reporter

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def syslog_counters(*, received: int, full: int = 0, oversize: int = 0, refused: int = 0) -> dict:
    return {
        "outbox": {"received": received, "published": received - full, "spooled": 0, "replayed": 0,
                   "dropped_full": full},
        "syslog": {"udp_datagrams": received, "oversize": oversize, "connections": 0, "connections_refused": refused,
                   "framing_errors": 0, "tls_handshake_failures": 0},
    }  # fmt: skip


def identity(pid: int, *, kind: str = "syslog", started_at: datetime = T0) -> Identity:
    return Identity(kind=kind, hostname="rx-1", pid=pid, started_at=started_at)


def test_drops_are_named_by_reason_whatever_component_counted_them():
    # Given a syslog process's counters with a full buffer, cut frames and a refused connection
    counters = syslog_counters(received=10, full=3, oversize=2, refused=1)

    # When its drops are read
    found = drops(counters)

    # Then each counts under its reason, and reasons the process has but never hit are there at 0
    assert found == {"buffer_full": 3, "oversize": 2, "connection_cap": 1, "framing_error": 0, "tls_handshake": 0}


def test_each_report_of_a_process_replaces_its_row(any_db):
    # Given a process that reported once
    save(identity(41), syslog_counters(received=5), interval_s=15, at=T0)

    # When it reports again with higher counters
    save(identity(41), syslog_counters(received=9, oversize=1), interval_s=15, at=T0 + timedelta(seconds=15))

    # Then there is still one row, holding the latest counters and time
    assert ReceiverStat.select().count() == 1
    [report] = read(at=T0 + timedelta(seconds=20))
    assert (report.kind, report.hostname, report.pid, report.accepted) == ("syslog", "rx-1", 41, 9)
    assert report.drops["oversize"] == 1 and report.updated_at == T0 + timedelta(seconds=15)
    assert report.age_s == 5 and not report.stale


def test_a_restarted_process_with_the_same_pid_gets_a_row_of_its_own(any_db):
    # Given a process that reported, then a new one with the same pid (reused by the kernel) started later
    save(identity(7), syslog_counters(received=5), interval_s=15, at=T0)
    save(identity(7, started_at=T0 + timedelta(minutes=5)), syslog_counters(received=1), interval_s=15,
         at=T0 + timedelta(minutes=5))  # fmt: skip

    # Then both are listed: the old one stale, the new one live
    reports = read(at=T0 + timedelta(minutes=5))
    assert [(r.pid, r.accepted, r.stale) for r in reports] == [(7, 5, True), (7, 1, False)]


def test_a_process_silent_for_three_intervals_is_stale_and_left_out_of_the_totals(any_db):
    # Given two syslog processes reporting every 15 s, one of which stopped reporting at T0
    save(identity(1), syslog_counters(received=100, full=4), interval_s=15, at=T0)
    save(identity(2), syslog_counters(received=50, oversize=2), interval_s=15, at=T0 + timedelta(seconds=40))

    # When read 46 s after the first's last report (more than 3 x 15 s)
    reports = read(at=T0 + timedelta(seconds=46))

    # Then the first is stale, the second live, and the totals are the live one's
    assert [(r.pid, r.stale) for r in reports] == [(1, True), (2, False)]
    total = totals(reports)
    assert (total.processes, total.accepted, total.dropped, total.drops["oversize"]) == (1, 50, 2, 2)
    assert total.drops["buffer_full"] == 0


def test_rows_not_updated_for_a_day_are_deleted_by_the_next_report_of_any_process(any_db):
    # Given a process that last reported a day and a second ago, and one that reported an hour ago
    save(identity(1), syslog_counters(received=1), interval_s=15, at=T0)
    save(identity(2), syslog_counters(received=2), interval_s=15, at=T0 + timedelta(hours=23, seconds=1))

    # When a third process reports a day and a second after the first one's last report
    forgotten = save(identity(3, kind="snmptrap"), {"outbox": {"received": 0}}, interval_s=15,
                     at=T0 + timedelta(days=1, seconds=1))  # fmt: skip

    # Then the first one's row is gone, the others stay
    assert forgotten == 1
    assert sorted(r.pid for r in read(at=T0 + timedelta(days=1, seconds=1))) == [2, 3]


def test_the_reporter_writes_the_counters_of_its_process_as_they_are_at_each_report(any_db):
    # Given a reporter over counters that change between reports
    live = syslog_counters(received=3)
    with freeze_time(T0) as clock:
        reporter = Reporter(kind="syslog", snapshot=lambda: live, interval_s=15)

        # When it reports, the counters change, and it reports again 15 s later
        assert reporter.report() is True
        live = syslog_counters(received=8, full=2)
        clock.tick(15)
        assert reporter.report() is True

    # Then the one row holds the second report, the process's own pid and its start
    [report] = read(at=T0 + timedelta(seconds=15))
    assert report.accepted == 8 and report.drops["buffer_full"] == 2
    assert report.pid == reporter.identity.pid and report.started_at == T0


def test_a_report_without_a_database_returns_false_logs_once_and_the_next_one_after_recovery_writes(
    pg_db, pg_url, caplog
):
    # Given a reporter whose database refuses connections (nothing listens on port 1)
    reporter = Reporter(kind="syslog", snapshot=lambda: syslog_counters(received=1), interval_s=15)
    init_database(pg_url.rsplit("@", 1)[0] + "@127.0.0.1:1/nowhere", max_connections=1)
    try:
        # When it reports three times
        with caplog.at_level(logging.DEBUG, logger="app.receivers.reporter"):
            results = [reporter.report() for _ in range(3)]
    finally:
        init_database(pg_url, max_connections=4)

    # Then no report raised, each said it failed, and only the first failure was logged as a warning
    assert results == [False, False, False]
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "database is unavailable" in warnings[0].getMessage()

    # And when the database is back the next report writes the row and says reporting is back
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="app.receivers.reporter"):
        assert reporter.report() is True
    assert ReceiverStat.select().count() == 1
    assert any("reported to the database again" in r.getMessage() for r in caplog.records)


def test_metrics_export_each_live_processs_drops_by_reason_and_no_stale_counters(any_db, stub_broker):
    # Given a live syslog process with drops and a stale one
    at = datetime.now(UTC)
    save(identity(10), syslog_counters(received=20, full=3, refused=2), interval_s=15, at=at)
    save(identity(11), syslog_counters(received=99, oversize=9), interval_s=15, at=at - timedelta(minutes=5))

    # When /metrics is scraped
    api = testing.TestClient(create_app(Deps(publisher=DirectPublisher(stub_broker), broker=stub_broker)))
    text = api.simulate_get("/metrics").text

    # Then the live process's counters are there by reason, the stale one's only as a report age
    live = 'host="rx-1",kind="syslog",pid="10"'
    assert f'opsconductor_receiver_dropped_total{{{live},reason="buffer_full"}} 3.0' in text
    assert f'opsconductor_receiver_dropped_total{{{live},reason="connection_cap"}} 2.0' in text
    assert f"opsconductor_receiver_accepted_total{{{live}}} 20.0" in text
    assert (
        'pid="11",reason=' not in text
        and 'opsconductor_receiver_accepted_total{host="rx-1",kind="syslog",pid="11"}' not in text
    )
    assert 'opsconductor_receiver_report_age_seconds{host="rx-1",kind="syslog",pid="11",stale="true"}' in text
