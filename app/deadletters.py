"""Listing and replaying dead letters (``<queue>.XQ``) on RabbitMQ."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from typing import Any

import pika
from dramatiq import Message
from dramatiq.common import xq_name

from .config import rabbitmq_node_urls

logger = logging.getLogger(__name__)


def _channel(url: str) -> tuple[pika.BlockingConnection, Any]:
    connection = pika.BlockingConnection([pika.URLParameters(u) for u in rabbitmq_node_urls(url)])
    channel = connection.channel()
    return connection, channel


def list_dead(url: str, queue: str, *, limit: int = 50) -> Iterator[dict[str, Any]]:
    """Peek at up to ``limit`` dead letters of ``queue`` (they stay where they are)."""
    connection, channel = _channel(url)
    try:
        for _ in range(limit):
            method, _props, body = channel.basic_get(xq_name(queue), auto_ack=False)
            if method is None:
                break
            message = Message.decode(body)
            yield {
                "message_id": message.message_id,
                "actor": message.actor_name,
                "retries": message.options.get("retries", 0),
                "error": (message.options.get("traceback") or "").strip().splitlines()[-1:] or None,
                "items": len(message.args[0]) if message.args and isinstance(message.args[0], list) else None,
            }
    finally:
        connection.close()  # unacked messages go back to the dead-letter queue


def replay(url: str, queue: str, *, limit: int | None = None) -> int:
    """Move dead letters of ``queue`` back onto it, with their retry count reset. Returns how many."""
    connection, channel = _channel(url)
    channel.confirm_delivery()
    moved = 0
    try:
        while limit is None or moved < limit:
            method, _props, body = channel.basic_get(xq_name(queue), auto_ack=False)
            if method is None:
                break
            message = Message.decode(body)
            options = {k: v for k, v in message.options.items() if k not in ("retries", "traceback", "eta")}
            # not message.copy(): it merges options, so the retry count and traceback would survive the reset
            fresh = dataclasses.replace(message, queue_name=queue, options=options)
            channel.basic_publish("", queue, fresh.encode(), pika.BasicProperties(delivery_mode=2))
            channel.basic_ack(method.delivery_tag)
            moved += 1
    finally:
        connection.close()
    logger.info("Replayed %d dead letters onto %r.", moved, queue)
    return moved
