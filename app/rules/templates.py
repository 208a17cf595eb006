"""Response templates (playbooks): create, read, new versions and deactivation, each write audited.

A template is versioned: every replacement stores a new version and keeps the old ones for the
executions that used them. Readers see templates with the secrets written in them masked
(:func:`~app.actions.redact_template`); the stored template keeps them for the executor. A
template naming a secret that is not stored is accepted with a warning.

Every function is called inside a transaction (:func:`app.db.in_transaction`), so a write and
its audit row commit together.
"""

from __future__ import annotations

from typing import Any

from .. import audit, secrets
from ..actions import redact_template
from ..crud import Table
from ..errors import InvalidRule, NotFound
from ..models import ResponseTemplate, ResponseTemplateVersion, TriggerRule
from ..present import iso
from .playbooks import secrets_used

#: Templates as the API, the CLI and the console read them (versioned: their writes are their own).
TABLE = Table(ResponseTemplate, noun="response template", subject="response_template")


def template_json(
    row: ResponseTemplate, definition: dict[str, Any] | None = None, version: int | None = None
) -> dict[str, Any]:
    """A template as the API shows it (its secrets masked); ``definition``/``version``: an older version."""
    return {
        "template_id": row.id,
        "version": version or row.version,
        "active": row.active,
        "created_at": iso(row.created_at),
        **redact_template(definition if definition is not None else row.response_definition),
    }


def _columns(definition: dict[str, Any]) -> dict[str, Any]:
    approval = bool(definition.get("approval_required")) or any(
        a.get("approval_required") for a in definition["actions"]
    )
    return {
        "template_name": definition["name"],
        "template_type": definition["response_type"],
        "trigger_rule_id": definition.get("trigger_rule_id"),
        "response_definition": definition,
        "approval_required": approval,
        "rollback_supported": any(a.get("rollback_supported") for a in definition["actions"])
        or bool(definition.get("rollback_actions")),
        "max_execution_time_minutes": definition["max_execution_time_minutes"],
    }


def _warn_missing_secrets(definition: dict[str, Any]) -> None:
    """Add a warning for each secret the template names that is not stored."""
    for name in secrets.missing(secrets_used(definition)):
        definition["warnings"].append(
            f"secret {name!r} is not stored: actions naming it fail until `opsconductor secrets set {name}`"
        )


def _check_rule(definition: dict[str, Any]) -> None:
    rule_id = definition.get("trigger_rule_id")
    if rule_id is not None and not TriggerRule.select().where(TriggerRule.id == rule_id).exists():
        raise InvalidRule(f"no trigger rule {rule_id}", field="trigger_rule_id")


def listing() -> list[dict[str, Any]]:
    """Every template as the API shows it, by id."""
    return [template_json(r) for r in ResponseTemplate.select().order_by(ResponseTemplate.id)]


def get(template_id: int) -> ResponseTemplate:
    """Raises:
    NotFound: there is no template ``template_id``.
    """
    return TABLE.get(template_id)


def shown(template_id: int, version: int | None = None) -> dict[str, Any]:
    """Template ``template_id`` as the API shows it, at ``version`` (None: the current one).

    Raises:
      NotFound: there is no such template, or it has no such version.
    """
    row = get(template_id)
    if version is None or version == row.version:
        return template_json(row)
    old = ResponseTemplateVersion.get_or_none(
        (ResponseTemplateVersion.template_id == template_id) & (ResponseTemplateVersion.version == version)
    )
    if old is None:
        raise NotFound(f"template {template_id} has no version {version}")
    return template_json(row, old.definition, old.version)


def create(definition: dict[str, Any], *, actor: str, person: str | None = None) -> int:
    """Store a parsed template (:func:`~app.rules.playbooks.parse_playbook`) as version 1; return its id.

    Parameters:
      actor: Who writes it, for the audit log.
      person: The person behind ``actor`` (its author may not approve the runs it causes).

    Raises:
      InvalidRule: it names a trigger rule that does not exist.
    """
    _check_rule(definition)
    _warn_missing_secrets(definition)
    row = ResponseTemplate.create(**_columns(definition), version=1, created_by_person=person,
                                  updated_by_person=person)  # fmt: skip
    ResponseTemplateVersion.create(template_id=row.id, version=1, definition=definition, created_by=actor)
    audit.record(audit.Action.RESPONSE_TEMPLATE_CREATED, actor=actor, subject=f"response_template:{row.id}")
    return row.id


def replace(template_id: int, definition: dict[str, Any], *, actor: str, person: str | None = None) -> int:
    """Store ``definition`` as the template's next version; return that version.

    Raises:
      NotFound: there is no template ``template_id``.
      InvalidRule: it names a trigger rule that does not exist.
    """
    row = get(template_id)
    _check_rule(definition)
    _warn_missing_secrets(definition)
    version = row.version + 1
    ResponseTemplate.update(**_columns(definition), version=version, updated_by_person=person).where(
        ResponseTemplate.id == template_id
    ).execute()
    ResponseTemplateVersion.create(template_id=template_id, version=version, definition=definition, created_by=actor)
    audit.record(audit.Action.RESPONSE_TEMPLATE_UPDATED, actor=actor, subject=f"response_template:{template_id}",
                 details={"version": version})  # fmt: skip
    return version


def deactivate(template_id: int, *, actor: str) -> None:
    """Deactivate a template: its versions stay for the executions that used them.

    Raises:
      NotFound: there is no template ``template_id``.
    """
    get(template_id)
    ResponseTemplate.update(active=False).where(ResponseTemplate.id == template_id).execute()
    audit.record(audit.Action.RESPONSE_TEMPLATE_DEACTIVATED, actor=actor, subject=f"response_template:{template_id}")
