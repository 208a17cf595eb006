"""Notification policies and the outbox of the notifications they make (``ops`` schema)."""

from __future__ import annotations

import peewee

from ..db import BaseModel, JSONField, TimestampField
from ..timeutil import now


class NotificationPolicy(BaseModel):
    """Which pages (trigger, severity, service, tags) go to which channels, how often, and when."""

    id = peewee.BigAutoField()
    name = peewee.CharField(max_length=200, unique=True)
    enabled = peewee.BooleanField(default=True)
    #: {"triggers": [...], "severities": [...], "services": [...], "tags": [...]}; an empty list matches all.
    matchers = JSONField()
    #: [{"type": "email" | "slack" | "teams" | "pagerduty" | "webhook", ...}], in order.
    channels = JSONField()
    #: The same page (trigger and subject) is not sent again by this policy within this many minutes.
    repeat_interval_minutes = peewee.IntegerField(default=60)
    #: {"start": "22:00", "end": "07:00", "timezone": "Europe/Paris", "severities": ["critical"]} or None.
    quiet_hours = JSONField(null=True)
    created_by = peewee.CharField(max_length=200, null=True)
    created_at = TimestampField(default=now)
    updated_by = peewee.CharField(max_length=200, null=True)
    updated_at = TimestampField(default=now)

    class Meta:
        schema = "ops"
        table_name = "notification_policies"


class Notification(BaseModel):
    """One message to one channel: written with the change that pages, sent by the ``notify`` actor."""

    id = peewee.BigAutoField()
    #: None for the default email to NOTIFY_EMAIL_TO when no policy matched.
    policy_id = peewee.BigIntegerField(null=True, index=True)
    channel_index = peewee.IntegerField(default=0)
    channel_type = peewee.CharField(max_length=20)
    #: escalation | approval_requested | execution_failed | rollback_failed | incident_status
    trigger = peewee.CharField(max_length=30, index=True)
    incident_id = peewee.UUIDField(null=True, index=True)
    #: What makes two pages the same page (``<trigger>:<kind>:<id>``): the repeat interval compares it.
    dedup_key = peewee.CharField(max_length=255, index=True)
    #: {"channel": the channel's configuration (secrets by name only), "message": what it says}.
    payload = JSONField()
    #: pending | sent | failed | suppressed
    status = peewee.CharField(max_length=20, default="pending", index=True)
    #: Why it is suppressed or delayed (maintenance window, quiet hours), for operators.
    reason = peewee.TextField(null=True)
    attempts = peewee.IntegerField(default=0)
    last_error = peewee.TextField(null=True)
    #: When a pending notification is (next) due; the clock sends those left past it.
    next_attempt_at = TimestampField(null=True, index=True)
    created_at = TimestampField(default=now, index=True)
    sent_at = TimestampField(null=True)

    class Meta:
        schema = "ops"
        table_name = "notifications"
