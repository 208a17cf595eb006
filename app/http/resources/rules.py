"""Trigger rules: ``/api/v1/rules/triggers[/{rule_id}]`` and ``/api/v1/rules/triggers/{rule_id}/test``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import falcon

from ...db import in_transaction
from ...present import iso
from ...rules import store
from ...rules.evaluation import body_of, estimated_trigger_rate, replay
from ...rules.triggers import TriggerSpec, parse_trigger
from ..media import read_json
from ..middleware import actor_of, principal_of
from ..params import flag, parse_time


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


class Triggers:
    permissions = {"GET": "read", "POST": "operate"}

    def __init__(self, *, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        active = flag(req, "active")
        rules = in_transaction(lambda: store.listing(active=active))
        resp.media = {"rules": rules, "total_count": len(rules)}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        spec = parse_trigger(read_json(req, max_bytes=self.max_body_bytes))
        principal = principal_of(req)
        rule_id = in_transaction(lambda: store.create(
            spec, actor=actor_of(req), person=principal.person if principal else None,
            key_id=principal.key_id if principal else None,
        ))  # fmt: skip
        resp.status = falcon.HTTP_201
        resp.media = {"rule_id": rule_id, "status": "created", "validation_result": _validation(spec)}


class Trigger:
    permissions = {"GET": "read", "PUT": "operate", "DELETE": "operate", "POST": "read"}

    def __init__(self, *, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes

    def on_get(self, req: falcon.Request, resp: falcon.Response, rule_id: int) -> None:
        resp.media = in_transaction(lambda: body_of(store.get(rule_id)))

    def on_put(self, req: falcon.Request, resp: falcon.Response, rule_id: int) -> None:
        spec = parse_trigger(read_json(req, max_bytes=self.max_body_bytes))
        principal = principal_of(req)
        person = principal.person if principal else None
        in_transaction(lambda: store.replace(rule_id, spec, actor=actor_of(req), person=person))
        resp.media = {"rule_id": rule_id, "status": "updated", "validation_result": _validation(spec)}

    def on_delete(self, req: falcon.Request, resp: falcon.Response, rule_id: int) -> None:
        in_transaction(lambda: store.delete(rule_id, actor=actor_of(req)))
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
        spec = parse_trigger(in_transaction(lambda: body_of(store.get(rule_id))))
        result = replay(spec, start=start, end=end)
        resp.media = {"rule_id": rule_id, "start_time": iso(start), "end_time": iso(end), **result}
