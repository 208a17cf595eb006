"""Signed one-time approval links: approve or reject from where the request arrives (email, Slack, Teams).

A link opens the console's confirmation page (``/console/approvals/confirm?token=...``). Its
token is ``<claims>.<signature>``, both base64url: the claims (approval, execution and decision
ids, the approver's person, the expiry and a random nonce) signed with HMAC-SHA256. A link is:

- bound to one approver: only the signed-in person it was made for may use it;
- bound to its approval and decision: claims that do not match the stored approval are refused;
- valid until the approval request's ``expires_at``, and only while the request is pending;
- single use: redeeming stores its nonce (the primary key of ``approval_link_uses``) in the
  transaction of the answer, so a reuse, or the second of two concurrent uses, is refused.

Nothing is approved by opening a link: the page a GET shows calls :func:`verify` only, and the
answer is a POST (with the console's CSRF token) that calls :func:`redeem`. The answer goes
through :func:`app.executions.approvals.answer` and keeps every rule it enforces (the requester
may not answer, the role must be an approver, an author may not approve its own rule's runs).

The signing key: with ``OPSCONDUCTOR_SECRET_KEYS`` set, a key derived from each of them (the
first signs, all verify, so rotating the secret keys keeps links valid); without, a random key
made once per database (``ops.signing_keys``), so links also work on the embedded default.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import peewee

from .. import audit
from ..config import get_settings
from ..db import database, in_transaction
from ..errors import InvalidLink, NotFound
from ..models import Approval, ApprovalLinkUse, Execution, SigningKey
from ..models.ops import person_of
from . import approvals

logger = logging.getLogger(__name__)

#: The console's confirmation page a link opens.
CONFIRM_PATH = "/console/approvals/confirm"
#: The :class:`~app.models.SigningKey` row of the key used when no secret key is configured.
KEY_PURPOSE = "approval_links"
#: Mixed into a secret key to derive the links' key, so it never signs with the secrets' cipher key itself.
_DERIVATION = b"opsconductor/approval-links/v1"
#: Prefixed to what is signed, so a signature made for something else never verifies a link.
_CONTEXT = b"approval-link.v1."


@dataclass(frozen=True)
class LinkClaims:
    """What a link's token says, once its signature is verified."""

    approval_id: int
    execution_id: str
    decision_id: int | None
    #: The approver the link was made for.
    person: str
    #: The approval request's expiry; the link is refused from then on.
    expires_at: datetime
    #: Random; stored when the link is used, so it is used once.
    nonce: str


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _database_key() -> bytes:
    """This database's random key, made by the first call (call inside a transaction)."""
    row = SigningKey.get_or_none(SigningKey.purpose == KEY_PURPOSE)
    if row is None:
        # Two processes may race: one insert wins, the other reads the winner's key.
        SigningKey.insert(purpose=KEY_PURPOSE, key=secrets.token_hex(32)).on_conflict_ignore().execute()
        row = SigningKey.get(SigningKey.purpose == KEY_PURPOSE)
        logger.info("Made this database's key for approval links (no OPSCONDUCTOR_SECRET_KEYS set).")
    return bytes.fromhex(row.key)


def signing_keys() -> list[bytes]:
    """The keys links are checked against; the first signs (call inside a transaction)."""
    configured = get_settings().secret_keys
    if not configured:
        return [_database_key()]
    return [hmac.new(base64.urlsafe_b64decode(key.encode()), _DERIVATION, hashlib.sha256).digest() for key in configured]


def _signature(key: bytes, body: str) -> bytes:
    return hmac.new(key, _CONTEXT + body.encode(), hashlib.sha256).digest()


def signed_token(claims: LinkClaims, key: bytes) -> str:
    """The token of ``claims`` signed with ``key``: ``<claims>.<signature>``, URL-safe."""
    payload = {"a": claims.approval_id, "e": claims.execution_id, "d": claims.decision_id, "p": claims.person,
               "x": claims.expires_at.astimezone(UTC).isoformat(), "n": claims.nonce}  # fmt: skip
    body = _b64(orjson.dumps(payload))
    return f"{body}.{_b64(_signature(key, body))}"


def make_link(approval_id: int, person: str, *, base_url: str) -> str:
    """A one-time link for ``person`` to answer approval ``approval_id`` on the console.

    Parameters:
      approval_id: The approval request.
      person: The approver the link is for (an API key's person); nobody else may use it.
      base_url: Where the console is reached, e.g. ``https://ops.example.com``.

    Returns:
      ``<base_url>/console/approvals/confirm?token=<token>``, valid until the request expires.

    Raises:
      NotFound: no such approval.
    """
    if not isinstance(person, str) or not person:
        raise ValueError("person is the approver's name")

    def claims_and_key() -> tuple[LinkClaims, bytes]:
        approval = Approval.get_or_none(Approval.id == approval_id)
        if approval is None:
            raise NotFound(f"no approval {approval_id}")
        execution = Execution.get_or_none(Execution.id == approval.execution_id)
        claims = LinkClaims(
            approval_id=approval.id, execution_id=str(approval.execution_id),
            decision_id=execution.decision_id if execution is not None else None, person=person,
            expires_at=approval.expires_at, nonce=secrets.token_urlsafe(16),
        )  # fmt: skip
        return claims, signing_keys()[0]

    claims, key = in_transaction(claims_and_key)
    return f"{base_url.rstrip('/')}{CONFIRM_PATH}?token={signed_token(claims, key)}"


def _bad(detail: str) -> InvalidLink:
    return InvalidLink(f"this approval link is not valid ({detail})", reason="bad_signature")


def _decode(token: Any, keys: list[bytes]) -> LinkClaims:
    """The claims of ``token`` when one of ``keys`` signed it.

    Raises:
      InvalidLink: malformed, or signed by none of ``keys`` (``bad_signature``).
    """
    if not isinstance(token, str) or token.count(".") != 1 or len(token) > 2048:
        raise _bad("malformed")
    body, signature = token.split(".")
    try:
        given = _unb64(signature)
    except (binascii.Error, ValueError):
        raise _bad("malformed signature") from None
    if not any(hmac.compare_digest(given, _signature(key, body)) for key in keys):
        raise _bad("bad signature")
    try:
        p = orjson.loads(_unb64(body))
        claims = LinkClaims(approval_id=p["a"], execution_id=p["e"], decision_id=p["d"], person=p["p"],
                            expires_at=datetime.fromisoformat(p["x"]), nonce=p["n"])  # fmt: skip
    except (binascii.Error, ValueError, TypeError, KeyError, orjson.JSONDecodeError):
        raise _bad("unreadable claims") from None
    if not (isinstance(claims.approval_id, int) and isinstance(claims.execution_id, str)
            and isinstance(claims.decision_id, int | None) and isinstance(claims.person, str)
            and isinstance(claims.nonce, str) and claims.expires_at.tzinfo is not None):  # fmt: skip
        raise _bad("unreadable claims")
    return claims


def _check(token: Any, *, person: str, now: datetime) -> tuple[LinkClaims, Approval]:
    """The claims of a usable link and its approval (call inside a transaction)."""
    claims = _decode(token, signing_keys())
    if claims.expires_at <= now:
        raise InvalidLink(f"this approval link expired at {claims.expires_at.isoformat()}", reason="expired")
    if ApprovalLinkUse.select().where(ApprovalLinkUse.nonce == claims.nonce).exists():
        raise InvalidLink("this approval link was used already: a link answers once", reason="used")
    if person != claims.person:
        raise InvalidLink(f"this approval link was sent to {claims.person!r}, not to {person!r}",
                          reason="wrong_approver")  # fmt: skip
    approval = Approval.get_or_none(Approval.id == claims.approval_id)
    execution = Execution.get_or_none(Execution.id == claims.execution_id) if approval is not None else None
    if (approval is None or execution is None or str(approval.execution_id) != claims.execution_id
            or execution.decision_id != claims.decision_id):  # fmt: skip
        raise InvalidLink(f"this approval link does not belong to approval {claims.approval_id} "
                          f"of decision {claims.decision_id}", reason="other_decision")  # fmt: skip
    if approval.status != "pending":
        raise InvalidLink(f"approval {approval.id} is {approval.status}: nothing awaits an answer",
                          reason="not_pending")  # fmt: skip
    return claims, approval


def verify(token: str, *, person: str) -> LinkClaims:
    """The claims of ``token`` when ``person`` may use it now; changes nothing.

    The confirmation page calls this to show what is to be approved; only :func:`redeem` answers.

    Parameters:
      token: The link's ``token`` parameter.
      person: The signed-in person opening it.

    Raises:
      InvalidLink: with ``reason`` ``bad_signature`` (malformed, tampered with, or signed with
        another key), ``expired``, ``used``, ``wrong_approver`` (``person`` is not the one the
        link was made for), ``other_decision`` (its claims do not match the stored approval) or
        ``not_pending`` (the request was answered, rejected by its timeout or cancelled).
    """
    now = datetime.now(UTC)
    return in_transaction(lambda: _check(token, person=person, now=now))[0]


def redeem(token: str, *, person: str, actor: str, role: str, approve: bool, comment: str | None) -> dict[str, Any]:
    """Answer the link's approval once: approve or reject, as ``actor``.

    Call from a POST (never from a GET: opening a link changes nothing). Runs in one transaction
    (a savepoint when the caller holds one): the link's nonce is stored with the answer, so of two
    uses of one link, even concurrent, one answers and the other is refused.

    Parameters:
      token: The link's token.
      person: The signed-in person; must be the one the link was made for.
      actor: Who answers (``key:<id>:<name>``), whose person must be ``person``.
      role: The actor's role; must be among the approval's approvers.
      approve: True approves, False rejects.
      comment: Why, kept with the answer.

    Returns:
      What :func:`app.executions.approvals.answer` returns; when approved, the caller sends the
      execution to ``execute`` as the API's approve does.

    Raises:
      InvalidLink: see :func:`verify`; also ``wrong_approver`` when ``actor`` is another person.
      ActionNotAllowed: the answer's rules (requester, role, author) refuse it.
      Conflict: nothing awaits an approval any more.
    """
    now = datetime.now(UTC)
    allow_author = get_settings().approval_allow_author

    def answer() -> dict[str, Any]:
        claims, _ = _check(token, person=person, now=now)
        if person_of(actor) != claims.person:
            raise InvalidLink(f"this approval link was sent to {claims.person!r}, not to {person_of(actor)!r}",
                              reason="wrong_approver")  # fmt: skip
        try:
            with database.atomic():  # a savepoint: the refused insert leaves the transaction usable
                ApprovalLinkUse.create(nonce=claims.nonce, approval_id=claims.approval_id, person=claims.person,
                                       actor=actor, approved=approve, used_at=now)  # fmt: skip
        except peewee.IntegrityError:
            raise InvalidLink("this approval link was used already: a link answers once", reason="used") from None
        result = approvals.answer(claims.execution_id, approve=approve, actor=actor, role=role, comment=comment,
                                  allow_author=allow_author, now=now)  # fmt: skip
        audit.record(audit.Action.APPROVAL_LINK_REDEEMED, actor=actor, subject=f"approval:{claims.approval_id}",
                     details={"execution_id": claims.execution_id, "decision_id": claims.decision_id,
                              "approved": approve, "nonce": claims.nonce})  # fmt: skip
        logger.info("Approval %r %s through a signed link by %r.", claims.approval_id,
                    "approved" if approve else "rejected", actor)  # fmt: skip
        return result

    return in_transaction(answer)


__all__ = ["CONFIRM_PATH", "InvalidLink", "LinkClaims", "make_link", "redeem", "signed_token", "verify"]
