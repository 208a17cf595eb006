"""Trigger rules and response templates: list, enable/disable, create and edit with the API's validation, backtest.

``GET /console/rules`` lists the rules; ``/console/rules/new`` and ``/console/rules/{id}`` show the
form, whose errors come from :func:`app.rules.triggers.parse_trigger` (the API's validation) and
are shown next to the field they name; ``POST /console/rules/{id}/toggle`` enables or disables a
rule; ``POST /console/rules/{id}/test`` replays it over stored events (the code behind
``POST /api/v1/rules/triggers/{id}/test``: nothing is recorded or sent). ``/console/templates``
lists the response templates and shows one, its secrets masked.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import falcon
import orjson

from ...db import in_transaction
from ...errors import InvalidInput, NotFound
from ...http.middleware import actor_of, principal_of
from ...rules import store, templates
from ...rules.evaluation import body_of, replay
from ...rules.triggers import parse_trigger
from ..page import Page, PageError, see_other
from ..render import render
from ..session import flash

#: The form's whole-number fields (blank: the rule's default).
NUMBERS = (
    "time_window_minutes",
    "threshold_count",
    "max_triggers_per_hour",
    "cooldown_minutes",
    "response_template_id",
)
#: The form's JSON fields (``conditions`` required, ``schedule`` optional).
JSON_FIELDS = ("conditions", "schedule")
#: Hours of stored events a backtest replays unless the form says otherwise (at most a week).
BACKTEST_HOURS = 24


def _pretty(value: Any) -> str:
    return "" if value is None else orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def form_of(rule: dict[str, Any]) -> dict[str, str]:
    """A rule as the form's text fields."""
    shown = {key: "" if rule.get(key) is None else str(rule[key]) for key in ("name", "description", *NUMBERS)}
    shown.update({key: _pretty(rule.get(key)) for key in JSON_FIELDS})
    shown["active"] = "on" if rule.get("active", True) else ""
    return shown


def body_of_form(form: dict[str, str]) -> dict[str, Any]:
    """The form as the API's body, for :func:`parse_trigger`.

    Raises:
      InvalidInput: a number field is not a whole number, or a JSON field is not JSON (naming it).
    """
    body: dict[str, Any] = {"name": (form.get("name") or "").strip(), "active": form.get("active") == "on"}
    if (form.get("description") or "").strip():
        body["description"] = form["description"].strip()
    for key in NUMBERS:
        text = (form.get(key) or "").strip()
        if text:
            try:
                body[key] = int(text)
            except ValueError:
                raise InvalidInput(f"{key.replace('_', ' ')} must be a whole number, got {text!r}", field=key) from None
    for key in JSON_FIELDS:
        text = (form.get(key) or "").strip()
        if not text:
            continue
        try:
            body[key] = orjson.loads(text)
        except orjson.JSONDecodeError as e:
            raise InvalidInput(f"{key} is not valid JSON: {e}", field=key) from None
    return body


def field_of(error: InvalidInput) -> str:
    """The form field an error names (``conditions.all[0].op`` -> ``conditions``); ``form`` for none."""
    name = (error.field or "form").split(".", 1)[0].split("[", 1)[0]
    return name if name in ("name", "description", "active", *NUMBERS, *JSON_FIELDS) else "form"


class RuleList(Page):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        rules = in_transaction(store.listing)
        render(req, resp, "rules.html", rules=rules)


class RuleForm(Page):
    """``/console/rules/new`` (create) and ``/console/rules/{id}`` (edit); POST saves through the rules' store."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, rule_id: int | None = None) -> None:
        rule = (
            self._rule(rule_id) if rule_id is not None else {"active": True, "conditions": {"severity": ["critical"]}}
        )
        render(req, resp, "rule.html", rule_id=rule_id, rule=rule, form=form_of(rule), errors={})

    def on_post(self, req: falcon.Request, resp: falcon.Response, rule_id: int | None = None) -> None:
        form = self.form(req)
        principal = principal_of(req)
        person = principal.person if principal else None
        try:
            spec = parse_trigger(body_of_form(form))
            if rule_id is None:
                key_id = principal.key_id if principal else None
                rule_id = in_transaction(lambda: store.create(spec, actor=actor_of(req), person=person, key_id=key_id))
                message = f"Rule {spec.name!r} created."
            else:
                saved = rule_id
                in_transaction(lambda: store.replace(saved, spec, actor=actor_of(req), person=person))
                message = f"Rule {spec.name!r} saved."
        except NotFound as e:
            raise PageError(falcon.HTTP_404, f"{e}.") from None
        except InvalidInput as e:
            # the same form again, with the API's message next to the field it names
            rule = self._rule(rule_id) if rule_id is not None else {}
            render(req, resp, "rule.html", status=falcon.HTTP_400, rule_id=rule_id, rule=rule, form=form,
                   errors={field_of(e): e.message})  # fmt: skip
            return
        flash(self.signed(req), message + (" Warnings: " + "; ".join(spec.warnings) if spec.warnings else ""))
        see_other(resp, f"/console/rules/{rule_id}")

    @staticmethod
    def _rule(rule_id: int) -> dict[str, Any]:
        try:
            return in_transaction(lambda: body_of(store.get(rule_id)))
        except NotFound:
            raise PageError(falcon.HTTP_404, f"There is no trigger rule {rule_id}.") from None


class RuleToggle(Page):
    """Enable or disable a rule (the whole rule is re-validated and replaced, as a PUT does)."""

    def on_post(self, req: falcon.Request, resp: falcon.Response, rule_id: int) -> None:
        principal = principal_of(req)

        def work() -> bool:
            body = body_of(store.get(rule_id))
            body["active"] = not body["active"]
            spec = parse_trigger(body)
            store.replace(rule_id, spec, actor=actor_of(req), person=principal.person if principal else None)
            return spec.active

        back = self.form(req).get("back") or "/console/rules"
        self.act(req, resp, lambda: in_transaction(work), back=back if back.startswith("/console/") else "/console/rules",
                 done=lambda active: f"Rule {rule_id} {'enabled' if active else 'disabled'}.")  # fmt: skip


class RuleTest(Page):
    """Backtest: what the rule would have fired over the last hours of stored events (reads only)."""

    access = {"POST": "read"}  # as the API's /test: replaying changes nothing

    def on_post(self, req: falcon.Request, resp: falcon.Response, rule_id: int) -> None:
        rule = RuleForm._rule(rule_id)
        form = self.form(req)
        errors: dict[str, str] = {}
        result = None
        hours_text = (form.get("hours") or str(BACKTEST_HOURS)).strip()
        if not hours_text.isdigit() or not 1 <= int(hours_text) <= 7 * 24:
            errors["hours"] = "hours is a whole number from 1 to 168"
        else:
            end = datetime.now(UTC)
            start = end - timedelta(hours=int(hours_text))
            result = {"start": start, "end": end, **replay(parse_trigger(rule), start=start, end=end)}
        render(req, resp, "rule.html", status=falcon.HTTP_400 if errors else falcon.HTTP_200, rule_id=rule_id,
               rule=rule, form=form_of(rule), errors=errors, backtest=result, hours=hours_text)  # fmt: skip


class TemplateList(Page):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        render(req, resp, "templates.html", templates=in_transaction(templates.listing))


class TemplateView(Page):
    def on_get(self, req: falcon.Request, resp: falcon.Response, template_id: int) -> None:
        try:
            shown = in_transaction(lambda: templates.shown(template_id))
        except NotFound:
            raise PageError(falcon.HTTP_404, f"There is no response template {template_id}.") from None
        render(req, resp, "template.html", template=shown, definition=_pretty(shown))


def routes(deps: Any) -> list[tuple[Any, ...]]:
    return [
        ("/console/rules", RuleList(deps)),
        ("/console/rules/new", RuleForm(deps)),
        ("/console/rules/{rule_id:int}", RuleForm(deps)),
        ("/console/rules/{rule_id:int}/toggle", RuleToggle(deps)),
        ("/console/rules/{rule_id:int}/test", RuleTest(deps)),
        ("/console/templates", TemplateList(deps)),
        ("/console/templates/{template_id:int}", TemplateView(deps)),
    ]
