"""Events cannot steer actions: URL-encoded values, literal hosts, allowed targets, SMTP credentials under TLS only.

Real targets throughout: a local HTTP server that records the path it received, and an SMTP server
(aiosmtpd) that records every login attempt.
"""

from __future__ import annotations

import ipaddress
import ssl
import time

import pytest

from app import actions
from app.actions.targets import TargetPolicy
from app.config import ConfigError, Settings, load_settings
from app.errors import ActionNotAllowed, InvalidRule
from app.rules.playbooks import parse_playbook
from tests.processes import free_port
from tests.targets import http_target, self_signed_tls, smtp_sink

#: The issue's event: its host climbs out of the path, adds a query and cuts the rest off.
CLIMBING_HOST = "../../admin/delete-all?confirm=yes#"


def context(**event: object) -> dict:
    return {"event": {"host": "web-01", **event}, "variables": {}, "steps": {}}


def http(url: str, method: str = "POST", **extra: object) -> dict:
    return {"id": "restart", "type": "http", "http": {"method": method, "url": url, **extra}}


def run(action: dict, ctx: dict, settings: Settings | None = None) -> actions.Outcome:
    return actions.perform(actions.plan(action, ctx), settings=settings or Settings(), timeout_s=5)


# rendering


def test_an_event_host_that_climbs_the_path_stays_one_percent_encoded_segment():
    with http_target() as target:
        # Given the README's restart action with a bearer token, and an event whose host climbs out of the path
        action = http(f"{target.url}/restart/{{{{ event.host }}}}", headers={"Authorization": "Bearer s3cret"})
        # When it runs
        outcome = run(action, context(host=CLIMBING_HOST))
        # Then the server got the restart path with the host as one encoded segment, not /admin/delete-all
        assert outcome.success, outcome.error
        [arrived] = target.requests
    assert arrived["path"] == "/restart/..%2F..%2Fadmin%2Fdelete-all%3Fconfirm%3Dyes%23"
    assert not arrived["path"].startswith("/admin")


def test_an_event_value_in_a_query_cannot_add_parameters_or_cut_the_url():
    with http_target() as target:
        # Given a query value taken from the event, followed by a literal parameter
        action = http(f"{target.url}/check?host={{{{ event.host }}}}&dry_run=1", method="GET")
        # When the event's host holds & = # % and a space
        outcome = run(action, context(host="x&dry_run=0#% y"))
        # Then it arrived as one value, and the template's parameter is intact
        assert outcome.success, outcome.error
        [arrived] = target.requests
    assert arrived["path"] == "/check?host=x%26dry_run%3D0%23%25%20y&dry_run=1"


@pytest.mark.parametrize("host", ["..", "."])
def test_an_event_value_that_is_a_dot_segment_is_refused(host):
    # Given a path segment taken whole from the event / When the event's host is . or ..
    # Then the plan is refused (a server would resolve it to the parent path)
    with pytest.raises(InvalidRule, match="segment"):
        actions.plan(http("https://automation.invalid/restart/{{ event.host }}"), context(host=host))


@pytest.mark.parametrize(
    "url",
    [
        "{{ event.metadata.callback }}",
        "{{ base_url }}/restart",
        "https://{{ event.host }}/restart",
        "https://{{ event.host }}.automation.invalid/restart",
        "https://automation.invalid:{{ event.port }}/restart",
        "http{{ s }}://automation.invalid/",
    ],
)
def test_a_url_whose_scheme_host_or_port_is_a_template_is_refused_on_write_naming_the_field(url):
    # Given a template whose URL takes its scheme, host or port from a value
    body = {"name": "restart", "variables": [{"name": "base_url"}, {"name": "s"}], "actions": [http(url)]}
    # When it is written / Then it is refused, naming the url field
    with pytest.raises(InvalidRule) as refused:
        parse_playbook(body)
    assert refused.value.field == "actions[0].http.url"


def test_a_notification_webhook_url_taken_from_the_event_is_refused_on_write():
    body = {"name": "tell", "actions": [{"id": "a", "type": "notify",
                                         "notify": {"channel": "slack", "url": "{{ event.host }}", "message": "m"}}]}  # fmt: skip
    with pytest.raises(InvalidRule) as refused:
        parse_playbook(body)
    assert refused.value.field == "actions[0].notify.url"


def test_a_stored_template_whose_url_comes_from_the_event_is_refused_when_it_runs():
    # Given a template stored before write-time checks existed (its url is wholly the event's)
    action = http("{{ event.host }}")
    # When it is planned / Then it is refused before anything is sent
    with pytest.raises(InvalidRule) as refused:
        actions.plan(action, context(host="https://attacker.invalid/steal"))
    assert refused.value.field == "restart.http.url"


def test_the_user_part_of_a_url_may_carry_a_secret_but_the_host_stays_the_templates():
    # Given a URL whose password is a secret
    action = http("https://bot:{{ secret.PW }}@automation.invalid/restart/{{ event.host }}")
    # When it is planned with a value that tries to end the user part early
    planned = actions.plan(action, context(), secrets={"PW": "p@ss/word#x"})
    # Then the value is encoded and the host is the template's; the displayed plan masks the password
    assert planned["url"] == "https://bot:p%40ss%2Fword%23x@automation.invalid/restart/web-01"
    assert actions.plan(action, context())["url"] == "https://bot:***@automation.invalid/restart/web-01"


@pytest.mark.parametrize("value", ["web-01\r\nX-Admin: true", "web-01\nX: y", "web-01\x00", "web\x1b[31m"])
def test_an_event_value_with_a_control_character_cannot_enter_a_header(value):
    action = http("https://automation.invalid/", headers={"X-Host": "{{ event.host }}"})
    with pytest.raises(InvalidRule, match="control character|line break") as refused:
        actions.plan(action, context(host=value))
    assert refused.value.field == "http.headers.X-Host"


def test_a_header_name_must_be_a_token():
    with pytest.raises(InvalidRule) as refused:
        actions.validate_action(http("https://a.invalid/", headers={"X-A\r\nB": "v"}), where="actions[0]")
    assert refused.value.field == "actions[0].http.headers"


# the allow-list of targets


@pytest.mark.parametrize(
    "host",
    ["169.254.169.254", "169.254.10.1", "[fe80::1]", "[fd00:ec2::254]", "100.100.100.200", "[::ffff:169.254.169.254]",
     "metadata.google.internal"],
)  # fmt: skip
def test_link_local_and_cloud_metadata_targets_are_not_allowed(host):
    # Given an http action aimed at a metadata service or a link-local address, and no allow-list
    action = http(f"http://{host}/latest/meta-data/iam/", method="GET")
    # When it runs / Then it is refused before any connection
    with pytest.raises(ActionNotAllowed, match="HTTP_ACTION_ALLOW"):
        run(action, context())


def test_a_name_that_resolves_to_the_metadata_address_is_refused():
    # Given a policy that allows any host, and a name whose DNS answer is the metadata address
    def dns(name: str, port: int) -> list[str]:
        return {"innocent.example": ["203.0.113.7", "169.254.169.254"]}[name]

    # When it is checked / Then the resolved address decides
    with pytest.raises(ActionNotAllowed, match="169.254.169.254"):
        TargetPolicy().check("innocent.example", 80, resolver=dns)


def test_metadata_is_allowed_only_when_listed_explicitly():
    metadata = ipaddress.ip_address("169.254.169.254")
    assert TargetPolicy.parse(["169.254.169.254"]).check(str(metadata), 80) == ["169.254.169.254"]
    assert TargetPolicy.parse(["169.254.0.0/16"]).check("169.254.1.2", 80) == ["169.254.1.2"]
    with pytest.raises(ActionNotAllowed):
        TargetPolicy.parse(["0.0.0.0/0"]).check(str(metadata), 80)
    with pytest.raises(ActionNotAllowed):
        TargetPolicy.parse(["*.internal"]).check("metadata.google.internal", 80)


def test_an_allow_list_refuses_every_other_host_and_lets_listed_ones_through():
    with http_target() as target:
        port = target.url.rsplit(":", 1)[1]
        action = http(f"http://localhost:{port}/restart/{{{{ event.host }}}}")
        # Given an allow-list that does not name the target
        with pytest.raises(ActionNotAllowed, match="not in HTTP_ACTION_ALLOW"):
            run(action, context(), Settings(http_action_allow=("automation.internal", "10.0.0.0/8")))
        assert target.requests == []
        # When the list names the network localhost resolves to, or the name itself, or a pattern
        for allow in (("127.0.0.0/8",), ("localhost",), ("*.example.com", "LOCALHOST")):
            outcome = run(action, context(), Settings(http_action_allow=allow))
            assert outcome.success, (allow, outcome.error)
        # Then those went through, to the checked address, with the name in Host
        arrived = target.wait_for(3)
    assert [r["path"] for r in arrived] == ["/restart/web-01"] * 3
    assert {r["headers"]["Host"] for r in arrived} == {f"localhost:{port}"}


def test_a_suffix_pattern_matches_subdomains_only():
    policy = TargetPolicy.parse(["*.automation.internal"])
    with pytest.raises(ActionNotAllowed):
        policy.check("evilautomation.internal", 80, resolver=lambda name, port: ["10.1.1.1"])
    assert policy.check("a.automation.internal", 80, resolver=lambda name, port: ["10.1.1.1"]) == ["10.1.1.1"]


def test_http_action_allow_is_read_from_the_environment_and_checked():
    settings = load_settings({"HTTP_ACTION_ALLOW": "automation.internal, *.ops.example.com,10.0.0.0/8, 192.0.2.7"})
    assert settings.http_action_allow == ("automation.internal", "*.ops.example.com", "10.0.0.0/8", "192.0.2.7")
    assert load_settings({}).http_action_allow == ()
    with pytest.raises(ConfigError, match="HTTP_ACTION_ALLOW"):
        load_settings({"HTTP_ACTION_ALLOW": "http://automation.internal/"})


def test_a_notification_webhook_at_the_metadata_address_fails_without_a_request():
    action = {"id": "a", "type": "notify", "notify": {"channel": "webhook", "url": "http://169.254.169.254/x",
                                                      "message": "m"}}  # fmt: skip
    outcome = run(action, context())
    assert not outcome.success and "not allowed" in outcome.error and "169.254.169.254" in outcome.error


# SMTP credentials


def test_smtp_credentials_are_not_sent_when_the_server_does_not_offer_starttls():
    # Given an SMTP server that takes AUTH in clear and offers no STARTTLS (as when a man in the middle strips it)
    with smtp_sink(credentials=("bot", "hunter2")) as sink:
        settings = Settings(smtp_url=sink.url, notify_email_to=("oncall@example.com",))
        started = time.monotonic()
        # When an email action runs with credentials in SMTP_URL
        with pytest.raises(ActionNotAllowed, match="does not offer STARTTLS") as refused:
            run({"id": "a", "type": "notify", "notify": {"channel": "email", "message": "m"}}, context(), settings)
        # Then no login was attempted and nothing was sent
        time.sleep(0.2)
        assert sink.logins == [] and sink.messages == []
    assert "hunter2" not in str(refused.value) and time.monotonic() - started < 5


def test_smtp_credentials_go_only_after_starttls(tmp_path, monkeypatch):
    cert, key = self_signed_tls(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", cert)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    with smtp_sink(credentials=("bot", "hunter2"), starttls=server_tls) as sink:
        settings = Settings(smtp_url=sink.url, notify_email_to=("oncall@example.com",))
        outcome = run(
            {"id": "a", "type": "notify", "notify": {"channel": "email", "message": "m"}}, context(), settings
        )
        assert outcome.success, outcome.error
        sink.wait_for(1, 5)
    assert sink.logins == [{"login": "bot", "tls": True}]


def test_an_smtps_server_that_is_not_listening_is_a_failed_outcome():
    settings = Settings(smtp_url=f"smtps://bot:pw@127.0.0.1:{free_port()}", notify_email_to=("oncall@example.com",))
    outcome = run({"id": "a", "type": "notify", "notify": {"channel": "email", "message": "m"}}, context(), settings)
    assert not outcome.success and "Connection refused" in outcome.error
