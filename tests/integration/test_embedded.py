"""``make run``'s command on a fresh directory: SQLite, in-process broker, workers in the same process."""

from __future__ import annotations

import re

from tests.http import request
from tests.processes import BIN, Process, free_port, wait_for, wait_http


def test_the_all_in_one_mode_accepts_an_event_and_shows_it_normalized(tmp_path):
    # Given `opsconductor run` started in an empty directory with nothing but a port
    port = free_port()
    app = Process("all-in-one", [str(BIN / "opsconductor"), "run"], {"PORT": str(port)}, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/healthz", process=app)
        banner = wait_for(lambda: re.search(r"Admin key:\s+(oc_\S+)", app.output()), message="the banner")
        key = banner.group(1)
        assert f"http://127.0.0.1:{port}" in app.output()
        # When an event is posted with the printed key
        reply = request("POST", f"{base}/api/v1/events/webhook", key=key,
                        json={"source": "curl", "severity": "high", "host": "web-01", "title": "CPU high"})  # fmt: skip
        assert reply.status == 202, reply.body
        event_id = reply.json()["event_id"]
        # Then it is listed, normalized
        page = wait_for(
            lambda: (p := request("GET", f"{base}/api/v1/events", key=key).json())["total_count"] and p,
            message="the event listed",
        )
    finally:
        app.stop()
    assert page["events"][0]["id"] == event_id
    assert (page["events"][0]["severity"], page["events"][0]["host"]) == ("high", "web-01")
    # And the embedded database is a SQLite file under ./var, and the key is kept for the next run
    assert (tmp_path / "var" / "opsconductor.db").exists()
    assert (tmp_path / "var" / "admin.key").read_text().strip() == key
    assert "Traceback" not in app.output()
