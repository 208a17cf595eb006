"""The ``notify`` action: email over SMTP, Slack/Teams incoming webhooks, a generic webhook."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from typing import Any
from urllib.parse import unquote, urlsplit

from ..config import Settings
from ..errors import ActionNotAllowed, InvalidRule
from . import http
from .outcome import Outcome

CHANNELS = ("email", "slack", "teams", "webhook")


def channels_of(block: dict[str, Any]) -> list[str]:
    names = block.get("channels") or [block.get("channel", "email")]
    return [str(n) for n in names] if isinstance(names, list) else [str(names)]


def validate(block: Any, where: str) -> None:
    if not isinstance(block, dict):
        raise InvalidRule("notify is an object {channel, to, url, subject, message}", field=where)
    names = channels_of(block)
    unknown = [n for n in names if n not in CHANNELS]
    if unknown or not names:
        raise InvalidRule(f"channel is one of {', '.join(CHANNELS)}", field=f"{where}.channel")
    if any(n != "email" for n in names) and not isinstance(block.get("url"), str):
        raise InvalidRule("slack, teams and webhook need the incoming webhook's url", field=f"{where}.url")
    to = block.get("to", [])
    if not isinstance(to, list | str) or (isinstance(to, list) and not all(isinstance(a, str) for a in to)):
        raise InvalidRule("to is a list of email addresses", field=f"{where}.to")
    for key in ("subject", "message"):
        if key in block and not isinstance(block[key], str):
            raise InvalidRule(f"{key} is a string", field=f"{where}.{key}")


def plan(block: dict[str, Any]) -> dict[str, Any]:
    to = block.get("to") or []
    return {
        "integration": "notify",
        "channels": channels_of(block),
        "to": [a.strip() for a in (to.split(",") if isinstance(to, str) else to) if a.strip()],
        "url": block.get("url"),
        "subject": block.get("subject") or "OpsConductor notification",
        "message": block.get("message") or "",
        "data": block.get("data"),
    }


def send_email(*, settings: Settings, to: list[str], subject: str, message: str, timeout_s: float) -> None:
    """Send one email through ``SMTP_URL``; STARTTLS when offered and credentials are given.

    Raises:
      ActionNotAllowed: no SMTP server or no recipient is configured.
      smtplib.SMTPException, OSError: the server refused or could not be reached.
    """
    if not settings.smtp_url:
        raise ActionNotAllowed("email is not configured: set SMTP_URL (or SMTP_HOST)")
    recipients = to or list(settings.notify_email_to)
    if not recipients:
        raise ActionNotAllowed("no recipients: give the action's `to` or set NOTIFY_EMAIL_TO")
    parts = urlsplit(settings.smtp_url)
    email = EmailMessage()
    email["From"], email["To"], email["Subject"] = settings.smtp_from, ", ".join(recipients), subject
    email.set_content(message)
    implicit_tls = parts.scheme == "smtps"
    port = parts.port or (465 if implicit_tls else 25)
    cls = smtplib.SMTP_SSL if implicit_tls else smtplib.SMTP
    with cls(parts.hostname or "localhost", port, timeout=timeout_s) as server:
        if not implicit_tls and parts.username:
            server.ehlo()
            if server.has_extn("starttls"):
                server.starttls(context=ssl.create_default_context())
        if parts.username:
            server.login(unquote(parts.username), unquote(parts.password or ""))
        server.send_message(email)


def perform(planned: dict[str, Any], *, settings: Settings, timeout_s: float) -> Outcome:
    sent, errors = [], []
    for channel in planned["channels"]:
        if channel == "email":
            try:
                send_email(settings=settings, to=planned["to"], subject=planned["subject"], message=planned["message"],
                           timeout_s=timeout_s)  # fmt: skip
                sent.append("email")
            except (smtplib.SMTPException, OSError) as e:
                errors.append(f"email: {type(e).__name__}: {e}")
            continue
        if not planned.get("url"):
            errors.append(f"{channel}: no incoming webhook url (give the action a notify block with url)")
            continue
        body: dict[str, Any] = {"text": f"*{planned['subject']}*\n{planned['message']}"}
        if channel == "webhook":
            body = {"subject": planned["subject"], "message": planned["message"], "data": planned.get("data")}
        outcome = http.perform({"method": "POST", "url": planned["url"], "headers": {}, "json": body,
                                "expected_status": [], "verify_tls": True}, timeout_s=timeout_s)  # fmt: skip
        (sent.append(channel) if outcome.success else errors.append(f"{channel}: {outcome.error}"))
    if errors:
        return Outcome(success=False, output=f"sent: {', '.join(sent) or 'nothing'}", data={"sent": sent},
                       error="; ".join(errors))  # fmt: skip
    return Outcome(success=True, output=f"sent by {', '.join(sent)}", data={"sent": sent})
