"""Syslog senders cannot retry: while RabbitMQ is down the receiver spools, and replays when it returns."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest

from app.models import ProcessedEvent
from tests import services
from tests.processes import Process, free_port, start_worker, wait_for


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=120)


@pytest.fixture
def rabbitmq_control(rabbitmq_url):
    if not shutil.which("rabbitmqctl"):
        if services.under_ci():
            pytest.fail("rabbitmqctl is needed to stop and start the real RabbitMQ", pytrace=False)
        pytest.skip("rabbitmqctl is not available")
    yield
    rabbitmqctl("start_app")  # whatever happened, leave the broker running
    rabbitmqctl("await_startup")


def test_rabbitmq_stopped_mid_stream_loses_nothing_and_stores_everything_once(stack_env, rabbitmq_control, tmp_path):
    # Given a syslog receiver and a worker on the real RabbitMQ
    udp = free_port(socket.SOCK_DGRAM)
    env = dict(stack_env, SYSLOG_UDP_PORT=str(udp), SYSLOG_TCP_PORT=str(free_port()), SPOOL_DIR=str(tmp_path / "spool"))
    receiver = Process("syslog", [sys.executable, "-m", "app.receivers.syslog"], env)
    worker = start_worker(env)
    wait_for(lambda: "Syslog listening" in receiver.output(), message="the receiver")
    host = f"outage-{uuid.uuid4().hex[:8]}"
    sent = 0
    stop = threading.Event()

    def send() -> None:
        nonlocal sent
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        while not stop.is_set():
            sock.sendto(f"<14>Nov 23 10:00:00 {host} app: line {sent}".encode(), ("127.0.0.1", udp))
            sent += 1
            time.sleep(0.001)
        sock.close()

    sender = threading.Thread(target=send)
    try:
        # When lines stream in, RabbitMQ stops, lines keep coming, and RabbitMQ comes back
        sender.start()
        time.sleep(1.5)
        rabbitmqctl("stop_app")
        time.sleep(3)
        rabbitmqctl("start_app")
        rabbitmqctl("await_startup")
        time.sleep(1.5)
        stop.set()
        sender.join()
        # Then every line is stored, exactly once
        wait_for(
            lambda: ProcessedEvent.select().where(ProcessedEvent.source_host == host).count() >= sent,
            timeout=90,
            message=f"{sent} lines stored",
        )
    finally:
        stop.set()
        receiver.stop()
        worker.stop()
    assert ProcessedEvent.select().where(ProcessedEvent.source_host == host).count() == sent
    titles = [e.title for e in ProcessedEvent.select(ProcessedEvent.title).where(ProcessedEvent.source_host == host)]
    assert sorted(titles) == sorted(f"line {i}" for i in range(sent))
    assert "spooling" in receiver.output() and "replaying" in receiver.output()
