"""The ``notify`` action: email over SMTP, Slack/Teams incoming webhooks, a generic webhook.

Slack and Teams get ``{"text": message}``; a generic webhook gets ``{"subject", "message"}`` plus
``"data"`` when the action gives it. A spec-style notification (``"channels": ["email", "slack"]``
and no block) is planned with a ``channels`` list; email then goes to ``NOTIFY_EMAIL_TO``.
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
from email.message import EmailMessage
from typing import Any
from urllib.parse import unquote, urlsplit

from ..config import Settings
from ..errors import ActionNotAllowed, InvalidRule
from .http import check_url
from .http import send as send_http
from .outcome import Outcome
from .render import check_url_template
from .targets import TargetPolicy

logger = logging.getLogger(__name__)

CHANNELS = ("email", "slack", "teams", "webhook")
#: Fields whose substituted values are percent-encoded.
URL_FIELDS = frozenset({"url"})
DEFAULT_SUBJECT = "OpsConductor notification"
#: An address as an envelope takes it: no display name, no spaces or separators.
ADDRESS = re.compile(r"[^@\s,;<>\"']+@[^@\s,;<>\"']+")


def channels_of(block: dict[str, Any]) -> list[str]:
    names = block["channels"] if "channels" in block else [block.get("channel")]
    return [str(n) for n in names] if isinstance(names, list) else [str(names)]


def validate(block: Any, where: str) -> None:
    """Raise :class:`InvalidRule` naming the field when ``block`` is not a valid ``notify`` block."""
    if not isinstance(block, dict):
        raise InvalidRule("notify is an object {channel, to, url, subject, message}", field=where)
    names = channels_of(block)
    if not names or any(n not in CHANNELS for n in names):
        raise InvalidRule(f"channel is one of {', '.join(CHANNELS)}", field=f"{where}.channel")
    # a spec-style list is checked when it runs: its email still goes out when a webhook has no url
    hooks = [n for n in names if n != "email"] if "channels" not in block else []
    url = block.get("url")
    if hooks and not isinstance(url, str):
        raise InvalidRule(f"{hooks[0]} needs the webhook's http(s) url", field=f"{where}.url")
    if url is not None:
        if not isinstance(url, str):
            raise InvalidRule("url is the webhook's http(s) url", field=f"{where}.url")
        check_url_template(url, where=f"{where}.url")
    if hooks and not isinstance(block.get("message"), str):
        raise InvalidRule(f"{hooks[0]} needs a message", field=f"{where}.message")
    to = block.get("to", [])
    if not isinstance(to, list | str) or (isinstance(to, list) and not all(isinstance(a, str) for a in to)):
        raise InvalidRule("to is a list of email addresses", field=f"{where}.to")
    for key in ("subject", "message"):
        if block.get(key) is not None and not isinstance(block[key], str):
            raise InvalidRule(f"{key} is a string", field=f"{where}.{key}")


def plan(block: dict[str, Any]) -> dict[str, Any]:
    """Where the notification goes and what it says, from a rendered block."""
    validate(block, "notify")
    names = channels_of(block)
    to = block.get("to") or []
    recipients = [a.strip() for a in (to.split(",") if isinstance(to, str) else to) if a.strip()]
    for address in recipients:
        if not ADDRESS.fullmatch(address):
            raise InvalidRule(f"{address[:200]!r} is not an email address", field="notify.to")
    url = block.get("url")
    planned: dict[str, Any] = {"integration": "notify"}
    planned.update({"channel": names[0]} if "channels" not in block else {"channels": names})
    planned.update(
        {
            "to": recipients,
            # one line: a title from an event must not end the Subject header early
            "subject": " ".join((block.get("subject") or DEFAULT_SUBJECT).split()),
            "message": block.get("message") or "",
            "url": check_url(url, "notify.url") if url else None,
        }
    )
    if block.get("data") is not None:
        planned["data"] = block["data"]
    return planned


def send_email(*, settings: Settings, to: list[str], subject: str, message: str, timeout_s: float) -> dict[str, Any]:
    """Send one email through ``SMTP_URL``; with credentials, only over TLS (``smtps://`` or STARTTLS).

    A server that does not offer STARTTLS gets no credentials: a man in the middle who strips the
    offer from the server's answer must not read the password.

    Parameters:
      to: Recipients; empty means ``NOTIFY_EMAIL_TO``.
      timeout_s: Limit of each exchange with the server, in seconds.

    Returns:
      The recipients the server refused (address → (code, reason)); empty when all were accepted.

    Raises:
      ActionNotAllowed: no SMTP server or no recipient is configured, or credentials are
        configured and the server does not offer STARTTLS.
      smtplib.SMTPException, OSError: the server refused the message or could not be reached.
    """
    if not settings.smtp_url:
        raise ActionNotAllowed("email is not configured: set SMTP_URL (or SMTP_HOST)")
    recipients = to or list(settings.notify_email_to)
    if not recipients:
        raise ActionNotAllowed("an email action has no recipients: give it `to` or set NOTIFY_EMAIL_TO")
    parts = urlsplit(settings.smtp_url)
    email = EmailMessage()
    email["From"], email["To"], email["Subject"] = settings.smtp_from, ", ".join(recipients), subject
    email.set_content(message)
    implicit_tls = parts.scheme == "smtps"
    host, port = parts.hostname or "localhost", parts.port or (465 if implicit_tls else 25)
    server = (
        smtplib.SMTP_SSL(host, port, timeout=timeout_s, context=ssl.create_default_context())
        if implicit_tls
        else smtplib.SMTP(host, port, timeout=timeout_s)
    )
    with server:
        if parts.username:
            server.ehlo()
            if not implicit_tls:
                if not server.has_extn("starttls"):
                    raise ActionNotAllowed(
                        f"the SMTP server {host}:{port} does not offer STARTTLS: the credentials of SMTP_URL are "
                        "never sent in clear (use smtps:// or a server that offers STARTTLS)"
                    )
                server.starttls(context=ssl.create_default_context())
                server.ehlo()
            server.login(unquote(parts.username), unquote(parts.password or ""))
        refused: dict[str, Any] = server.send_message(email)
    logger.info("Sent email %r to %d recipients through %s:%d.", subject, len(recipients) - len(refused), host, port)
    return refused


def _email(planned: dict[str, Any], settings: Settings, timeout_s: float) -> str | None:
    """None when sent, else what went wrong."""
    try:
        refused = send_email(
            settings=settings,
            to=planned["to"],
            subject=planned["subject"],
            message=planned["message"],
            timeout_s=timeout_s,
        )
    except (smtplib.SMTPException, OSError, ValueError) as e:
        return f"email: {type(e).__name__}: {e}"
    return f"email: the SMTP server refused {', '.join(sorted(refused))}" if refused else None


def _hook(channel: str, planned: dict[str, Any], settings: Settings, timeout_s: float) -> str | None:
    """None when the webhook accepted the post, else what went wrong."""
    if not planned.get("url"):
        return f"{channel}: no webhook url (give the action a notify block with its url)"
    body: dict[str, Any] = {"text": planned["message"]}
    if channel == "webhook":
        body = {"subject": planned["subject"], "message": planned["message"]}
        if planned.get("data") is not None:
            body["data"] = planned["data"]
    request = {"method": "POST", "url": planned["url"], "headers": {}, "json": body, "expected_status": []}
    policy = TargetPolicy.parse(settings.http_action_allow)
    try:
        # HTTP_ACTION_ALLOW lists automation targets; webhooks (Slack, Teams) only avoid the refused ranges
        outcome = send_http({**request, "verify_tls": True}, policy=policy, timeout_s=timeout_s, allow_list=False)
    except ActionNotAllowed as e:
        return f"{channel}: not allowed: {e}"
    return None if outcome.success else f"{channel}: {outcome.error}"


def perform(planned: dict[str, Any], *, settings: Settings, timeout_s: float) -> Outcome:
    """Send on each channel; any refusal or unreachable target makes a failed outcome.

    Raises:
      ActionNotAllowed: email with no SMTP server or no recipient configured.
    """
    sent, errors = [], []
    for channel in planned.get("channels") or [planned["channel"]]:
        error = (
            _email(planned, settings, timeout_s) if channel == "email" else _hook(channel, planned, settings, timeout_s)
        )
        if error:
            errors.append(error)
        else:
            sent.append(channel)
    data = {"sent": sent}
    if errors:
        return Outcome(
            success=False, output=f"sent: {', '.join(sent) or 'nothing'}", data=data, error="; ".join(errors)
        )
    return Outcome(success=True, output=f"sent by {', '.join(sent)}", data=data)
