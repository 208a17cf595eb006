"""Named secrets: encrypted at rest, referenced by templates as ``{{ secret.NAME }}``, never shown.

Values are encrypted with Fernet (AES-128-CBC and HMAC-SHA256) under ``OPSCONDUCTOR_SECRET_KEYS``:
the first key encrypts, every key decrypts (:class:`~cryptography.fernet.MultiFernet`), so a new
key is put first, :func:`rotate` re-encrypts every value with it, and the old key can then go.
Nothing here returns a value except :func:`reveal`, which the executor calls right before an
action is performed; changes are audited by name only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from . import audit
from .actions.render import SECRET_NAME
from .errors import ActionNotAllowed, InvalidInput
from .models.secrets import Secret
from .present import iso

logger = logging.getLogger(__name__)

#: The longest value accepted, in characters.
MAX_VALUE_CHARS = 64 * 1024


class SecretsDisabled(ActionNotAllowed):
    """No ``OPSCONDUCTOR_SECRET_KEYS``: secrets can be neither stored nor read."""

    def __init__(self) -> None:
        super().__init__("secrets are disabled: set OPSCONDUCTOR_SECRET_KEYS (generate a key with "
                         "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)")  # fmt: skip


class UnknownSecret(ActionNotAllowed):
    """An action names a secret that is not stored."""


class UnreadableSecret(ActionNotAllowed):
    """A stored secret that none of the configured keys decrypts (its key was removed)."""


def _now() -> datetime:
    return datetime.now(UTC)


def cipher(keys: Sequence[str]) -> MultiFernet:
    """The cipher of ``keys`` (the first encrypts).

    Raises:
      SecretsDisabled: no key is configured.
    """
    if not keys:
        raise SecretsDisabled
    return MultiFernet([Fernet(key.encode()) for key in keys])


def check_name(name: Any) -> str:
    """``name`` when it can be used as ``secret.NAME``, else :class:`InvalidInput` naming ``name``."""
    if not isinstance(name, str) or not SECRET_NAME.fullmatch(name):
        raise InvalidInput("a secret's name is a letter then letters, digits or _ (at most 100)", field="name")
    return name


def check_value(value: Any) -> str:
    """``value`` when it can be stored, else :class:`InvalidInput` naming ``value``."""
    if not isinstance(value, str) or not value:
        raise InvalidInput("value is a non-empty string", field="value")
    if len(value) > MAX_VALUE_CHARS:
        raise InvalidInput(f"value is at most {MAX_VALUE_CHARS} characters", field="value")
    return value


def put(name: str, value: str, *, keys: Sequence[str], actor: str) -> bool:
    """Store ``value`` under ``name``, encrypted; return whether it was created (else replaced).

    Call inside a transaction.

    Raises:
      InvalidInput: a bad name or value. SecretsDisabled: no key configured.
    """
    token = cipher(keys).encrypt(check_value(value).encode()).decode()
    row = Secret.get_or_none(Secret.name == check_name(name))
    now = _now()
    if row is None:
        Secret.create(name=name, token=token, created_at=now, updated_at=now, updated_by=actor)
    else:
        Secret.update(token=token, updated_at=now, updated_by=actor).where(Secret.id == row.id).execute()
    audit.record(audit.Action.SECRET_CREATED if row is None else audit.Action.SECRET_UPDATED, actor=actor,
                 subject=f"secret:{name}")  # fmt: skip
    logger.info("Secret %r %s by %s.", name, "created" if row is None else "replaced", actor)
    return row is None


def delete(name: str, *, actor: str) -> bool:
    """Delete a secret; return whether it existed (call inside a transaction)."""
    deleted = Secret.delete().where(Secret.name == name).execute()
    if deleted:
        audit.record(audit.Action.SECRET_DELETED, actor=actor, subject=f"secret:{name}")
        logger.info("Secret %r deleted by %s.", name, actor)
    return bool(deleted)


def listing() -> list[dict[str, Any]]:
    """Names and timestamps, never values."""
    return [
        {
            "name": row.name,
            "created_at": iso(row.created_at),
            "updated_at": iso(row.updated_at),
            "updated_by": row.updated_by,
        }
        for row in Secret.select(Secret.name, Secret.created_at, Secret.updated_at, Secret.updated_by).order_by(
            Secret.name
        )
    ]


def missing(names: Iterable[str]) -> list[str]:
    """Those of ``names`` that are not stored, sorted."""
    wanted = set(names)
    if not wanted:
        return []
    present = {row.name for row in Secret.select(Secret.name).where(Secret.name.in_(sorted(wanted)))}
    return sorted(wanted - present)


def reveal(names: Iterable[str], *, keys: Sequence[str]) -> dict[str, str]:
    """The values of ``names``, for the executor right before it performs an action.

    Raises:
      UnknownSecret: a name is not stored. UnreadableSecret: no key decrypts it.
      SecretsDisabled: no key is configured.
    """
    wanted = sorted(set(names))
    if not wanted:
        return {}
    crypto = cipher(keys)
    rows = {row.name: row.token for row in Secret.select(Secret.name, Secret.token).where(Secret.name.in_(wanted))}
    values = {}
    for name in wanted:
        if name not in rows:
            raise UnknownSecret(f"unknown secret {name!r}: store it with `opsconductor secrets set {name}`")
        try:
            values[name] = crypto.decrypt(rows[name].encode()).decode()
        except InvalidToken:
            raise UnreadableSecret(
                f"secret {name!r} cannot be decrypted with OPSCONDUCTOR_SECRET_KEYS (was its key removed?)"
            ) from None
    return values


def rotate(*, keys: Sequence[str], actor: str) -> int:
    """Re-encrypt every secret with the first key; return how many (call inside a transaction).

    Raises:
      UnreadableSecret: a secret none of the keys decrypts (nothing is changed then).
      SecretsDisabled: no key is configured.
    """
    crypto = cipher(keys)
    rows = list(Secret.select(Secret.id, Secret.name, Secret.token).order_by(Secret.id))
    tokens = {}
    for row in rows:
        try:
            tokens[row.id] = crypto.rotate(row.token.encode()).decode()
        except InvalidToken:
            raise UnreadableSecret(
                f"secret {row.name!r} cannot be decrypted with OPSCONDUCTOR_SECRET_KEYS: add its key and rotate again"
            ) from None
    for row_id, token in tokens.items():
        Secret.update(token=token).where(Secret.id == row_id).execute()
    audit.record(audit.Action.SECRET_ROTATED, actor=actor, subject="secrets", details={"names": [row.name for row in rows]})
    logger.info("Re-encrypted %d secrets with the first key, by %s.", len(rows), actor)
    return len(rows)
