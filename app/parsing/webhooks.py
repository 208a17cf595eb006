"""Webhook adapters: the generic schema, Prometheus Alertmanager, Grafana, PagerDuty Events v2.

Each adapter has two halves. ``split(body)`` runs in the web process: it
validates a decoded JSON body cheaply (plain type checks; it runs per request)
and splits it into raw items, one per event, raising :class:`InvalidEvent`
with the offending field's path. ``normalize(item, received_at=...)`` runs in
the normalizer and maps an item to the event schema.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from ..errors import InvalidEvent
from ..events.schema import SEVERITIES, make_event, utc

#: Severity words of monitoring tools -> our severities.
SEVERITY_WORDS = {
    "critical": "critical", "crit": "critical", "fatal": "critical", "emergency": "critical", "alert": "critical",
    "page": "critical", "disaster": "critical",
    "high": "high", "error": "high", "err": "high", "major": "high",
    "medium": "medium", "warning": "medium", "warn": "medium", "average": "medium", "minor": "medium",
    "low": "low", "notice": "low",
    "info": "info", "informational": "info", "none": "info", "ok": "info", "debug": "info",
}  # fmt: skip


class Adapter(Protocol):
    def split(self, body: Any) -> list[dict[str, Any]]: ...

    def normalize(self, item: dict[str, Any], *, received_at: datetime) -> dict[str, Any]: ...


def _fail(message: str, field: str) -> InvalidEvent:
    return InvalidEvent(message, field=field)


def _opt_str(obj: dict[str, Any], key: str, path: str, *, max_len: int = 10_000) -> None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise _fail(f"{key} must be a string", f"{path}{key}")
    if isinstance(value, str) and len(value) > max_len:
        raise _fail(f"{key} is longer than {max_len} characters", f"{path}{key}")


def _req_str(obj: dict[str, Any], key: str, path: str) -> None:
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _fail(f"{key} is required and must be a non-empty string", f"{path}{key}")


def _obj(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(f"{field.rsplit('.', 1)[-1] or 'body'} must be a JSON object", field)
    return value


def parse_timestamp(value: Any, field: str) -> datetime:
    """An ISO 8601 / RFC 3339 timestamp (``Z`` allowed) or epoch seconds, as aware UTC.

    Raises:
      InvalidEvent: not a timestamp.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > 1e11 else value  # epoch milliseconds are common too
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise _fail("is not a valid epoch timestamp", field) from None
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
        if "." in text:  # Go prints nanoseconds; Python takes at most microseconds
            head, _, tail = text.partition(".")
            digits = len(tail) - len(tail.lstrip("0123456789"))
            text = f"{head}.{tail[: min(digits, 6)]}{tail[digits:]}"
        try:
            return utc(datetime.fromisoformat(text))
        except ValueError:
            pass
    raise _fail("must be an ISO 8601 timestamp", field)


def map_severity(value: Any, default: str = "medium") -> str:
    if isinstance(value, str):
        return SEVERITY_WORDS.get(value.strip().lower(), default)
    return default


#: Scrape jobs of exporters that report on other things through an API (kube-state-metrics on every pod, node and
#: volume of a cluster): their alerts' ``instance`` is the exporter's own address, not the host of what they are about.
_API_EXPORTERS = frozenset({"kube-state-metrics"})
#: Labels naming the Kubernetes object such an alert is about, the node first, in the order they name its host.
_OBJECT_LABELS = ("node", "pod", "persistentvolumeclaim", "persistentvolume", "statefulset", "deployment", "daemonset")


def _host_of(labels: dict[str, Any]) -> str | None:
    if labels.get("job") in _API_EXPORTERS or labels.get("service") in _API_EXPORTERS:
        # Every alert of kube-state-metrics would otherwise be on the exporter's pod address: one "host" whose
        # problems (a node not ready, a volume filling, another namespace's crash loop) would all be tied by it.
        return next((str(labels[k]) for k in _OBJECT_LABELS if isinstance(labels.get(k), str) and labels[k]), None)
    for key in ("host", "hostname", "node", "nodename", "instance"):
        value = labels.get(key)
        if isinstance(value, str) and value:
            return _instance_host(value) if key == "instance" else value
    return None


def _instance_host(instance: str) -> str:
    """The host of a scrape target: ``host:port``, ``[v6]:port``, or a probe's URL (the blackbox exporter's
    ``https://shop.example.com/health``); a bare IPv6 address or a plain name as it is."""
    if "://" in instance:
        try:
            host = urlsplit(instance).hostname
        except ValueError:  # a malformed URL (a bad port, an unclosed bracket): keep what was said
            return instance
        return host or instance
    if instance.startswith("[") and "]" in instance:
        return instance[1 : instance.index("]")]  # [v6]:port
    if instance.count(":") == 1:
        return instance.rsplit(":", 1)[0]  # host:port
    return instance


def _service_of(labels: dict[str, Any]) -> str | None:
    for key in ("service", "job", "app", "application", "container"):
        value = labels.get(key)
        if isinstance(value, str) and value:
            return value
    return None


class Generic:
    """``POST /api/v1/events/webhook``: the spec's schema, one object or an array."""

    STRINGS = (
        "source",
        "source_type",
        "event_type",
        "host",
        "service",
        "title",
        "message",
        "description",
        "fingerprint",
    )

    def split(self, body: Any) -> list[dict[str, Any]]:
        if isinstance(body, list):
            if not body:
                raise _fail("the array is empty", "[]")
            if len(body) > 10_000:
                raise _fail("at most 10000 events per request", "[]")
            valid = _valid_generic
            for i, event in enumerate(body):
                if not valid(event):
                    self._check(event, f"[{i}].")
            return body
        if not _valid_generic(body):
            self._check(body, "")
        return [body]

    def _check(self, event: Any, path: str) -> None:
        """Raise :class:`InvalidEvent` naming the first field of ``event`` that is wrong (at ``path``)."""
        event = _obj(event, path.rstrip(".") or "body")
        for key in self.STRINGS:
            _opt_str(event, key, path)
        _req_str(event, "source", path)
        if not (event.get("title") or event.get("message")):
            raise _fail("title (or message) is required", f"{path}title")
        severity = event.get("severity")
        if severity is not None and severity not in SEVERITIES:
            raise _fail(f"severity must be one of {', '.join(SEVERITIES)}", f"{path}severity")
        if event.get("metadata") is not None and not isinstance(event["metadata"], dict):
            raise _fail("metadata must be a JSON object", f"{path}metadata")
        tags = event.get("tags")
        if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
            raise _fail("tags must be a list of strings", f"{path}tags")
        if event.get("timestamp") is not None:
            parse_timestamp(event["timestamp"], f"{path}timestamp")

    def normalize(self, item: dict[str, Any], *, received_at: datetime) -> dict[str, Any]:
        if not _valid_generic(item):
            self._check(item, "")
        title = item.get("title") or item.get("message")
        metadata = dict(item.get("metadata") or {})
        if item.get("source_type"):
            metadata.setdefault("source_type", item["source_type"])
        ts = item.get("timestamp")
        return make_event(
            source_type=item.get("source_type") or "webhook",
            source=item["source"],
            event_type=item.get("event_type") or "alert",
            severity=item.get("severity") or "info",
            host=item.get("host"),
            service=item.get("service"),
            title=title,
            description=item.get("description") or (item.get("message") if item.get("title") else None),
            occurred_at=parse_timestamp(ts, "timestamp") if ts is not None else received_at,
            metadata=metadata,
            tags=item.get("tags") or [],
            fingerprint=item.get("fingerprint"),
        )


#: What each key of a generic event must be when present and not null (other keys are kept unchecked).
_STRING, _SEVERITY, _OBJECT, _TAGS, _TIMESTAMP = range(5)
_GENERIC_KINDS = {
    **dict.fromkeys(Generic.STRINGS, _STRING), "severity": _SEVERITY, "metadata": _OBJECT, "tags": _TAGS,
    "timestamp": _TIMESTAMP,
}  # fmt: skip
_SEVERITY_SET = frozenset(SEVERITIES)


def _valid_generic(event: Any) -> bool:
    """Whether :meth:`Generic._check` would accept ``event``; False sends it there to name the field.

    # PERF: one pass over the keys the event has, instead of a lookup and a call per rule: validation
    # was ~70 % of accepting an array of 100 events (bench/webhook.py --mode array, py-spy).
    """
    if type(event) is not dict:
        return False
    kinds = _GENERIC_KINDS
    for key, value in event.items():
        kind = kinds.get(key)
        if kind is None or value is None:
            continue
        if kind == _STRING:
            if type(value) is not str or len(value) > 10_000:
                return False
        elif kind == _SEVERITY:
            if type(value) is not str or value not in _SEVERITY_SET:
                return False
        elif kind == _OBJECT:
            if type(value) is not dict:
                return False
        elif kind == _TAGS:
            if type(value) is not list or not all(type(tag) is str for tag in value):
                return False
        else:
            try:
                parse_timestamp(value, "timestamp")
            except InvalidEvent:
                return False
    source = event.get("source")
    return type(source) is str and bool(source.strip()) and bool(event.get("title") or event.get("message"))


class Alertmanager:
    """``POST /api/v1/events/webhook/alertmanager``: Alertmanager webhook version 4, one item per alert."""

    GROUP_KEYS: tuple[str, ...] = ("receiver", "status", "externalURL", "groupKey", "groupLabels", "commonLabels", "commonAnnotations",
                  "truncatedAlerts")  # fmt: skip
    source_type = "alertmanager"

    def _check_group(self, body: dict[str, Any]) -> None:
        if str(body.get("version")) != "4":
            raise _fail('only webhook version "4" is understood', "version")

    def split(self, body: Any) -> list[dict[str, Any]]:
        body = _obj(body, "body")
        self._check_group(body)
        alerts = body.get("alerts")
        if not isinstance(alerts, list) or not alerts:
            raise _fail(f"alerts must be a non-empty list ({self.source_type} webhook)", "alerts")
        group = {k: body.get(k) for k in self.GROUP_KEYS if k in body}
        items = []
        for i, alert in enumerate(alerts):
            self._check(alert, f"alerts[{i}].")
            items.append({"alert": alert, "group": group})
        return items

    def _check(self, alert: Any, path: str) -> None:
        alert = _obj(alert, path.rstrip("."))
        labels = _obj(alert.get("labels"), f"{path}labels")
        if not isinstance(labels.get("alertname"), str) or not labels["alertname"]:
            raise _fail("labels.alertname is required", f"{path}labels.alertname")
        if alert.get("status") not in ("firing", "resolved"):
            raise _fail("status must be firing or resolved", f"{path}status")
        if alert.get("annotations") is not None:
            _obj(alert["annotations"], f"{path}annotations")
        for key in ("startsAt", "endsAt"):
            if alert.get(key):
                parse_timestamp(alert[key], f"{path}{key}")

    def normalize(self, item: dict[str, Any], *, received_at: datetime) -> dict[str, Any]:
        alert, group = item["alert"], item.get("group") or {}
        self._check(alert, "alert.")
        labels, annotations = alert["labels"], alert.get("annotations") or {}
        resolved = alert["status"] == "resolved"
        starts = parse_timestamp(alert["startsAt"], "startsAt") if alert.get("startsAt") else received_at
        ends = alert.get("endsAt")
        ends_at = parse_timestamp(ends, "endsAt") if ends and not str(ends).startswith("0001-") else None
        metadata = {
            "status": alert["status"],
            "labels": labels,
            "annotations": annotations,
            "generatorURL": alert.get("generatorURL"),
            "starts_at": starts.isoformat(),
            "ends_at": ends_at.isoformat() if ends_at else None,
            "receiver": group.get("receiver"),
            "externalURL": group.get("externalURL"),
            "groupKey": group.get("groupKey"),
        }
        if resolved:
            metadata["resolution"] = True
        return make_event(
            source_type=self.source_type,
            source=group.get("externalURL") or self.source_type,
            event_type=labels["alertname"],
            severity="info" if resolved else map_severity(labels.get("severity"), "high"),
            host=_host_of(labels),
            service=_service_of(labels),
            title=annotations.get("summary") or labels["alertname"],
            description=annotations.get("description") or annotations.get("message"),
            occurred_at=(ends_at or received_at) if resolved else starts,
            metadata=metadata,
            tags=[self.source_type, alert["status"]],
            fingerprint=alert.get("fingerprint") or None,
        )


class Grafana(Alertmanager):
    """``POST /api/v1/events/webhook/grafana``: Grafana (unified) alerting webhook: Alertmanager-shaped
    with ``orgId``, ``title``, ``state``, ``message`` and per-alert ``values``, ``dashboardURL``, ``panelURL``."""

    GROUP_KEYS: tuple[str, ...] = (*Alertmanager.GROUP_KEYS, "orgId", "title", "state", "message")
    source_type = "grafana"

    def _check_group(self, body: dict[str, Any]) -> None:
        """Grafana's own ``version`` ("1") is not Alertmanager's: nothing to check at group level."""

    def normalize(self, item: dict[str, Any], *, received_at: datetime) -> dict[str, Any]:
        event = super().normalize(item, received_at=received_at)
        alert = item["alert"]
        for key in ("dashboardURL", "panelURL", "silenceURL", "values", "valueString"):
            if alert.get(key) is not None:
                event["metadata"][key] = alert[key]
        event["source"] = (item.get("group") or {}).get("externalURL") or "grafana"
        return event


#: PagerDuty Events v2 payload.severity -> ours.
PAGERDUTY_SEVERITY = {"critical": "critical", "error": "high", "warning": "medium", "info": "info"}


class PagerDuty:
    """PagerDuty Events API v2 (``/api/v1/events/webhook/pagerduty`` and ``/v2/enqueue``)."""

    def split(self, body: Any) -> list[dict[str, Any]]:
        body = _obj(body, "body")
        _req_str(body, "routing_key", "")
        action = body.get("event_action")
        if action not in ("trigger", "acknowledge", "resolve"):
            raise _fail("event_action must be trigger, acknowledge or resolve", "event_action")
        _opt_str(body, "dedup_key", "", max_len=255)
        if action != "trigger" and not body.get("dedup_key"):
            raise _fail(f"dedup_key is required to {action}", "dedup_key")
        if action == "trigger":
            payload = _obj(body.get("payload"), "payload")
            for key in ("summary", "source"):
                _req_str(payload, key, "payload.")
            if payload.get("severity") not in PAGERDUTY_SEVERITY:
                raise _fail("payload.severity must be critical, error, warning or info", "payload.severity")
            if payload.get("timestamp") is not None:
                parse_timestamp(payload["timestamp"], "payload.timestamp")
            if payload.get("custom_details") is not None and not isinstance(payload["custom_details"], dict | str):
                raise _fail("payload.custom_details must be an object", "payload.custom_details")
        # The routing key is a credential: it is checked by the web layer and never stored.
        return [{k: v for k, v in body.items() if k != "routing_key"}]

    def normalize(self, item: dict[str, Any], *, received_at: datetime) -> dict[str, Any]:
        action = item.get("event_action")
        payload = item.get("payload") or {}
        metadata: dict[str, Any] = {"event_action": action, "dedup_key": item.get("dedup_key")}
        for key in ("component", "group", "class", "custom_details"):
            if payload.get(key) is not None:
                metadata[key] = payload[key]
        for key in ("client", "client_url", "links", "images"):
            if item.get(key) is not None:
                metadata[key] = item[key]
        if action == "resolve":
            metadata["resolution"] = True
        ts = payload.get("timestamp")
        return make_event(
            source_type="pagerduty",
            source=payload.get("source") or item.get("client") or "pagerduty",
            event_type=payload.get("class") or ("alert" if action == "trigger" else action),
            severity=PAGERDUTY_SEVERITY.get(payload.get("severity", ""), "info") if action == "trigger" else "info",
            host=payload.get("source"),
            service=payload.get("component"),
            title=payload.get("summary") or f"{action} {item.get('dedup_key')}",
            description=None,
            occurred_at=parse_timestamp(ts, "payload.timestamp") if ts else received_at,
            metadata=metadata,
            tags=["pagerduty", str(action)],
            fingerprint=(f"{item['dedup_key']}:{action}" if action == "acknowledge" else item.get("dedup_key")) or None,
        )


def pagerduty_response(item: dict[str, Any], *, event_id: str) -> dict[str, Any]:
    """What the Events API v2 answers: the dedup_key (the event id when the sender gave none)."""
    return {"status": "success", "message": "Event processed", "dedup_key": item.get("dedup_key") or event_id}


#: Adapter name (the URL segment and the item's source_type) -> adapter.
ADAPTERS: dict[str, Adapter] = {
    "webhook": Generic(),
    "alertmanager": Alertmanager(),
    "grafana": Grafana(),
    "pagerduty": PagerDuty(),
}
