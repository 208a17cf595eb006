"""Trigger rules: ``/api/v1/rules/triggers[/{rule_id}]`` and ``/api/v1/rules/triggers/{rule_id}/test``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import falcon

from ...db import in_transaction
from ...events.query import parse_time
from ...models import AuditLog, TriggerRule
from ...rules.evaluation import body_of, columns_of, estimated_trigger_rate, replay
from ...rules.triggers import TriggerSpec, parse_trigger
from ..middleware import actor_of, principal_of
from .ingest import read_json


def _validation(spec: TriggerSpec) -> dict[str, Any]:
    warnings = list(spec.warnings)
    if spec.threshold_count and spec.threshold_count > 1 and not spec.time_window_minutes:
        warnings.append("threshold_count without a window")
    if not spec.conditions:
        warnings.append("an empty condition matches every event")
    return {
        "valid": True,
        "warnings": warnings,
        "estimated_trigger_rate": estimated_trigger_rate(spec, now=datetime.now(UTC)),
    }


def _get(rule_id: int) -> TriggerRule:
    row = in_transaction(lambda: TriggerRule.get_or_none(TriggerRule.id == rule_id))
    if row is None:
        raise falcon.HTTPNotFound(title="Not found", description=f"no trigger rule {rule_id}")
    return row


class Triggers:
    permissions = {"GET": "read", "POST": "operate"}

    def __init__(self, *, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        active = req.get_param_as_bool("active")

        def work() -> list[dict[str, Any]]:
            query = TriggerRule.select().order_by(TriggerRule.id)
            if active is not None:
                query = query.where(TriggerRule.active == active)
            return [body_of(r) for r in query]

        rules = in_transaction(work)
        resp.media = {"rules": rules, "total_count": len(rules)}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        spec = parse_trigger(read_json(req, max_bytes=self.max_body_bytes))

        def work() -> int:
            principal = principal_of(req)
            person = principal.person if principal else None
            row = TriggerRule.create(**columns_of(spec), created_by=principal.key_id if principal else None,
                                     created_by_person=person, updated_by_person=person)  # fmt: skip
            AuditLog.create(
                actor=actor_of(req),
                action="trigger_rule.create",
                subject=f"trigger_rule:{row.id}",
                details=columns_of(spec),
            )
            return row.id

        rule_id = in_transaction(work)
        resp.status = falcon.HTTP_201
        resp.media = {"rule_id": rule_id, "status": "created", "validation_result": _validation(spec)}


class Trigger:
    permissions = {"GET": "read", "PUT": "operate", "DELETE": "operate", "POST": "read"}

    def __init__(self, *, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes

    def on_get(self, req: falcon.Request, resp: falcon.Response, rule_id: int) -> None:
        resp.media = body_of(_get(rule_id))

    def on_put(self, req: falcon.Request, resp: falcon.Response, rule_id: int) -> None:
        spec = parse_trigger(read_json(req, max_bytes=self.max_body_bytes))
        _get(rule_id)

        def work() -> None:
            principal = principal_of(req)
            TriggerRule.update(**columns_of(spec), updated_at=datetime.now(UTC),
                               updated_by_person=principal.person if principal else None).where(
                TriggerRule.id == rule_id
            ).execute()  # fmt: skip
            AuditLog.create(
                actor=actor_of(req),
                action="trigger_rule.update",
                subject=f"trigger_rule:{rule_id}",
                details=columns_of(spec),
            )

        in_transaction(work)
        resp.media = {"rule_id": rule_id, "status": "updated", "validation_result": _validation(spec)}

    def on_delete(self, req: falcon.Request, resp: falcon.Response, rule_id: int) -> None:
        _get(rule_id)

        def work() -> None:
            TriggerRule.delete().where(TriggerRule.id == rule_id).execute()
            AuditLog.create(actor=actor_of(req), action="trigger_rule.delete", subject=f"trigger_rule:{rule_id}")

        in_transaction(work)
        resp.media = {"rule_id": rule_id, "status": "deleted"}

    def on_post_test(self, req: falcon.Request, resp: falcon.Response, rule_id: int) -> None:
        """Replay the rule over a time range (default: the last 24 h); nothing is recorded or sent."""
        body = read_json(req, max_bytes=self.max_body_bytes) if req.content_length else {}
        if not isinstance(body, dict):
            body = {}
        now = datetime.now(UTC)
        start = (
            parse_time(body["start_time"], field="start_time") if body.get("start_time") else now - timedelta(hours=24)
        )
        end = parse_time(body["end_time"], field="end_time") if body.get("end_time") else now
        spec = parse_trigger(body_of(_get(rule_id)))
        result = replay(spec, start=start, end=end)
        resp.media = {"rule_id": rule_id, "start_time": start.isoformat(), "end_time": end.isoformat(), **result}
