"""A new user's first look: ``make run``'s command, then the README's curl command, then the console.

Embedded mode (SQLite, in-process broker), where the console's queries take their SQLite paths.
"""

from __future__ import annotations

import re
import socket

from playwright.sync_api import expect

from tests.http import request
from tests.processes import BIN, Process, free_port, wait_for, wait_http


def test_after_make_run_the_first_page_is_the_console_showing_what_the_readme_curl_sent(tmp_path, browser, shot):
    # Given `opsconductor run` (what `make run` starts) in an empty directory, and the URL and key it prints
    port = free_port()
    env = {"PORT": str(port), "SYSLOG_UDP_PORT": str(free_port(socket.SOCK_DGRAM)),
           "SYSLOG_TCP_PORT": str(free_port()), "SNMP_TRAP_PORT": str(free_port(socket.SOCK_DGRAM))}  # fmt: skip
    app = Process("all-in-one", [str(BIN / "opsconductor"), "run"], env, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/healthz", process=app)
        key = wait_for(lambda: re.search(r"Admin key:\s+(oc_\S+)", app.output()), message="the banner").group(1)
        console = re.search(r"Console:\s+(\S+)", app.output()).group(1)  # type: ignore[union-attr]
        assert console == f"{base}/console"
        # And the README's first curl command
        readme = {"source": "nagios", "severity": "critical", "host": "web-01", "service": "nginx",
                  "title": "CPU usage exceeded 95%", "metadata": {"cpu_usage": 97.5}}  # fmt: skip
        assert request("POST", f"{base}/api/v1/events/webhook", key=key, json=readme).status == 202

        # When the user opens the server's address and signs in with the printed key
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto(base + "/")
        expect(page).to_have_url(re.compile(r".*/console/login.*"))
        shot(page, "sign-in")
        page.get_by_label("API key").fill(key)
        page.get_by_role("button", name="Sign in").click()

        # Then the incidents page shows the event's incident, and the host filter finds it (SQLite's path)
        page.wait_for_url(re.compile(r".*/console/incidents"))
        link = page.get_by_role("link", name="CPU usage exceeded 95%")
        expect(link).to_be_visible(timeout=20_000)
        shot(page, "incidents")
        page.goto(f"{base}/console/incidents?host=web-01")
        expect(page.get_by_role("link", name="CPU usage exceeded 95%")).to_be_visible()
        page.goto(f"{base}/console/incidents?host=web-0")
        expect(page.get_by_role("link", name="CPU usage exceeded 95%")).to_have_count(0)

        # And the user can acknowledge it there
        page.goto(f"{base}/console/incidents?host=web-01")
        page.get_by_role("link", name="CPU usage exceeded 95%").click()
        page.get_by_role("button", name="Acknowledge").click()
        expect(page.locator("#incident-status")).to_have_text("acknowledged")
        shot(page, "acknowledged")
        context.close()
    finally:
        app.stop()
    assert "Traceback" not in app.output()
