"""What each channel receives for a notification's message (pure: no I/O).

- Slack incoming webhooks: ``{"text", "blocks"}`` (Block Kit; ``text`` is the fallback shown in
  notifications);
- Microsoft Teams through a Workflows webhook ("When a Teams webhook request is received"): the
  Adaptive Card envelope ``{"type": "message", "attachments": [{"contentType":
  "application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": {AdaptiveCard 1.4}}]}``;
  Workflows refuse the retired Office 365 connectors' MessageCard;
- PagerDuty Events API v2: ``{"routing_key", "event_action", "dedup_key", "payload": {summary,
  source, severity, custom_details}}``, one ``dedup_key`` per incident so that acknowledging and
  resolving here acknowledges and resolves there;
- a generic webhook: the notification as JSON;
- email: a subject and a plain-text body.
"""

from __future__ import annotations

from typing import Any

#: Our severities as PagerDuty's (critical, error, warning, info).
PAGERDUTY_SEVERITY = {"critical": "critical", "high": "error", "medium": "warning", "low": "info", "info": "info"}
#: PagerDuty's limit on a summary, in characters.
PAGERDUTY_SUMMARY_CHARS = 1024
#: Slack's limits: a section's text and a button's label, in characters.
SLACK_TEXT_CHARS = 3000
SLACK_BUTTON_CHARS = 75


def dedup_key(message: dict[str, Any]) -> str:
    """PagerDuty's dedup key: one per incident (``opsconductor-incident-<id>``), else per subject."""
    if message.get("incident_id"):
        return f"opsconductor-incident-{message['incident_id']}"
    return f"opsconductor-{message['subject'].replace(':', '-')}"[:255]


def _lines(message: dict[str, Any]) -> list[str]:
    facts = [f"{k}: {v}" for k, v in _facts(message)]
    links = [f"{link['label']}: {link['url']}" for link in message.get("links") or []]
    return [message["text"], "", *facts, *([""] + links if links else [])]


def _facts(message: dict[str, Any]) -> list[tuple[str, str]]:
    facts = [("Severity", message["severity"]), ("Trigger", message["trigger"])]
    if message.get("incident_id"):
        facts.append(("Incident", message["incident_id"]))
    facts += [(str(k), v if isinstance(v, str) else str(v)) for k, v in (message.get("details") or {}).items()]
    return facts


def email(message: dict[str, Any]) -> tuple[str, str]:
    """``(subject, body)``; the subject on one line (a title from an event must not end the header early)."""
    return " ".join(message["title"].split())[:250], "\n".join(_lines(message)) + "\n"


def slack(message: dict[str, Any]) -> dict[str, Any]:
    """A Slack incoming webhook's body."""
    fields = [{"type": "mrkdwn", "text": f"*{k}*\n{v}"[:2000]} for k, v in _facts(message)][:10]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": message["title"][:150] or "OpsConductor"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": message["text"][:SLACK_TEXT_CHARS] or "-"}},
        {"type": "section", "fields": fields},
    ]
    links = message.get("links") or []
    if links:
        blocks.append({"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": link["label"][:SLACK_BUTTON_CHARS]},
             "url": link["url"]} for link in links[:25]]})  # fmt: skip
    return {"text": f"{message['title']}\n{message['text']}"[:SLACK_TEXT_CHARS], "blocks": blocks}


def teams(message: dict[str, Any]) -> dict[str, Any]:
    """A Teams Workflows webhook's body: an Adaptive Card in a message envelope."""
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": message["title"], "weight": "Bolder", "size": "Medium", "wrap": True},
            {"type": "TextBlock", "text": message["text"], "wrap": True},
            {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in _facts(message)]},
        ],
        "actions": [{"type": "Action.OpenUrl", "title": link["label"], "url": link["url"]}
                    for link in message.get("links") or []],  # fmt: skip
    }
    return {
        "type": "message",
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}],
    }


def pagerduty(message: dict[str, Any], *, routing_key: str) -> dict[str, Any]:
    """A PagerDuty Events API v2 event; acknowledge and resolve carry only the key of what they follow."""
    body: dict[str, Any] = {"routing_key": routing_key, "event_action": message.get("event_action") or "trigger",
                            "dedup_key": dedup_key(message)}  # fmt: skip
    if body["event_action"] != "trigger":
        return body
    summary = message["title"] if not message["text"] else f"{message['title']}: {message['text'].splitlines()[0]}"
    body["payload"] = {
        "summary": summary[:PAGERDUTY_SUMMARY_CHARS],
        "source": message.get("source") or "opsconductor",
        "severity": PAGERDUTY_SEVERITY.get(message["severity"], "warning"),
        "class": message["trigger"],
        "custom_details": {"text": message["text"], **(message.get("details") or {}),
                           "incident_id": message.get("incident_id")},  # fmt: skip
    }
    body["client"] = "OpsConductor"
    links = message.get("links") or []
    if links:
        body["links"] = [{"href": link["url"], "text": link["label"]} for link in links]
    return body


def webhook(message: dict[str, Any], *, notification_id: int) -> dict[str, Any]:
    """A generic webhook's body: the notification."""
    return {"notification_id": notification_id, **message}
