"""Reading a Terraform plan: what ``terraform show -json PLANFILE`` says will change, how risky it is.

Pure functions over the documented plan JSON (format_version 1.x, the same for OpenTofu):
``resource_changes[]`` holds each resource's ``address``, ``type`` and ``change`` with ``actions``
(``["no-op"]``, ``["create"]``, ``["update"]``, ``["delete"]``, ``["delete", "create"]`` or
``["create", "delete"]`` for a replacement, ``["read"]`` for a data source), ``before``/``after``,
``after_unknown`` (values known only after apply) and ``before_sensitive``/``after_sensitive``
(the same shape as the values, ``true`` where a value is sensitive). ``resource_drift[]`` lists the
objects that changed outside Terraform since the last apply.

A sensitive value never leaves this module: its attribute is named, its value is ``(sensitive)``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..actions.http import SECRET_NAME
from .base import RISK_LEVELS

#: Shown instead of a sensitive value, and of a value known only after apply.
SENSITIVE, UNKNOWN = "(sensitive)", "(known after apply)"
#: The most attributes listed per resource, and characters per shown value.
MAX_ATTRIBUTES, MAX_VALUE_CHARS = 50, 200
#: A known secret this long is masked inside a longer value too (a shorter one only when it is the value).
MIN_SECRET_CHARS = 4
#: Attributes whose change alone is bookkeeping (a tag-only change is low risk whatever the resource).
TAG_ATTRIBUTES = frozenset({"tags", "tags_all", "labels", "effective_labels", "terraform_labels"})

#: Resource classes by type pattern (first match wins; ``*`` is any text). Data is what a wrong
#: delete loses for good; compute, network and identity are what a wrong change takes down or opens.
CLASSES: tuple[tuple[str, str], ...] = (
    ("*_db_instance", "data"), ("*_rds_*", "data"), ("*database*", "data"), ("*_sql_*", "data"),
    ("*dynamodb*", "data"), ("*_s3_bucket", "data"), ("*storage*", "data"), ("*_ebs_volume", "data"),
    ("*_efs_file_system", "data"), ("*elasticache*", "data"), ("*redshift*", "data"), ("*bigquery*", "data"),
    ("*_disk", "data"), ("*_volume", "data"), ("*_kms_key", "data"), ("*_key_vault", "data"),
    ("*_instance", "compute"), ("*_virtual_machine*", "compute"), ("*_node_pool", "compute"),
    ("*_autoscaling_group", "compute"), ("*_launch_template", "compute"), ("*_eks_*", "compute"),
    ("*_container_cluster", "compute"), ("*_kubernetes_cluster", "compute"), ("*_lambda_function", "compute"),
    ("*_iam_*", "identity"), ("*_role*", "identity"), ("*_policy*", "identity"), ("*_service_account*", "identity"),
    ("*_vpc*", "network"), ("*_subnet*", "network"), ("*security_group*", "network"), ("*firewall*", "network"),
    ("*_lb*", "network"), ("*_route*", "network"), ("*_dns_*", "network"), ("*_network*", "network"),
)  # fmt: skip
#: Risk of each action on each class of resource.
RISK_TABLE: Mapping[str, Mapping[str, str]] = {
    "data": {"create": "low", "update": "high", "replace": "critical", "delete": "critical"},
    "compute": {"create": "low", "update": "medium", "replace": "high", "delete": "high"},
    "network": {"create": "low", "update": "medium", "replace": "high", "delete": "high"},
    "identity": {"create": "medium", "update": "high", "replace": "high", "delete": "high"},
    "other": {"create": "low", "update": "low", "replace": "medium", "delete": "medium"},
}


@dataclass(frozen=True)
class Change:
    """One resource the plan changes, as approvers and events see it (no sensitive value)."""

    address: str
    type: str
    #: create | update | replace | delete
    action: str
    risk: str
    #: ``[{"attribute": "tags.env", "before": ..., "after": ...}]``, values masked where sensitive.
    attributes: tuple[Mapping[str, Any], ...]
    #: Terraform's reason (``replace_because_cannot_update`` ...), if it gave one.
    reason: str | None = None
    #: The object was changed outside Terraform (it is in ``resource_drift``).
    drifted: bool = False


def action_of(actions: Sequence[str]) -> str | None:
    """``create``, ``update``, ``replace`` or ``delete``; None for ``no-op`` and ``read`` (nothing to apply)."""
    names = tuple(actions)
    if names in (("delete", "create"), ("create", "delete")):
        return "replace"
    if names in (("create",), ("update",), ("delete",)):
        return names[0]
    return None


def class_of(resource_type: str) -> str:
    """The resource class of a type (:data:`CLASSES`), ``other`` when none matches."""
    for pattern, name in CLASSES:
        if fnmatch.fnmatchcase(resource_type, pattern):
            return name
    return "other"


def risk_of(resource_type: str, action: str, attributes: Sequence[str] = (), *,
            overrides: Mapping[str, str] | None = None) -> str:  # fmt: skip
    """The risk of ``action`` on a resource of ``resource_type``.

    Parameters:
      attributes: The attributes an update changes: tags alone make it low.
      overrides: ``{"type pattern": "risk"}`` from the workspace's configuration, tried first
        (``{"aws_s3_bucket.*": ...}`` patterns match the type; a floor, never lower than a tag-only change).
    """
    if action == "update" and attributes and {a.split(".")[0] for a in attributes} <= TAG_ATTRIBUTES:
        return "low"
    for pattern, level in (overrides or {}).items():
        if level in RISK_LEVELS and fnmatch.fnmatchcase(resource_type, pattern):
            return level
    return RISK_TABLE[class_of(resource_type)][action]


def _marked(mask: Any) -> bool:
    """Whether a mask (``*_sensitive``, ``after_unknown``) marks any part of a value."""
    if mask is True:
        return True
    if isinstance(mask, dict):
        return any(_marked(m) for m in mask.values())
    if isinstance(mask, list):
        return any(_marked(m) for m in mask)
    return False


def _shown(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value[:MAX_VALUE_CHARS] if isinstance(value, str) else value
    text = repr(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 3] + "..."


def _child(node: Any, key: str) -> Any:
    return node.get(key) if isinstance(node, dict) else None


def diff(before: Any, after: Any, *, unknown: Any = None, before_sensitive: Any = None, after_sensitive: Any = None,
         path: str = "") -> list[dict[str, Any]]:  # fmt: skip
    """The attributes that differ between ``before`` and ``after``, by dotted path (objects are walked into;
    a list is one attribute). A value marked sensitive on either side shows as :data:`SENSITIVE`, one known
    only after apply as :data:`UNKNOWN`."""
    walk = isinstance(before, dict) and isinstance(after, dict) and before_sensitive is not True \
        and after_sensitive is not True and unknown is not True  # fmt: skip
    if walk:
        found: list[dict[str, Any]] = []
        for key in sorted(set(before) | set(after) | set(unknown if isinstance(unknown, dict) else ())):
            found += diff(before.get(key), after.get(key), unknown=_child(unknown, key),
                          before_sensitive=_child(before_sensitive, key), after_sensitive=_child(after_sensitive, key),
                          path=f"{path}.{key}" if path else key)  # fmt: skip
        return found
    if not path or (before == after and not _marked(unknown)):
        return []
    if _marked(before_sensitive) or _marked(after_sensitive):
        return [{"attribute": path, "before": SENSITIVE, "after": SENSITIVE}]
    return [{"attribute": path, "before": _shown(before), "after": UNKNOWN if _marked(unknown) else _shown(after)}]


def _leaves(value: Any, mask: Any, found: set[str]) -> None:
    """Add to ``found`` the text of each leaf of ``value`` that ``mask`` marks (all of them under ``True``)."""
    if mask is True:
        if isinstance(value, dict):
            for item in value.values():
                _leaves(item, True, found)
        elif isinstance(value, list):
            for item in value:
                _leaves(item, True, found)
        elif value is not None and not isinstance(value, bool):
            found.add(str(value))
    elif isinstance(value, dict) and isinstance(mask, dict):
        for key, item in value.items():
            _leaves(item, mask.get(key), found)
    elif isinstance(value, list) and isinstance(mask, list):
        for item, inner in zip(value, mask, strict=False):
            _leaves(item, inner, found)


def sensitive_values(plan: Mapping[str, Any]) -> frozenset[str]:
    """Every value the plan marks sensitive: in a resource's before or after, or a sensitive variable's.

    Terraform does not mark every copy of a secret (``terraform_data``'s ``output`` repeats its
    sensitive ``input`` unmarked): a shown value holding one of these is masked too.
    """
    found: set[str] = set()
    for row in plan.get("resource_changes") or []:
        change = row.get("change") if isinstance(row, dict) else None
        if isinstance(change, dict):
            _leaves(change.get("before"), change.get("before_sensitive"), found)
            _leaves(change.get("after"), change.get("after_sensitive"), found)
    declared = ((plan.get("configuration") or {}).get("root_module") or {}).get("variables") or {}
    for name, variable in (plan.get("variables") or {}).items():
        if isinstance(declared.get(name), dict) and declared[name].get("sensitive"):
            _leaves((variable or {}).get("value"), True, found)
    return frozenset(found)


def _masked(attributes: list[dict[str, Any]], secrets: frozenset[str]) -> list[dict[str, Any]]:
    """``attributes`` with a value holding a known secret, or under a secret-looking name, masked."""

    def hides(value: Any) -> bool:
        text = str(value)
        return any(s == text or (len(s) >= MIN_SECRET_CHARS and s in text) for s in secrets)

    return [
        {**a, "before": SENSITIVE, "after": SENSITIVE}
        if SECRET_NAME.search(a["attribute"].rsplit(".", 1)[-1]) or hides(a["before"]) or hides(a["after"])
        else a
        for a in attributes
    ]


def changes(plan: Mapping[str, Any], *, overrides: Mapping[str, str] | None = None) -> list[Change]:
    """The resources the plan changes (no-ops and reads left out), with their attributes and risk.

    Raises:
      ValueError: the document is not a plan (no ``format_version``, or ``resource_changes`` is no list).
    """
    if not isinstance(plan, Mapping) or not isinstance(plan.get("format_version"), str):
        raise ValueError("not a Terraform plan in JSON: no format_version")
    rows = plan.get("resource_changes") or []
    if not isinstance(rows, list):
        raise ValueError("resource_changes is not a list")
    drifted = {d.get("address") for d in plan.get("resource_drift") or [] if isinstance(d, dict)}
    secrets = sensitive_values(plan)
    found = []
    for row in rows:
        change = row.get("change") if isinstance(row, dict) else None
        if not isinstance(change, dict) or row.get("mode", "managed") != "managed":
            continue
        action = action_of(change.get("actions") or ())
        if action is None:
            continue
        if action in ("update", "replace"):
            attributes = diff(change.get("before"), change.get("after"), unknown=change.get("after_unknown"),
                              before_sensitive=change.get("before_sensitive"),
                              after_sensitive=change.get("after_sensitive"))  # fmt: skip
            attributes = _masked(attributes, secrets)
        else:  # a whole object comes or goes: its attributes are named, not listed value by value
            attributes = []
        address, kind = str(row.get("address")), str(row.get("type"))
        risk = risk_of(kind, action, [a["attribute"] for a in attributes], overrides=overrides)
        found.append(Change(address=address, type=kind, action=action, risk=risk,
                            attributes=tuple(attributes[:MAX_ATTRIBUTES]), reason=row.get("action_reason"),
                            drifted=address in drifted))  # fmt: skip
    return found


def highest(levels: Sequence[str]) -> str:
    """The highest of risk levels (``low`` for none)."""
    return max(levels, key=RISK_LEVELS.index, default="low")
