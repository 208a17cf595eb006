"""Response templates: ``/api/v1/rules/responses[/{template_id}]``, versioned (see :mod:`app.rules.templates`)."""

from __future__ import annotations

import falcon

from ...db import in_transaction
from ...rules import templates
from ...rules.playbooks import parse_playbook
from ..media import read_json
from ..middleware import actor_of, principal_of
from ..params import integer


def _person(req: falcon.Request) -> str | None:
    """Who writes the template: its author may not approve the runs it causes."""
    principal = principal_of(req)
    return principal.person if principal else None


class Playbooks:
    permissions = {"GET": "read", "POST": "operate"}

    def __init__(self, *, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        rows = in_transaction(templates.listing)
        resp.media = {"templates": rows, "total_count": len(rows)}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        definition = parse_playbook(read_json(req, max_bytes=self.max_body_bytes))
        template_id = in_transaction(lambda: templates.create(definition, actor=actor_of(req), person=_person(req)))
        resp.status = falcon.HTTP_201
        resp.media = {"template_id": template_id, "version": 1, "status": "created",
                      "execution_order": definition["execution_order"], "warnings": definition["warnings"]}  # fmt: skip


class Playbook:
    permissions = {"GET": "read", "PUT": "operate", "DELETE": "operate"}

    def __init__(self, *, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes

    def on_get(self, req: falcon.Request, resp: falcon.Response, template_id: int) -> None:
        version = integer(req, "version", 0) if req.get_param("version") else None
        resp.media = in_transaction(lambda: templates.shown(template_id, version))

    def on_put(self, req: falcon.Request, resp: falcon.Response, template_id: int) -> None:
        definition = parse_playbook(read_json(req, max_bytes=self.max_body_bytes))
        version = in_transaction(lambda: templates.replace(template_id, definition, actor=actor_of(req),
                                                           person=_person(req)))  # fmt: skip
        resp.media = {"template_id": template_id, "version": version, "status": "updated",
                      "warnings": definition["warnings"]}  # fmt: skip

    def on_delete(self, req: falcon.Request, resp: falcon.Response, template_id: int) -> None:
        """Deactivate: its versions stay for the executions that used them."""
        in_transaction(lambda: templates.deactivate(template_id, actor=actor_of(req)))
        resp.media = {"template_id": template_id, "status": "deactivated"}
