"""The health page in a real chromium: a real syslog receiver's counters, its drops highlighted, a stale process."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest

from app.receivers.counters import Identity, save
from app.timeutil import now
from tests.integration.test_receiver_counters import refuse_one_connection, row_of, start_syslog
from tests.processes import wait_for


@pytest.fixture
def capped_receiver(stack, tmp_path):
    proc, tcp_port = start_syslog(stack.env, str(tmp_path / "spool"), SYSLOG_MAX_CONNECTIONS="1")
    yield proc, tcp_port
    proc.stop()


def test_health_lists_a_receivers_refused_connection_as_a_drop_and_a_silent_process_as_stale(
    page, shot, db, capped_receiver
):
    proc, tcp_port = capped_receiver
    # Given a syslog receiver that refused a connection over its cap and reported it
    refuse_one_connection(db, tcp_port)
    wait_for(lambda: (row := row_of(proc)) and row.counters["syslog"]["connections_refused"] == 1,
             message="the refusal reported")  # fmt: skip
    # And a receiver process that last reported ten minutes ago
    ten_minutes_ago = now() - timedelta(minutes=10)
    silent = Identity(kind="snmptrap", hostname="gone-host", pid=4242, started_at=ten_minutes_ago - timedelta(hours=1))
    save(silent, {"outbox": {"received": 7, "dropped_full": 0}}, interval_s=15, at=ten_minutes_ago)

    # When an operator opens the health page
    page.goto("/console/health")

    # Then the live receiver's row shows its refused connection as a highlighted drop
    live = page.locator(f'#receivers tr[data-receiver="syslog/{socket.gethostname()}/{proc.proc.pid}"]')
    assert live.get_attribute("data-state") == "live"
    assert live.locator("td[data-dropped]").get_attribute("data-dropped") == "1"
    assert live.locator("td[data-dropped] b.st-failed").inner_text() == "1"
    assert "connection cap 1" in live.locator("td[data-dropped]").inner_text()
    # And the silent one is marked stale and left out of the totals
    stale = page.locator('#receivers tr[data-receiver="snmptrap/gone-host/4242"]')
    assert stale.get_attribute("data-state") == "stale" and "stale" in stale.inner_text()
    assert page.locator('#receiver-totals [data-drop="connection_cap"] b').inner_text() == "1"
    assert int(page.locator('#receiver-totals [data-total="accepted"] b').inner_text()) >= 1
    assert shot(page, "receivers").stat().st_size > 0
