"""Response templates: ``/api/v1/rules/responses[/{template_id}]``, versioned.

Every reader, whatever its role, sees templates with the secrets written in them masked
(:func:`~app.actions.redact_template`); the stored template keeps them for the executor. A
template naming a secret that is not stored is accepted with a warning.
"""

from __future__ import annotations

from typing import Any

import falcon

from ... import secrets
from ...actions import redact_template
from ...db import in_transaction
from ...errors import InvalidRule
from ...models import AuditLog, ResponseTemplate, ResponseTemplateVersion, TriggerRule
from ...rules.playbooks import parse_playbook, secrets_used
from ..middleware import actor_of, principal_of
from .ingest import read_json


def template_json(
    row: ResponseTemplate, definition: dict[str, Any] | None = None, version: int | None = None
) -> dict[str, Any]:
    return {
        "template_id": row.id,
        "version": version or row.version,
        "active": row.active,
        "created_at": row.created_at.isoformat() if row.created_at else None,
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


def _person(req: falcon.Request) -> str | None:
    """Who writes the template: its author may not approve the runs it causes."""
    principal = principal_of(req)
    return principal.person if principal else None


def _warn_missing_secrets(definition: dict[str, Any]) -> None:
    """Add a warning for each secret the template names that is not stored (inside the write's transaction)."""
    for name in secrets.missing(secrets_used(definition)):
        definition["warnings"].append(
            f"secret {name!r} is not stored: actions naming it fail until `opsconductor secrets set {name}`"
        )


def _check_rule(definition: dict[str, Any]) -> None:
    rule_id = definition.get("trigger_rule_id")
    if rule_id is not None and not TriggerRule.select().where(TriggerRule.id == rule_id).exists():
        raise InvalidRule(f"no trigger rule {rule_id}", field="trigger_rule_id")


class Playbooks:
    permissions = {"GET": "read", "POST": "operate"}

    def __init__(self, *, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        rows = in_transaction(
            lambda: [template_json(r) for r in ResponseTemplate.select().order_by(ResponseTemplate.id)]
        )
        resp.media = {"templates": rows, "total_count": len(rows)}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        definition = parse_playbook(read_json(req, max_bytes=self.max_body_bytes))

        def work() -> int:
            _check_rule(definition)
            _warn_missing_secrets(definition)
            person = _person(req)
            row = ResponseTemplate.create(**_columns(definition), version=1, created_by_person=person,
                                          updated_by_person=person)  # fmt: skip
            ResponseTemplateVersion.create(
                template_id=row.id, version=1, definition=definition, created_by=actor_of(req)
            )
            AuditLog.create(
                actor=actor_of(req), action="response_template.create", subject=f"response_template:{row.id}"
            )
            return row.id

        template_id = in_transaction(work)
        resp.status = falcon.HTTP_201
        resp.media = {"template_id": template_id, "version": 1, "status": "created",
                      "execution_order": definition["execution_order"], "warnings": definition["warnings"]}  # fmt: skip


class Playbook:
    permissions = {"GET": "read", "PUT": "operate", "DELETE": "operate"}

    def __init__(self, *, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes

    def _row(self, template_id: int) -> ResponseTemplate:
        row = in_transaction(lambda: ResponseTemplate.get_or_none(ResponseTemplate.id == template_id))
        if row is None:
            raise falcon.HTTPNotFound(title="Not found", description=f"no response template {template_id}")
        return row

    def on_get(self, req: falcon.Request, resp: falcon.Response, template_id: int) -> None:
        row = self._row(template_id)
        version = req.get_param_as_int("version")
        if version is None or version == row.version:
            resp.media = template_json(row)
            return
        old = in_transaction(
            lambda: ResponseTemplateVersion.get_or_none(
                (ResponseTemplateVersion.template_id == template_id) & (ResponseTemplateVersion.version == version)
            )
        )
        if old is None:
            raise falcon.HTTPNotFound(title="Not found", description=f"template {template_id} has no version {version}")
        resp.media = template_json(row, old.definition, old.version)

    def on_put(self, req: falcon.Request, resp: falcon.Response, template_id: int) -> None:
        definition = parse_playbook(read_json(req, max_bytes=self.max_body_bytes))
        self._row(template_id)

        def work() -> int:
            _check_rule(definition)
            _warn_missing_secrets(definition)
            row = ResponseTemplate.select().where(ResponseTemplate.id == template_id).get()
            version = row.version + 1
            ResponseTemplate.update(**_columns(definition), version=version, updated_by_person=_person(req)).where(
                ResponseTemplate.id == template_id
            ).execute()
            ResponseTemplateVersion.create(
                template_id=template_id, version=version, definition=definition, created_by=actor_of(req)
            )
            AuditLog.create(actor=actor_of(req), action="response_template.update", subject=f"response_template:{template_id}",
                            details={"version": version})  # fmt: skip
            return version

        resp.media = {"template_id": template_id, "version": in_transaction(work), "status": "updated",
                      "warnings": definition["warnings"]}  # fmt: skip

    def on_delete(self, req: falcon.Request, resp: falcon.Response, template_id: int) -> None:
        """Deactivate: its versions stay for the executions that used them."""
        self._row(template_id)

        def work() -> None:
            ResponseTemplate.update(active=False).where(ResponseTemplate.id == template_id).execute()
            AuditLog.create(
                actor=actor_of(req), action="response_template.deactivate", subject=f"response_template:{template_id}"
            )

        in_transaction(work)
        resp.media = {"template_id": template_id, "status": "deactivated"}
